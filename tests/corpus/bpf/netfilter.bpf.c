// A netfilter program (Linux 6.4+, libbpf 1.2+): counts IPv4 packets at a hook and
// accepts them.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define NF_ACCEPT 1

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} nf_count SEC(".maps");

SEC("netfilter")
int nf_accept_count(void *ctx)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&nf_count, &k);

	if (v)
		*v += 1;
	return NF_ACCEPT;
}

char LICENSE[] SEC("license") = "GPL";
