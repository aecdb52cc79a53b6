// Map-in-map with static initialisation, a legacy SEC("maps") map and a pinned map.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} inner_a SEC(".maps"), inner_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner);
} outer SEC(".maps") = {
	.values = { [0] = &inner_a, [1] = &inner_b },
};

struct legacy_map_def {
	unsigned int type;
	unsigned int key_size;
	unsigned int value_size;
	unsigned int max_entries;
	unsigned int map_flags;
};

struct legacy_map_def legacy SEC("maps") = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 4,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pinned_counts SEC(".maps");

SEC("syscall")
int fill(void *ctx)
{
	__u32 k = 0, one = 1;
	__u64 v = 77, *p;
	__u32 *inner_val;
	void *inner;

	inner = bpf_map_lookup_elem(&outer, &k);
	if (!inner)
		return -1;
	inner_val = bpf_map_lookup_elem(inner, &k);
	if (!inner_val)
		return -2;
	*inner_val = 1234;
	inner = bpf_map_lookup_elem(&outer, &one);
	if (!inner)
		return -3;
	inner_val = bpf_map_lookup_elem(inner, &k);
	if (!inner_val)
		return -4;
	*inner_val = 5678;
	bpf_map_update_elem(&legacy, &one, &v, BPF_ANY);
	p = bpf_map_lookup_elem(&pinned_counts, &k);
	if (p)
		*p += 1;
	return 0;
}
