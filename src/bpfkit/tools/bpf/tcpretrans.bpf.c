// tcpretrans: TCP retransmissions with the connection and its state, from
// tcp:tcp_retransmit_skb (BCC's kprobe on tcp_retransmit_skb; this tracepoint fires in
// the same place, also for SYN retransmits).
#include "bk_tcp.h"

struct event {
    __u64 ts_ns;
    __u32 pid;
    __s32 state;
    __u16 family;
    __u16 lport;
    __u16 rport;
    __u16 pad;
    __u8 saddr[16];
    __u8 daddr[16];
};

const struct event *event_btf __attribute__((unused));

/* -c: count per connection instead of one event each */
const volatile bool targ_count = false;

struct flow_key {
    __u8 saddr[16];
    __u8 daddr[16];
    __u16 family;
    __u16 lport;
    __u16 rport;
    __u16 pad;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 10240);
    __type(key, struct flow_key);
    __type(value, __u64);
} counts SEC(".maps");

SEC("tracepoint/tcp/tcp_retransmit_skb")
int tp_retransmit(struct tp_tcp_retransmit_skb *ctx)
{
    struct event *e;
    if (targ_family && ctx->family != targ_family)
        return 0;
    if (targ_count) {
        struct flow_key k = {.family = ctx->family, .lport = ctx->sport,
                             .rport = ctx->dport};
        COPY_ADDRS(&k, ctx);
        map_add(&counts, &k, 1);
        return 0;
    }
    e = reserve_event(sizeof(*e));
    if (!e)
        return 0;
    __builtin_memset(e, 0, sizeof(*e));
    e->ts_ns = bpf_ktime_get_ns();
    e->pid = bpf_get_current_pid_tgid() >> 32;
    e->state = ctx->state;
    e->family = ctx->family;
    e->lport = ctx->sport;
    e->rport = ctx->dport;
    COPY_ADDRS(e, ctx);
    bpf_ringbuf_submit(e, 0);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
