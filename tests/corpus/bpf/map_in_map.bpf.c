// Map-in-map: ARRAY_OF_MAPS and HASH_OF_MAPS with inner templates declared through
// __array(values, ...), static initialisation of slots, an inner ring buffer and an inner
// hash; lookups through the outer map.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct inner_array {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} inner_a SEC(".maps"), inner_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct inner_array);
} outer_arr SEC(".maps") = {
	.values = { [0] = &inner_a, [2] = &inner_b },
};

struct inner_hash {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 16);
	__type(key, __u32);
	__array(values, struct inner_hash);
} outer_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_RINGBUF);
		__uint(max_entries, 5000);
	});
} outer_rb SEC(".maps");

SEC("tp/syscalls/sys_enter_getpid")
int map_in_map(void *ctx)
{
	__u32 k = 0, pid = bpf_get_current_pid_tgid() >> 32;
	__u64 *v;
	__u32 *h;
	void *inner;

	inner = bpf_map_lookup_elem(&outer_arr, &k);
	if (inner) {
		v = bpf_map_lookup_elem(inner, &k);
		if (v)
			*v += 1;
	}
	inner = bpf_map_lookup_elem(&outer_hash, &pid);
	if (inner) {
		h = bpf_map_lookup_elem(inner, &pid);
		if (h)
			*h += 1;
	}
	inner = bpf_map_lookup_elem(&outer_rb, &k);
	if (inner)
		bpf_ringbuf_output(inner, &pid, sizeof(pid), 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
