// tcplife: TCP sessions when they close: process, addresses, ports, bytes sent and
// received, and how long the session lived.  sock:inet_sock_set_state gives the birth
// (first move to SYN_SENT/SYN_RECV/ESTABLISHED), who (the process at SYN_SENT or
// LAST_ACK, else at close) and the close; the byte counts are the tcp_sock's.
#include "bk_tcp.h"

struct ident {
    __u32 pid;
    char comm[TASK_COMM_LEN];
};

struct event {
    __u64 ts_ns;
    __u64 span_ns;
    __u64 rx_b;
    __u64 tx_b;
    __u32 pid;
    __u16 family;
    __u16 lport;
    __u16 rport;
    __u16 pad;
    __u8 saddr[16];
    __u8 daddr[16];
    char comm[TASK_COMM_LEN];
};

const struct event *event_btf __attribute__((unused));

const volatile __u16 targ_lport = 0;  /* -L */
const volatile __u16 targ_rport = 0;  /* -D */

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 10240);
    __type(key, __u64);
    __type(value, __u64);
} birth SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 10240);
    __type(key, __u64);
    __type(value, struct ident);
} idents SEC(".maps");

SEC("tracepoint/sock/inet_sock_set_state")
int tp_set_state(struct tp_inet_sock_set_state *ctx)
{
    __u64 sk = (__u64)ctx->skaddr, now = bpf_ktime_get_ns(), *start;
    struct tcp_sock___bk *tp = (struct tcp_sock___bk *)ctx->skaddr;
    struct ident *who, me = {};
    struct event *e;

    if (ctx->protocol != IPPROTO_TCP)
        return 0;
    if (targ_family && ctx->family != targ_family)
        return 0;
    if (targ_lport && ctx->sport != targ_lport)
        return 0;
    if (targ_rport && ctx->dport != targ_rport)
        return 0;
    if (ctx->newstate < TCP_FIN_WAIT1)
        bpf_map_update_elem(&birth, &sk, &now, BPF_NOEXIST);
    if (ctx->newstate == TCP_SYN_SENT || ctx->newstate == TCP_LAST_ACK) {
        me.pid = bpf_get_current_pid_tgid() >> 32;
        bpf_get_current_comm(&me.comm, sizeof(me.comm));
        bpf_map_update_elem(&idents, &sk, &me, BPF_ANY);
    }
    if (ctx->newstate != TCP_CLOSE)
        return 0;
    start = bpf_map_lookup_elem(&birth, &sk);
    if (!start)
        goto out;
    who = bpf_map_lookup_elem(&idents, &sk);
    if (!who) {
        me.pid = bpf_get_current_pid_tgid() >> 32;
        bpf_get_current_comm(&me.comm, sizeof(me.comm));
        who = &me;
    }
    if (targ_pid && who->pid != targ_pid)
        goto out;
    e = reserve_event(sizeof(*e));
    if (!e)
        goto out;
    __builtin_memset(e, 0, sizeof(*e));
    e->ts_ns = now;
    e->span_ns = now - *start;
    e->rx_b = BPF_CORE_READ(tp, bytes_received);
    e->tx_b = BPF_CORE_READ(tp, bytes_acked);
    e->pid = who->pid;
    e->family = ctx->family;
    e->lport = ctx->sport;
    e->rport = ctx->dport;
    COPY_ADDRS(e, ctx);
    __builtin_memcpy(e->comm, who->comm, sizeof(e->comm));
    bpf_ringbuf_submit(e, 0);
out:
    bpf_map_delete_elem(&birth, &sk);
    bpf_map_delete_elem(&idents, &sk);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
