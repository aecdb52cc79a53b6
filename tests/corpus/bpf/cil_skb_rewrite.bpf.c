// Cilium-style packet rewriting in tc: DNAT with bpf_skb_store_bytes and incremental
// checksums (bpf_l3_csum_replace / bpf_l4_csum_replace), bpf_redirect, global functions.
#include <stddef.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define IP_DST_OFF (ETH_HLEN + offsetof(struct iphdr, daddr))
#define IP_CSUM_OFF (ETH_HLEN + offsetof(struct iphdr, check))
#define TCP_CSUM_OFF (ETH_HLEN + sizeof(struct iphdr) + offsetof(struct tcphdr, check))
#define BPF_F_PSEUDO_HDR_ (1ULL << 4)

const volatile __be32 old_daddr = 0;
const volatile __be32 new_daddr = 0;
const volatile __u32 redirect_ifindex = 0;

__attribute__((noinline))
int rewrite_daddr(struct __sk_buff *skb, __be32 from, __be32 to)
{
	if (!skb)
		return -1;
	bpf_l4_csum_replace(skb, TCP_CSUM_OFF, from, to, BPF_F_PSEUDO_HDR_ | sizeof(to));
	bpf_l3_csum_replace(skb, IP_CSUM_OFF, from, to, sizeof(to));
	return bpf_skb_store_bytes(skb, IP_DST_OFF, &to, sizeof(to), 0);
}

SEC("tc")
int cil_dnat(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip4 = data + ETH_HLEN;

	if ((void *)(ip4 + 1) > data_end)
		return TC_ACT_OK;
	if (ip4->protocol != IPPROTO_TCP || ip4->daddr != old_daddr)
		return TC_ACT_OK;
	if (rewrite_daddr(skb, old_daddr, new_daddr) < 0)
		return TC_ACT_SHOT;
	if (redirect_ifindex)
		return bpf_redirect(redirect_ifindex, 0);
	return TC_ACT_OK;
}

char __license[] SEC("license") = "Dual BSD/GPL";
