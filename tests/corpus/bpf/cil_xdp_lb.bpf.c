// Cilium-style XDP load balancer entry: parse L2/L3, look the service up in a pinned LPM
// trie and hash, then tail-call per family through a statically initialised prog array.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define CILIUM_CALL_IPV4 1
#define CILIUM_CALL_IPV6 2
#define __section_tail(ID, KEY) SEC("xdp")

struct lb4_key {
	__be32 address;
	__be16 dport;
	__u16 backend_slot;
	__u8 proto;
	__u8 scope;
	__u8 pad[2];
};

struct lb4_service {
	__u32 backend_id;
	__u16 count;
	__u16 rev_nat_index;
	__u8 flags;
	__u8 flags2;
	__u8 pad[2];
};

struct lpm_v4_key {
	struct bpf_lpm_trie_key lpm;
	__u8 addr[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct lb4_key);
	__type(value, struct lb4_service);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} corpus_lb4_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct lpm_v4_key);
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} corpus_lb4_prefilter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 4);
} metrics SEC(".maps");

int tail_lb_ipv4(struct xdp_md *ctx);
int tail_lb_ipv6(struct xdp_md *ctx);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(max_entries, 8);
	__array(values, int (void *));
} cilium_calls_xdp SEC(".maps") = {
	.values = {
		[CILIUM_CALL_IPV4] = (void *)&tail_lb_ipv4,
		[CILIUM_CALL_IPV6] = (void *)&tail_lb_ipv6,
	},
};

static __always_inline void count(__u32 reason)
{
	__u64 *c = bpf_map_lookup_elem(&metrics, &reason);

	if (c)
		*c += 1;
}

__section_tail(CILIUM_MAP_CALLS, CILIUM_CALL_IPV4)
int tail_lb_ipv4(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip4 = data + sizeof(struct ethhdr);
	struct lb4_key key = {};
	struct lpm_v4_key pkey = { .lpm.prefixlen = 32 };
	struct lb4_service *svc;
	struct udphdr *l4;

	if ((void *)(ip4 + 1) > data_end)
		return XDP_DROP;
	__builtin_memcpy(pkey.addr, &ip4->saddr, 4);
	if (bpf_map_lookup_elem(&corpus_lb4_prefilter, &pkey)) {
		count(2);
		return XDP_DROP;
	}
	l4 = (void *)ip4 + ip4->ihl * 4;
	if ((void *)(l4 + 1) > data_end)
		return XDP_PASS;
	key.address = ip4->daddr;
	key.dport = l4->dest;
	key.proto = ip4->protocol;
	svc = bpf_map_lookup_elem(&corpus_lb4_services, &key);
	if (!svc)
		return XDP_PASS;
	count(1);
	return XDP_TX;
}

__section_tail(CILIUM_MAP_CALLS, CILIUM_CALL_IPV6)
int tail_lb_ipv6(struct xdp_md *ctx)
{
	count(3);
	return XDP_PASS;
}

SEC("xdp")
int cil_xdp_entry(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		bpf_tail_call(ctx, &cilium_calls_xdp, CILIUM_CALL_IPV4);
	else if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		bpf_tail_call(ctx, &cilium_calls_xdp, CILIUM_CALL_IPV6);
	return XDP_PASS;
}

char __license[] SEC("license") = "Dual BSD/GPL";
