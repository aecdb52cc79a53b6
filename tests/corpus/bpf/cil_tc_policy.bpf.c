// Cilium-style tc programs: from-container/to-container classifiers sharing a pinned
// policy map and an LRU conntrack, a tail call into a policy stage, skb metadata marks.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define POLICY_CALL 7
#define DROP_POLICY -133

struct policy_key {
	__u32 sec_label;
	__u16 dport;
	__u8 protocol;
	__u8 egress:1, pad:7;
};

struct policy_entry {
	__be16 proxy_port;
	__u8 deny:1, wildcard_protocol:1, wildcard_dport:1, pad:5;
	__u8 auth_type;
	__u16 pad1;
	__u16 pad2;
	__u64 packets;
	__u64 bytes;
};

struct ct_key {
	__be32 daddr;
	__be32 saddr;
	__be16 dport;
	__be16 sport;
	__u8 nexthdr;
	__u8 flags;
};

struct ct_entry {
	__u64 rx_packets;
	__u64 tx_packets;
	__u32 lifetime;
	__u16 rx_closing:1, tx_closing:1, seen_non_syn:1, reserved:13;
	__u16 rev_nat_index;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct policy_key);
	__type(value, struct policy_entry);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} corpus_cil_policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct ct_key);
	__type(value, struct ct_entry);
	__uint(max_entries, 65536);
} ct_any4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
	__uint(max_entries, 32);
} cil_calls SEC(".maps");

const volatile __u32 SECLABEL = 0;

static __always_inline int policy_can_access(struct __sk_buff *skb, __u32 label, __u16 dport,
					     __u8 proto, int egress)
{
	struct policy_key key = { .sec_label = label, .dport = dport, .protocol = proto,
				  .egress = egress };
	struct policy_entry *p = bpf_map_lookup_elem(&corpus_cil_policy, &key);

	if (!p) {
		key.dport = 0;
		p = bpf_map_lookup_elem(&corpus_cil_policy, &key);
		if (!p)
			return DROP_POLICY;
	}
	__sync_fetch_and_add(&p->packets, 1);
	__sync_fetch_and_add(&p->bytes, skb->len);
	return p->deny ? DROP_POLICY : 0;
}

static __always_inline int handle_ipv4(struct __sk_buff *skb, int egress)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip4 = data + ETH_HLEN;
	struct ct_key ck = {};
	struct ct_entry *ce, fresh = {};
	__u16 *ports;

	if ((void *)(ip4 + 1) > data_end)
		return TC_ACT_SHOT;
	ports = (void *)ip4 + sizeof(*ip4);
	if ((void *)(ports + 2) > data_end)
		return TC_ACT_OK;
	ck.daddr = ip4->daddr;
	ck.saddr = ip4->saddr;
	ck.sport = ports[0];
	ck.dport = ports[1];
	ck.nexthdr = ip4->protocol;
	ce = bpf_map_lookup_elem(&ct_any4, &ck);
	if (ce) {
		if (egress)
			__sync_fetch_and_add(&ce->tx_packets, 1);
		else
			__sync_fetch_and_add(&ce->rx_packets, 1);
		return TC_ACT_OK;
	}
	skb->cb[0] = bpf_ntohs(ports[1]);
	skb->cb[1] = ip4->protocol;
	fresh.lifetime = 60;
	bpf_map_update_elem(&ct_any4, &ck, &fresh, BPF_ANY);
	bpf_tail_call(skb, &cil_calls, POLICY_CALL);
	return TC_ACT_SHOT;
}

SEC("tc")
int tail_policy(struct __sk_buff *skb)
{
	int ret = policy_can_access(skb, SECLABEL, skb->cb[0], skb->cb[1], 0);

	if (ret < 0)
		return TC_ACT_SHOT;
	skb->mark = 0xc00 | SECLABEL;
	return TC_ACT_OK;
}

SEC("tc")
int cil_from_container(struct __sk_buff *skb)
{
	if (skb->protocol == bpf_htons(ETH_P_IP))
		return handle_ipv4(skb, 1);
	return TC_ACT_OK;
}

SEC("tc")
int cil_to_container(struct __sk_buff *skb)
{
	if (skb->protocol == bpf_htons(ETH_P_IP))
		return handle_ipv4(skb, 0);
	return TC_ACT_OK;
}

char __license[] SEC("license") = "Dual BSD/GPL";
