// netrx: packets and bytes received per network device (by name), e.g. on loopback.
// Hooks, best first: kprobe on __netif_receive_skb_core (reads skb->dev->name and skb->len
// with CO-RE), tp_btf net:netif_receive_skb (typed skb), the net:netif_receive_skb
// tracepoint (len and the device name as a __data_loc string in the record).
#include "tracing_common.h"

#define IFNAMSIZ 16

struct net_device {
    char name[IFNAMSIZ];
} __attribute__((preserve_access_index));

struct sk_buff {
    unsigned int len;
    struct net_device *dev;
} __attribute__((preserve_access_index));

struct dev_stats {
    __u64 packets;
    __u64 bytes;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, char[IFNAMSIZ]);
    __type(value, struct dev_stats);
} rx SEC(".maps");

static __always_inline void count(const char *name, __u32 len)
{
    struct dev_stats *st = bpf_map_lookup_elem(&rx, name);
    if (!st) {
        struct dev_stats init = {};
        bpf_map_update_elem(&rx, name, &init, BPF_NOEXIST);
        st = bpf_map_lookup_elem(&rx, name);
        if (!st)
            return;
    }
    __sync_fetch_and_add(&st->packets, 1);
    __sync_fetch_and_add(&st->bytes, len);
}

static __always_inline int count_skb(struct sk_buff *skb)
{
    char name[IFNAMSIZ] = {};
    struct net_device *dev = BPF_CORE_READ(skb, dev);
    if (!dev)
        return 0;
    bpf_core_read_str(name, sizeof(name), &dev->name);
    count(name, BPF_CORE_READ(skb, len));
    return 0;
}

SEC("kprobe/__netif_receive_skb_core")
int BPF_KPROBE(kprobe_netif_rx, struct sk_buff **pskb)
{
    struct sk_buff *skb = 0;
    bpf_probe_read_kernel(&skb, sizeof(skb), pskb);
    return skb ? count_skb(skb) : 0;
}

SEC("tp_btf/netif_receive_skb")
int BPF_PROG(tp_btf_netif_rx, struct sk_buff *skb)
{
    return count_skb(skb);
}

struct netif_receive_skb_args {
    __u64 common;
    void *skbaddr;
    unsigned int len;
    __u32 name_loc;   /* __data_loc char[]: offset in the low 16 bits, length above */
};

SEC("tracepoint/net/netif_receive_skb")
int tp_netif_rx(struct netif_receive_skb_args *ctx)
{
    char name[IFNAMSIZ] = {};
    bpf_probe_read_kernel_str(name, sizeof(name), (void *)ctx + (ctx->name_loc & 0xffff));
    count(name, ctx->len);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
