// Cilium-style tcx programs (Linux 6.6+ links): SEC("tcx/ingress") / SEC("tcx/egress")
// and libbpf 1.7's SEC("tc/ingress") spelling for the same attach types.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#ifndef TCX_NEXT
#define TCX_NEXT -1 /* uapi 6.6; Debian 12 headers predate it */
#endif

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 2);
} tcx_counts SEC(".maps");

static __always_inline int bump(__u32 dir, struct __sk_buff *skb)
{
	__u64 *c = bpf_map_lookup_elem(&tcx_counts, &dir);

	if (c)
		__sync_fetch_and_add(c, skb->len);
	return TCX_NEXT;
}

SEC("tcx/ingress")
int cil_tcx_ingress(struct __sk_buff *skb)
{
	return bump(0, skb);
}

SEC("tcx/egress")
int cil_tcx_egress(struct __sk_buff *skb)
{
	return bump(1, skb);
}

SEC("tc/ingress")
int cil_tc_ingress_link(struct __sk_buff *skb)
{
	return bump(0, skb);
}

char __license[] SEC("license") = "Dual BSD/GPL";
