// sockfilter: count the packets a socket filter sees, per protocol and direction.
// Attached to a raw AF_PACKET socket (data starts at the Ethernet header) or, in demo
// mode, to one end of a socket pair that is fed Ethernet frames.  It returns 0 so the
// kernel never queues a copy to the socket: counting costs no user-space wake-ups.
#include "tools.h"

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define PACKET_OUTGOING 4

struct key {
    __u16 ethertype;   // host order
    __u8 ipproto;      // IP protocol (IPv4/IPv6), 0 otherwise
    __u8 outgoing;     // 1 when the packet left this host
};

struct counts {
    __u64 packets;
    __u64 bytes;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, struct key);
    __type(value, struct counts);
} protos SEC(".maps");

SEC("socket")
int count_packets(struct __sk_buff *skb)
{
    struct key k = {};
    __u16 eth = 0;
    if (bpf_skb_load_bytes(skb, 12, &eth, sizeof(eth)) < 0)
        return 0;
    k.ethertype = __builtin_bswap16(eth);
    __u32 off = ETH_HLEN;
    if (k.ethertype == ETH_P_8021Q) {
        if (bpf_skb_load_bytes(skb, 16, &eth, sizeof(eth)) < 0)
            return 0;
        k.ethertype = __builtin_bswap16(eth);
        off += 4;
    }
    if (k.ethertype == ETH_P_IP)
        bpf_skb_load_bytes(skb, off + 9, &k.ipproto, 1);
    else if (k.ethertype == ETH_P_IPV6)
        bpf_skb_load_bytes(skb, off + 6, &k.ipproto, 1);
    k.outgoing = skb->pkt_type == PACKET_OUTGOING;
    struct counts *c = bpf_map_lookup_elem(&protos, &k);
    if (!c) {
        struct counts zero = {};
        bpf_map_update_elem(&protos, &k, &zero, BPF_NOEXIST);
        c = bpf_map_lookup_elem(&protos, &k);
        if (!c)
            return 0;
    }
    __sync_fetch_and_add(&c->packets, 1);
    __sync_fetch_and_add(&c->bytes, skb->len);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
