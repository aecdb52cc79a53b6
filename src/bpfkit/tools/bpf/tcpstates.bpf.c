// tcpstates: TCP socket operations per connection in a cgroup (sockops).
// A sockops program sees connect, listen, the end of each handshake and, once it asks for
// them with bpf_sock_ops_cb_flags_set(), every state change, RTO, retransmission and
// (optionally) every RTT estimate of the sockets created by tasks of its cgroup.
#include "tools.h"

/* records the ring buffer refused (full): user space reports them, never silent */
__u64 lost = 0;

#define AF_INET 2
#define AF_INET6 10

struct event {
    __u64 cookie;
    __u64 ts_ns;
    __u64 bytes_received;
    __u64 bytes_acked;
    __u32 op;
    __u32 family;
    __u32 old_state;
    __u32 new_state;
    __u32 srtt_us;
    __u32 lport;
    __u32 rport;
    __u32 total_retrans;
    __u8 saddr[16];
    __u8 daddr[16];
};

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 256 * 1024);
} events SEC(".maps");

// Keeps struct event in the object's BTF, where user space finds the record layout.
struct event *unused_event __attribute__((unused));

const volatile __u8 want_rtt = 0;   // also report every RTT_CB (one per ACK: noisy)
const volatile __u32 targ_port = 0; // only connections with this local or remote port

static __always_inline void emit(struct bpf_sock_ops *skops, __u32 old, __u32 new)
{
    __u32 lport = skops->local_port;
    /* remote_port: the port in network order, in the upper half of the u32 on x86 */
    __u32 rport = __builtin_bswap32(skops->remote_port) & 0xffff;
    if (targ_port && lport != targ_port && rport != targ_port)
        return;
    struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) {
        __sync_fetch_and_add(&lost, 1);
        return;
    }
    e->cookie = bpf_get_socket_cookie(skops);
    e->ts_ns = bpf_ktime_get_ns();
    e->op = skops->op;
    e->family = skops->family;
    e->old_state = old;
    e->new_state = new;
    e->lport = lport;
    e->rport = rport;
    e->srtt_us = skops->srtt_us >> 3;
    e->total_retrans = skops->total_retrans;
    e->bytes_received = skops->bytes_received;
    e->bytes_acked = skops->bytes_acked;
    __builtin_memset(e->saddr, 0, sizeof(e->saddr));
    __builtin_memset(e->daddr, 0, sizeof(e->daddr));
    if (skops->family == AF_INET) {
        __u32 s = skops->local_ip4, d = skops->remote_ip4;
        __builtin_memcpy(e->saddr, &s, 4);
        __builtin_memcpy(e->daddr, &d, 4);
    } else {
        __u32 v;
        v = skops->local_ip6[0]; __builtin_memcpy(&e->saddr[0], &v, 4);
        v = skops->local_ip6[1]; __builtin_memcpy(&e->saddr[4], &v, 4);
        v = skops->local_ip6[2]; __builtin_memcpy(&e->saddr[8], &v, 4);
        v = skops->local_ip6[3]; __builtin_memcpy(&e->saddr[12], &v, 4);
        v = skops->remote_ip6[0]; __builtin_memcpy(&e->daddr[0], &v, 4);
        v = skops->remote_ip6[1]; __builtin_memcpy(&e->daddr[4], &v, 4);
        v = skops->remote_ip6[2]; __builtin_memcpy(&e->daddr[8], &v, 4);
        v = skops->remote_ip6[3]; __builtin_memcpy(&e->daddr[12], &v, 4);
    }
    bpf_ringbuf_submit(e, 0);
}

SEC("sockops")
int tcp_sockops(struct bpf_sock_ops *skops)
{
    __u32 op = skops->op;
    __u32 flags = BPF_SOCK_OPS_STATE_CB_FLAG | BPF_SOCK_OPS_RTO_CB_FLAG |
                  BPF_SOCK_OPS_RETRANS_CB_FLAG;
    if (want_rtt)
        flags |= BPF_SOCK_OPS_RTT_CB_FLAG;
    switch (op) {
    case BPF_SOCK_OPS_TCP_CONNECT_CB:
    case BPF_SOCK_OPS_TCP_LISTEN_CB:
    case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
    case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
        bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | flags);
        emit(skops, skops->state, skops->state);
        break;
    case BPF_SOCK_OPS_STATE_CB:
        emit(skops, skops->args[0], skops->args[1]);
        break;
    case BPF_SOCK_OPS_RTO_CB:
    case BPF_SOCK_OPS_RETRANS_CB:
        emit(skops, skops->state, skops->state);
        break;
    case BPF_SOCK_OPS_RTT_CB:
        if (want_rtt)
            emit(skops, skops->state, skops->state);
        break;
    }
    return 1;
}

char LICENSE[] SEC("license") = "GPL";
