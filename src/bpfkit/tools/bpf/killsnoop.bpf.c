// killsnoop: signals sent with kill(2), tkill(2) and tgkill(2): sender, signal, target and
// the result.  The syscall tracepoints are the hook (libbpf-tools' sigsnoop does the
// same); sys_enter saves the arguments per thread, sys_exit emits them with the result.
#include "bk_events.h"

#define SYS_KILL 0
#define SYS_TKILL 1
#define SYS_TGKILL 2

struct args_t {
    __s32 tpid;
    __s32 sig;
    __u32 call;
};

struct event {
    __u64 ts_ns;
    __u32 pid;
    __u32 tid;
    __u32 uid;
    __s32 tpid;
    __s32 sig;
    __s32 ret;
    __u32 call;
    char comm[TASK_COMM_LEN];
};

const struct event *event_btf __attribute__((unused));

const volatile bool targ_failed = false;  /* -x */
const volatile __s32 targ_sig = 0;        /* -s */

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 10240);
    __type(key, __u32);
    __type(value, struct args_t);
} start SEC(".maps");

static __always_inline int on_enter(__s32 tpid, __s32 sig, __u32 call)
{
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    struct args_t a = {.tpid = tpid, .sig = sig, .call = call};
    if (targ_sig && sig != targ_sig)
        return 0;
    if (!task_allowed())
        return 0;
    bpf_map_update_elem(&start, &tid, &a, BPF_ANY);
    return 0;
}

static __always_inline int on_exit(long ret)
{
    __u64 id = bpf_get_current_pid_tgid();
    __u32 tid = (__u32)id;
    struct args_t *a = bpf_map_lookup_elem(&start, &tid);
    struct event *e;
    if (!a)
        return 0;
    if (targ_failed && ret >= 0)
        goto out;
    e = reserve_event(sizeof(*e));
    if (!e)
        goto out;
    e->ts_ns = bpf_ktime_get_ns();
    e->pid = id >> 32;
    e->tid = tid;
    e->uid = (__u32)bpf_get_current_uid_gid();
    e->tpid = a->tpid;
    e->sig = a->sig;
    e->call = a->call;
    e->ret = ret;
    bpf_get_current_comm(&e->comm, sizeof(e->comm));
    bpf_ringbuf_submit(e, 0);
out:
    bpf_map_delete_elem(&start, &tid);
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_kill")
int tp_enter_kill(struct syscall_enter_ctx *ctx)
{
    return on_enter((__s32)ctx->args[0], (__s32)ctx->args[1], SYS_KILL);
}

SEC("tracepoint/syscalls/sys_exit_kill")
int tp_exit_kill(struct syscall_exit_ctx *ctx)
{
    return on_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_tkill")
int tp_enter_tkill(struct syscall_enter_ctx *ctx)
{
    return on_enter((__s32)ctx->args[0], (__s32)ctx->args[1], SYS_TKILL);
}

SEC("tracepoint/syscalls/sys_exit_tkill")
int tp_exit_tkill(struct syscall_exit_ctx *ctx)
{
    return on_exit(ctx->ret);
}

/* tgkill(tgid, tid, sig): the target reported is the thread */
SEC("tracepoint/syscalls/sys_enter_tgkill")
int tp_enter_tgkill(struct syscall_enter_ctx *ctx)
{
    return on_enter((__s32)ctx->args[1], (__s32)ctx->args[2], SYS_TGKILL);
}

SEC("tracepoint/syscalls/sys_exit_tgkill")
int tp_exit_tgkill(struct syscall_exit_ctx *ctx)
{
    return on_exit(ctx->ret);
}

char LICENSE[] SEC("license") = "GPL";
