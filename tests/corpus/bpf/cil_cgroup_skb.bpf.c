// cgroup_skb ingress/egress accounting per cgroup, cilium/ebpf-example style.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 2);
} pkt_count SEC(".maps");

SEC("cgroup_skb/egress")
int count_egress_packets(struct __sk_buff *skb)
{
	__u32 key = 1;
	__u64 *count = bpf_map_lookup_elem(&pkt_count, &key);

	if (count)
		__sync_fetch_and_add(count, 1);
	return 1;
}

SEC("cgroup_skb/ingress")
int count_ingress_packets(struct __sk_buff *skb)
{
	__u32 key = 0;
	__u64 *count = bpf_map_lookup_elem(&pkt_count, &key);

	if (count)
		__sync_fetch_and_add(count, 1);
	return 1;
}

SEC("cgroup/skb")
int legacy_cgroup_skb(struct __sk_buff *skb)
{
	return 1;
}

char __license[] SEC("license") = "Dual MIT/GPL";
