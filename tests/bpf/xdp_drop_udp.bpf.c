// XDP: drop UDP datagrams to one port (a constant set at load), pass everything else.
// Counts what it dropped in a per-CPU array, so a test can check the counter too.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

const volatile __u16 blocked_port = 9999;   /* host byte order */

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} dropped SEC(".maps");

SEC("xdp")
int xdp_drop_udp(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    struct udphdr *udp;
    __u8 proto;
    __u32 zero = 0;
    __u64 *n;

    if ((void *)(eth + 1) > end)
        return XDP_PASS;
    if (eth->h_proto == bpf_htons(ETH_P_IP)) {
        struct iphdr *ip = (void *)(eth + 1);
        if ((void *)(ip + 1) > end || ip->ihl < 5)
            return XDP_PASS;
        proto = ip->protocol;
        udp = (void *)ip + ip->ihl * 4;
    } else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
        struct ipv6hdr *ip6 = (void *)(eth + 1);
        if ((void *)(ip6 + 1) > end)
            return XDP_PASS;
        proto = ip6->nexthdr;          /* no extension headers: enough for the example */
        udp = (void *)(ip6 + 1);
    } else {
        return XDP_PASS;
    }
    if (proto != IPPROTO_UDP || (void *)(udp + 1) > end)
        return XDP_PASS;
    if (udp->dest != bpf_htons(blocked_port))
        return XDP_PASS;
    n = bpf_map_lookup_elem(&dropped, &zero);
    if (n)
        *n += 1;
    return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
