// mountsnoop: mount(2) and umount2(2) calls with their arguments, the result and the
// caller's mount namespace.  Syscall tracepoints: sys_enter saves the argument pointers per
// thread, sys_exit reads the strings and emits them with the result.
#include "bk_events.h"

#define FS_LEN 64
#define PATH_LEN 128
#define DATA_LEN 64

struct ns_common___bk {
    unsigned int inum;
} __attribute__((preserve_access_index));

struct mnt_namespace___bk {
    struct ns_common___bk ns;
} __attribute__((preserve_access_index));

struct nsproxy___bk {
    struct mnt_namespace___bk *mnt_ns;
} __attribute__((preserve_access_index));

struct task_struct___bkns {
    struct nsproxy___bk *nsproxy;
} __attribute__((preserve_access_index));

enum { CALL_MOUNT = 0, CALL_UMOUNT = 1 };

struct args_t {
    const char *src;
    const char *dest;
    const char *fs;
    const char *data;
    __u64 flags;
    __u32 call;
};

struct event {
    __u64 ts_ns;
    __u64 flags;
    __u64 mnt_ns;
    __u32 pid;
    __u32 tid;
    __s32 ret;
    __u32 call;
    char comm[TASK_COMM_LEN];
    char src[PATH_LEN];
    char dest[PATH_LEN];
    char fs[FS_LEN];
    char data[DATA_LEN];
};

const struct event *event_btf __attribute__((unused));

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 10240);
    __type(key, __u32);
    __type(value, struct args_t);
} start SEC(".maps");

static __always_inline int on_enter(struct args_t *a)
{
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    if (!task_allowed())
        return 0;
    bpf_map_update_elem(&start, &tid, a, BPF_ANY);
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_mount")
int tp_enter_mount(struct syscall_enter_ctx *ctx)
{
    struct args_t a = {.src = (const char *)ctx->args[0], .dest = (const char *)ctx->args[1],
                       .fs = (const char *)ctx->args[2], .flags = ctx->args[3],
                       .data = (const char *)ctx->args[4], .call = CALL_MOUNT};
    return on_enter(&a);
}

SEC("tracepoint/syscalls/sys_enter_umount")
int tp_enter_umount(struct syscall_enter_ctx *ctx)
{
    struct args_t a = {.dest = (const char *)ctx->args[0], .flags = ctx->args[1],
                       .call = CALL_UMOUNT};
    return on_enter(&a);
}

static __always_inline int on_exit(long ret)
{
    __u64 id = bpf_get_current_pid_tgid();
    __u32 tid = (__u32)id;
    struct args_t *a = bpf_map_lookup_elem(&start, &tid);
    struct task_struct___bkns *task;
    struct event *e;
    if (!a)
        return 0;
    e = reserve_event(sizeof(*e));
    if (!e)
        goto out;
    __builtin_memset(e, 0, sizeof(*e));
    e->ts_ns = bpf_ktime_get_ns();
    e->flags = a->flags;
    task = (struct task_struct___bkns *)bpf_get_current_task();
    e->mnt_ns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
    e->pid = id >> 32;
    e->tid = tid;
    e->ret = ret;
    e->call = a->call;
    bpf_get_current_comm(&e->comm, sizeof(e->comm));
    if (a->src)
        bpf_probe_read_user_str(e->src, sizeof(e->src), a->src);
    if (a->dest)
        bpf_probe_read_user_str(e->dest, sizeof(e->dest), a->dest);
    if (a->fs)
        bpf_probe_read_user_str(e->fs, sizeof(e->fs), a->fs);
    if (a->data)
        bpf_probe_read_user_str(e->data, sizeof(e->data), a->data);
    bpf_ringbuf_submit(e, 0);
out:
    bpf_map_delete_elem(&start, &tid);
    return 0;
}

SEC("tracepoint/syscalls/sys_exit_mount")
int tp_exit_mount(struct syscall_exit_ctx *ctx)
{
    return on_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_umount")
int tp_exit_umount(struct syscall_exit_ctx *ctx)
{
    return on_exit(ctx->ret);
}

char LICENSE[] SEC("license") = "GPL";
