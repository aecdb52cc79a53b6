// tcpconnect: new TCP connections, src:port -> dst:port, and which hook saw them.
// Hooks, best first:
//  - fentry+fexit on tcp_connect: the entry time per thread, then the event with the
//    return value and how long tcp_connect took; fentry on inet_csk_complete_hashdance
//    for accepted connections (-a);
//  - kprobes on tcp_connect and inet_csk_complete_hashdance: both stash the socket in a
//    per-CPU slot and tail-call one shared handler (prog array "handlers", slot 0);
//  - tp_btf, else tracepoint, sock:inet_sock_set_state: CLOSE->SYN_SENT remembers the
//    connecting process, SYN_SENT->ESTABLISHED reports the connection (ports are only
//    known then), SYN_RECV->ESTABLISHED is an accepted one.
// A connect that fails (refused: RST; timed out; aborted) goes SYN_SENT->CLOSE: every
// family reports it from inet_sock_set_state, with the socket's error (sk_err), the
// kernel-function families through the companion tracepoint tp_connect_fail.
#include "tracing_common.h"
#include <bpf/bpf_endian.h>

/* records the ring buffer refused (full): user space reports them, never silent */
__u64 lost = 0;

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_SYN_RECV 3
#define TCP_CLOSE 7

#define DIR_CONNECT 0
#define DIR_ACCEPT 1

struct in6_addr {
    union {
        __u8 u6_addr8[16];
    } in6_u;
} __attribute__((preserve_access_index));

struct sock_common {
    __be32 skc_daddr;
    __be32 skc_rcv_saddr;
    __be16 skc_dport;
    __u16 skc_num;
    unsigned short skc_family;
    struct in6_addr skc_v6_daddr;
    struct in6_addr skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));

struct sock {
    struct sock_common __sk_common;
    __u16 sk_protocol;
    int sk_err;
} __attribute__((preserve_access_index));

struct event {
    __u64 ts_ns;
    __u64 lat_ns;          /* fexit: time spent in tcp_connect */
    __u32 pid;
    __u32 uid;
    __u8 saddr[16];
    __u8 daddr[16];
    __u16 sport;
    __u16 dport;
    __u16 family;
    __u8 dir;              /* DIR_CONNECT or DIR_ACCEPT */
    __u8 hook;             /* enum hook_kind */
    __u8 failed;           /* the handshake failed (SYN_SENT->CLOSE): ret = -sk_err */
    __u8 pad;
    __s32 ret;
    char comm[TASK_COMM_LEN];
};

const struct event *event_btf __attribute__((unused));

/* -a: also accepted (passive) connections */
const volatile bool targ_accepts = false;

struct owner {
    __u32 pid;
    __u32 uid;
    __u64 ts_ns;
    char comm[TASK_COMM_LEN];
};

/* connecting socket -> process (tracepoint families: the handshake ends in softirq) */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 10240);
    __type(key, __u64);
    __type(value, struct owner);
} owners SEC(".maps");

/* thread -> tcp_connect entry time (fentry/fexit) */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 10240);
    __type(key, __u32);
    __type(value, __u64);
} entry_ts SEC(".maps");

struct slot {
    struct sock *sk;
    __u32 dir;
    __u32 pad;
};

/* kprobe entry programs -> shared handler */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct slot);
} scratch SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u32);
} handlers SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 256 * 1024);
} events SEC(".maps");

static __always_inline void fill_owner(struct owner *o)
{
    o->pid = bpf_get_current_pid_tgid() >> 32;
    o->uid = (__u32)bpf_get_current_uid_gid();
    o->ts_ns = bpf_ktime_get_ns();
    bpf_get_current_comm(&o->comm, sizeof(o->comm));
}

static __always_inline void fill_owner_event(struct event *e, const struct owner *o)
{
    e->pid = o->pid;
    e->uid = o->uid;
    __builtin_memcpy(e->comm, o->comm, sizeof(e->comm));
}

/* an event from a socket (kernel-function and tp_btf hooks); owner NULL: current task,
 * unless dir is accept (softirq: no meaningful process) */
static __always_inline int emit_sock(struct sock *sk, __u32 dir, __u32 hook, long ret,
                                     __u64 lat_ns, const struct owner *o, bool failed)
{
    struct event *e;
    __u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

    if (family != AF_INET && family != AF_INET6)
        return 0;
    if (dir == DIR_ACCEPT && (!targ_accepts || targ_pid || targ_comm[0] || targ_cgid))
        return 0;
    if (dir == DIR_CONNECT && !o && !task_allowed())
        return 0;
    e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) {
        __sync_fetch_and_add(&lost, 1);
        return 0;
    }
    __builtin_memset(e, 0, sizeof(*e));
    e->ts_ns = bpf_ktime_get_ns();
    e->lat_ns = lat_ns;
    e->family = family;
    e->dir = dir;
    e->hook = hook;
    e->ret = ret;
    e->failed = failed;
    e->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
    e->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
    if (family == AF_INET) {
        bpf_core_read(e->saddr, 4, &sk->__sk_common.skc_rcv_saddr);
        bpf_core_read(e->daddr, 4, &sk->__sk_common.skc_daddr);
    } else {
        bpf_core_read(e->saddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
        bpf_core_read(e->daddr, 16, &sk->__sk_common.skc_v6_daddr);
    }
    if (o) {
        fill_owner_event(e, o);
    } else if (dir == DIR_CONNECT) {
        struct owner cur = {};
        fill_owner(&cur);
        fill_owner_event(e, &cur);
    }
    bpf_ringbuf_submit(e, 0);
    return 0;
}

/* ---- fentry/fexit */

SEC("fentry/tcp_connect")
int BPF_PROG(fentry_connect, struct sock *sk)
{
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    __u64 ts = bpf_ktime_get_ns();
    bpf_map_update_elem(&entry_ts, &tid, &ts, BPF_ANY);
    return 0;
}

SEC("fexit/tcp_connect")
int BPF_PROG(fexit_connect, struct sock *sk, int ret)
{
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    __u64 *ts = bpf_map_lookup_elem(&entry_ts, &tid);
    __u64 lat = ts ? bpf_ktime_get_ns() - *ts : 0;
    bpf_map_delete_elem(&entry_ts, &tid);
    return emit_sock(sk, DIR_CONNECT, HOOK_FENTRY, ret, lat, 0, ret < 0);
}

SEC("fentry/inet_csk_complete_hashdance")
int BPF_PROG(fentry_accept, struct sock *sk, struct sock *child, void *req, bool own_req)
{
    if (!child || !own_req)
        return 0;
    return emit_sock(child, DIR_ACCEPT, HOOK_FENTRY, 0, 0, 0, false);
}

/* ---- kprobes sharing one handler through a tail call */

static __always_inline int to_handler(struct pt_regs *ctx, struct sock *sk, __u32 dir)
{
    __u32 zero = 0;
    struct slot *s = bpf_map_lookup_elem(&scratch, &zero);
    if (!s)
        return 0;
    s->sk = sk;
    s->dir = dir;
    bpf_tail_call(ctx, &handlers, 0);
    return 0;   /* only reached when the handler slot is empty */
}

SEC("kprobe/tcp_connect")
int BPF_KPROBE(kprobe_connect, struct sock *sk)
{
    return to_handler(ctx, sk, DIR_CONNECT);
}

SEC("kprobe/inet_csk_complete_hashdance")
int BPF_KPROBE(kprobe_accept, struct sock *sk, struct sock *child, void *req, bool own_req)
{
    if (!child || !own_req)
        return 0;
    return to_handler(ctx, child, DIR_ACCEPT);
}

SEC("kprobe")
int kprobe_handler(struct pt_regs *ctx)
{
    __u32 zero = 0;
    struct slot *s = bpf_map_lookup_elem(&scratch, &zero);
    if (!s || !s->sk)
        return 0;
    return emit_sock(s->sk, s->dir, HOOK_KPROBE, 0, 0, 0, false);
}

/* ---- inet_sock_set_state: tp_btf (typed socket) */

static __always_inline int remember_owner(__u64 skaddr)
{
    struct owner o = {};
    if (!task_allowed())
        return 0;
    fill_owner(&o);
    bpf_map_update_elem(&owners, &skaddr, &o, BPF_ANY);
    return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(tp_btf_state, struct sock *sk, int oldstate, int newstate)
{
    __u64 key = (__u64)sk;
    if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
        return 0;
    if (oldstate == TCP_CLOSE && newstate == TCP_SYN_SENT)
        return remember_owner(key);
    if (oldstate == TCP_SYN_RECV && newstate == TCP_ESTABLISHED)
        return emit_sock(sk, DIR_ACCEPT, HOOK_TP_BTF, 0, 0, 0, false);
    if (oldstate != TCP_SYN_SENT)
        return 0;
    struct owner *o = bpf_map_lookup_elem(&owners, &key);
    if (o && (newstate == TCP_ESTABLISHED || newstate == TCP_CLOSE)) {
        struct owner copy = *o;
        long ret = newstate == TCP_CLOSE ? -(long)BPF_CORE_READ(sk, sk_err) : 0;
        emit_sock(sk, DIR_CONNECT, HOOK_TP_BTF, ret, bpf_ktime_get_ns() - copy.ts_ns, &copy,
                  newstate == TCP_CLOSE);
    }
    bpf_map_delete_elem(&owners, &key);
    return 0;
}

/* ---- inet_sock_set_state: tracepoint (addresses and ports are in the record) */

struct set_state_args {
    __u64 common;
    const void *skaddr;
    int oldstate;
    int newstate;
    __u16 sport;
    __u16 dport;
    __u16 family;
    __u16 protocol;
    __u8 saddr[4];
    __u8 daddr[4];
    __u8 saddr_v6[16];
    __u8 daddr_v6[16];
};

static __always_inline int emit_record(struct set_state_args *ctx, __u32 dir,
                                       const struct owner *o, __u32 hook)
{
    struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) {
        __sync_fetch_and_add(&lost, 1);
        return 0;
    }
    __builtin_memset(e, 0, sizeof(*e));
    e->ts_ns = bpf_ktime_get_ns();
    e->family = ctx->family;
    e->dir = dir;
    e->hook = hook;
    e->sport = ctx->sport;
    e->dport = ctx->dport;
    if (ctx->family == AF_INET) {
        __builtin_memcpy(e->saddr, ctx->saddr, 4);
        __builtin_memcpy(e->daddr, ctx->daddr, 4);
    } else {
        __builtin_memcpy(e->saddr, ctx->saddr_v6, 16);
        __builtin_memcpy(e->daddr, ctx->daddr_v6, 16);
    }
    if (o) {
        e->lat_ns = e->ts_ns - o->ts_ns;
        fill_owner_event(e, o);
    }
    if (ctx->oldstate == TCP_SYN_SENT && ctx->newstate == TCP_CLOSE) {
        struct sock *sk = (struct sock *)ctx->skaddr;   /* a plain copy: no CO-RE on ctx */
        e->failed = 1;
        e->ret = -BPF_CORE_READ(sk, sk_err);
    }
    bpf_ringbuf_submit(e, 0);
    return 0;
}

static __always_inline bool tcp_record(struct set_state_args *ctx)
{
    return ctx->protocol == IPPROTO_TCP &&
           (ctx->family == AF_INET || ctx->family == AF_INET6);
}

/* the connect ends: established (report when report_ok) or failed (always reported) */
static __always_inline int connect_ended(struct set_state_args *ctx, bool report_ok,
                                         __u32 hook)
{
    __u64 key = (__u64)ctx->skaddr;
    struct owner *o = bpf_map_lookup_elem(&owners, &key);
    if (o && ((report_ok && ctx->newstate == TCP_ESTABLISHED) || ctx->newstate == TCP_CLOSE)) {
        struct owner copy = *o;
        emit_record(ctx, DIR_CONNECT, &copy, hook);
    }
    bpf_map_delete_elem(&owners, &key);
    return 0;
}

SEC("tracepoint/sock/inet_sock_set_state")
int tp_state(struct set_state_args *ctx)
{
    if (!tcp_record(ctx))
        return 0;
    if (ctx->oldstate == TCP_CLOSE && ctx->newstate == TCP_SYN_SENT)
        return remember_owner((__u64)ctx->skaddr);
    if (ctx->oldstate == TCP_SYN_RECV && ctx->newstate == TCP_ESTABLISHED) {
        if (targ_accepts && !targ_pid && !targ_comm[0] && !targ_cgid)
            emit_record(ctx, DIR_ACCEPT, 0, HOOK_TRACEPOINT);
        return 0;
    }
    if (ctx->oldstate != TCP_SYN_SENT)
        return 0;
    return connect_ended(ctx, true, HOOK_TRACEPOINT);
}

/* companion of the fentry/kprobe families, which see the connect but not its failure */
SEC("tracepoint/sock/inet_sock_set_state")
int tp_connect_fail(struct set_state_args *ctx)
{
    if (!tcp_record(ctx))
        return 0;
    if (ctx->oldstate == TCP_CLOSE && ctx->newstate == TCP_SYN_SENT)
        return remember_owner((__u64)ctx->skaddr);
    if (ctx->oldstate != TCP_SYN_SENT)
        return 0;
    return connect_ended(ctx, false, HOOK_TRACEPOINT);
}

char LICENSE[] SEC("license") = "GPL";
