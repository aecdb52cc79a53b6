/* Events into a deliberately tiny ring buffer (and a perf buffer), for the loss counting
 * tests: reserve/submit on getppid, bpf_ringbuf_output from a subprogram on getpgid,
 * perf_event_output on getsid; every event of the target process is counted in `made`. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

const volatile __u32 targ_pid = 0;
__u64 made = 0;

struct event {
    __u32 pid;
    __u32 seq;
    char pad[56];
};

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096);
} events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
    __uint(key_size, sizeof(__u32));
    __uint(value_size, sizeof(__u32));
} perf_events SEC(".maps");

/* targ_pid if set, else a process named "bklossy" (a workload started by `bpfkit run`) */
static __always_inline int mine(void)
{
    char c[16];
    if (targ_pid)
        return (bpf_get_current_pid_tgid() >> 32) == targ_pid;
    bpf_get_current_comm(c, sizeof(c));
    return c[0] == 'b' && c[1] == 'k' && c[2] == 'l' && c[3] == 'o' && c[4] == 's' &&
           c[5] == 's' && c[6] == 'y' && c[7] == 0;
}

static __noinline int emit_output(__u32 seq)
{
    struct event e = {.pid = targ_pid, .seq = seq};
    return bpf_ringbuf_output(&events, &e, sizeof(e), 0);
}

SEC("tp/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
    struct event *e;
    __u64 seq;
    if (!mine())
        return 0;
    seq = __sync_fetch_and_add(&made, 1);
    e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e)
        return 0;
    e->pid = targ_pid;
    e->seq = seq;
    bpf_ringbuf_submit(e, 0);
    return 0;
}

SEC("tp/syscalls/sys_enter_getpgid")
int on_getpgid(void *ctx)
{
    __u64 seq;
    if (!mine())
        return 0;
    seq = __sync_fetch_and_add(&made, 1);
    if (emit_output(seq) < 0)
        return 1;   /* a use of the result after the call: must survive instrumentation */
    return 0;
}

SEC("tp/syscalls/sys_enter_getsid")
int on_getsid(void *ctx)
{
    struct event e = {};
    if (!mine())
        return 0;
    e.pid = targ_pid;
    e.seq = __sync_fetch_and_add(&made, 1);
    bpf_perf_event_output(ctx, &perf_events, BPF_F_CURRENT_CPU, &e, sizeof(e));
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
