// statsnoop: stat-family calls (stat, lstat, fstatat, statx, statfs) with the path and
// the result.  The syscall tracepoints are the hook; sys_enter saves the path pointer per
// thread, sys_exit reads the string (now paged in) and emits it with the result.
#include "bk_events.h"

#define PATH_LEN 256

enum stat_call { C_STAT, C_LSTAT, C_FSTATAT, C_STATX, C_STATFS };

struct args_t {
    const char *path;
    __u32 call;
};

struct event {
    __u64 ts_ns;
    __u32 pid;
    __u32 tid;
    __u32 uid;
    __s32 ret;
    __u32 call;
    char comm[TASK_COMM_LEN];
    char path[PATH_LEN];
};

const struct event *event_btf __attribute__((unused));

const volatile bool targ_failed = false;  /* -x */

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 10240);
    __type(key, __u32);
    __type(value, struct args_t);
} start SEC(".maps");

static __always_inline int on_enter(const char *path, __u32 call)
{
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    struct args_t a = {.path = path, .call = call};
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
    e->ret = ret;
    e->call = a->call;
    bpf_get_current_comm(&e->comm, sizeof(e->comm));
    if (bpf_probe_read_user_str(&e->path, sizeof(e->path), a->path) < 0)
        e->path[0] = 0;
    bpf_ringbuf_submit(e, 0);
out:
    bpf_map_delete_elem(&start, &tid);
    return 0;
}

#define STAT_CALL(sys, argi, call)                                      \
SEC("tracepoint/syscalls/sys_enter_" #sys)                              \
int tp_enter_##sys(struct syscall_enter_ctx *ctx)                       \
{                                                                       \
    return on_enter((const char *)ctx->args[argi], call);               \
}                                                                       \
SEC("tracepoint/syscalls/sys_exit_" #sys)                               \
int tp_exit_##sys(struct syscall_exit_ctx *ctx)                         \
{                                                                       \
    return on_exit(ctx->ret);                                           \
}

STAT_CALL(newstat, 0, C_STAT)
STAT_CALL(newlstat, 0, C_LSTAT)
STAT_CALL(newfstatat, 1, C_FSTATAT)
STAT_CALL(statx, 1, C_STATX)
STAT_CALL(statfs, 0, C_STATFS)

char LICENSE[] SEC("license") = "GPL";
