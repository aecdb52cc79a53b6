// pktcount: packets and bytes per interface, direction and protocol.
// tcx links on ingress and egress (kernel 6.6+), the same code as legacy cls_bpf filters
// where tcx is missing, or XDP (ingress only, before the stack allocates an skb).
#include "tools.h"

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define TC_ACT_UNSPEC (-1)

enum { DIR_INGRESS = 0, DIR_EGRESS = 1 };

struct key {
    __u32 ifindex;
    __u16 ethertype;   // host order
    __u8 ipproto;      // IP protocol for IPv4/IPv6, else 0
    __u8 direction;    // DIR_*
};

struct counts {
    __u64 packets;
    __u64 bytes;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __type(key, struct key);
    __type(value, struct counts);
} pkts SEC(".maps");

static __always_inline void count(struct key *k, __u64 len)
{
    struct counts *c = bpf_map_lookup_elem(&pkts, k);
    if (!c) {
        struct counts zero = {};
        bpf_map_update_elem(&pkts, k, &zero, BPF_NOEXIST);
        c = bpf_map_lookup_elem(&pkts, k);
        if (!c)
            return;
    }
    __sync_fetch_and_add(&c->packets, 1);
    __sync_fetch_and_add(&c->bytes, len);
}

static __always_inline void count_skb(struct __sk_buff *skb, __u8 dir)
{
    struct key k = {};
    __u16 eth = 0;
    k.ifindex = skb->ifindex;
    k.direction = dir;
    if (bpf_skb_load_bytes(skb, 12, &eth, sizeof(eth)) < 0) {
        k.ethertype = __builtin_bswap16((__u16)skb->protocol);
        count(&k, skb->len);
        return;
    }
    k.ethertype = __builtin_bswap16(eth);
    __u32 off = ETH_HLEN;
    if (k.ethertype == ETH_P_8021Q) {
        if (bpf_skb_load_bytes(skb, 16, &eth, sizeof(eth)) == 0)
            k.ethertype = __builtin_bswap16(eth);
        off += 4;
    }
    if (k.ethertype == ETH_P_IP)
        bpf_skb_load_bytes(skb, off + 9, &k.ipproto, 1);
    else if (k.ethertype == ETH_P_IPV6)
        bpf_skb_load_bytes(skb, off + 6, &k.ipproto, 1);
    count(&k, skb->len);
}

SEC("tcx/ingress")
int tcx_ingress(struct __sk_buff *skb)
{
    count_skb(skb, DIR_INGRESS);
    return TC_ACT_UNSPEC;   // TCX_NEXT: let the next program / the stack decide
}

SEC("tcx/egress")
int tcx_egress(struct __sk_buff *skb)
{
    count_skb(skb, DIR_EGRESS);
    return TC_ACT_UNSPEC;
}

SEC("tc")
int tc_ingress(struct __sk_buff *skb)
{
    count_skb(skb, DIR_INGRESS);
    return TC_ACT_UNSPEC;
}

SEC("tc")
int tc_egress(struct __sk_buff *skb)
{
    count_skb(skb, DIR_EGRESS);
    return TC_ACT_UNSPEC;
}

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *end = (void *)(long)ctx->data_end;
    struct key k = {};
    k.ifindex = ctx->ingress_ifindex;
    k.direction = DIR_INGRESS;
    __u8 *p = data;
    if (p + ETH_HLEN > (__u8 *)end)
        goto out;
    k.ethertype = ((__u16)p[12] << 8) | p[13];
    __u32 off = ETH_HLEN;
    if (k.ethertype == ETH_P_8021Q) {
        if (p + ETH_HLEN + 4 > (__u8 *)end)
            goto out;
        k.ethertype = ((__u16)p[16] << 8) | p[17];
        off += 4;
    }
    if (k.ethertype == ETH_P_IP) {
        if (p + off + 10 <= (__u8 *)end)
            k.ipproto = p[off + 9];
    } else if (k.ethertype == ETH_P_IPV6) {
        if (p + off + 7 <= (__u8 *)end)
            k.ipproto = p[off + 6];
    }
out:
    count(&k, (__u64)(end - data));
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
