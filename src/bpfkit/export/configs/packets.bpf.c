// Packets and bytes per interface, direction and IP protocol, counted by tcx programs.
#include "common.h"
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>

#ifndef TCX_NEXT
#define TCX_NEXT -1
#endif

struct pkt_key {
    __u32 ifindex;
    __u8 direction;             /* 0 ingress, 1 egress */
    __u8 proto;                 /* IP protocol / IPv6 next header; 255 = not IP */
    __u16 pad;
};

struct pkt_value {
    __u64 packets;
    __u64 bytes;
};

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
    __uint(max_entries, 4096);
    __type(key, struct pkt_key);
    __type(value, struct pkt_value);
} packet_counts SEC(".maps");

static __always_inline int count(struct __sk_buff *skb, __u8 direction)
{
    void *data = (void *)(long)skb->data;
    void *end = (void *)(long)skb->data_end;
    struct ethhdr *eth = data;
    struct pkt_key k = {.ifindex = skb->ifindex, .direction = direction, .proto = 255};
    struct pkt_value *v, init = {1, skb->len};

    if ((void *)(eth + 1) <= end) {
        if (eth->h_proto == bpf_htons(ETH_P_IP)) {
            struct iphdr *ip = (void *)(eth + 1);
            if ((void *)(ip + 1) <= end)
                k.proto = ip->protocol;
        } else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
            struct ipv6hdr *ip6 = (void *)(eth + 1);
            if ((void *)(ip6 + 1) <= end)
                k.proto = ip6->nexthdr;
        }
    }
    v = bpf_map_lookup_elem(&packet_counts, &k);
    if (v) {
        v->packets += 1;        /* per-CPU: no atomics needed */
        v->bytes += skb->len;
    } else {
        bpf_map_update_elem(&packet_counts, &k, &init, BPF_NOEXIST);
    }
    return TCX_NEXT;
}

SEC("tcx/ingress")
int count_ingress(struct __sk_buff *skb)
{
    return count(skb, 0);
}

SEC("tcx/egress")
int count_egress(struct __sk_buff *skb)
{
    return count(skb, 1);
}
