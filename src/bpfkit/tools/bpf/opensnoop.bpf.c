// opensnoop: every open with process, flags, mode, file name and result (fd or -errno).
// Best hook: fentry/fexit on do_sys_openat2, which serves open, openat and openat2.
// Fallback: the sys_enter/sys_exit tracepoints of openat, openat2 and open.
// The entry hook saves the arguments per thread; the exit hook emits them with the result.
#include "tracing_common.h"

/* records the ring buffer refused (full): user space reports them, never silent */
__u64 lost = 0;

#define PATH_LEN 256
#define AT_FDCWD -100

struct open_how {
    __u64 flags;
    __u64 mode;
    __u64 resolve;
} __attribute__((preserve_access_index));

/* the UAPI layout, as user space passes it to openat2 (no relocation) */
struct open_how_user {
    __u64 flags;
    __u64 mode;
    __u64 resolve;
};

struct args_t {
    const char *fname;
    __s64 dfd;
    __u64 flags;
    __u64 mode;
};

struct event {
    __u64 ts_ns;
    __u32 pid;
    __u32 tid;
    __u32 uid;
    __s32 ret;
    __s32 dfd;
    __u32 hook;
    __u64 flags;
    __u64 mode;
    char comm[TASK_COMM_LEN];
    char fname[PATH_LEN];
};

/* keeps struct event in the BTF: user space decodes ring buffer records with it */
const struct event *event_btf __attribute__((unused));

/* only failed opens (-x) */
const volatile bool targ_failed = false;

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 10240);
    __type(key, __u32);
    __type(value, struct args_t);
} start SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 256 * 1024);
} events SEC(".maps");

static __always_inline int on_enter(const char *fname, __s64 dfd, __u64 flags, __u64 mode)
{
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    struct args_t a = {.fname = fname, .dfd = dfd, .flags = flags, .mode = mode};
    if (!task_allowed())
        return 0;
    bpf_map_update_elem(&start, &tid, &a, BPF_ANY);
    return 0;
}

static __always_inline int on_exit(long ret, __u32 hook)
{
    __u64 id = bpf_get_current_pid_tgid();
    __u32 tid = (__u32)id;
    struct args_t *a = bpf_map_lookup_elem(&start, &tid);
    if (!a)
        return 0;
    if (targ_failed && ret >= 0)
        goto out;
    struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) {
        __sync_fetch_and_add(&lost, 1);
        goto out;
    }
    e->ts_ns = bpf_ktime_get_ns();
    e->pid = id >> 32;
    e->tid = tid;
    e->uid = (__u32)bpf_get_current_uid_gid();
    e->ret = ret;
    e->dfd = a->dfd;
    e->hook = hook;
    e->flags = a->flags;
    e->mode = a->mode;
    bpf_get_current_comm(&e->comm, sizeof(e->comm));
    if (bpf_probe_read_user_str(&e->fname, sizeof(e->fname), a->fname) < 0)
        e->fname[0] = 0;
    bpf_ringbuf_submit(e, 0);
out:
    bpf_map_delete_elem(&start, &tid);
    return 0;
}

/* ---- fentry/fexit: one hook for every open syscall */

SEC("fentry/do_sys_openat2")
int BPF_PROG(fentry_openat2, int dfd, const char *filename, struct open_how *how)
{
    return on_enter(filename, dfd, BPF_CORE_READ(how, flags), BPF_CORE_READ(how, mode));
}

SEC("fexit/do_sys_openat2")
int BPF_PROG(fexit_openat2, int dfd, const char *filename, struct open_how *how, long ret)
{
    return on_exit(ret, HOOK_FENTRY);
}

/* ---- syscall tracepoints: one pair per syscall */

SEC("tracepoint/syscalls/sys_enter_openat")
int tp_enter_openat(struct syscall_enter_ctx *ctx)
{
    return on_enter((const char *)ctx->args[1], (int)ctx->args[0], (int)ctx->args[2],
                    (__u32)ctx->args[3]);
}

SEC("tracepoint/syscalls/sys_exit_openat")
int tp_exit_openat(struct syscall_exit_ctx *ctx)
{
    return on_exit(ctx->ret, HOOK_TRACEPOINT);
}

SEC("tracepoint/syscalls/sys_enter_openat2")
int tp_enter_openat2(struct syscall_enter_ctx *ctx)
{
    struct open_how_user how = {};
    bpf_probe_read_user(&how, sizeof(how), (void *)ctx->args[2]);
    return on_enter((const char *)ctx->args[1], (int)ctx->args[0], how.flags, how.mode);
}

SEC("tracepoint/syscalls/sys_exit_openat2")
int tp_exit_openat2(struct syscall_exit_ctx *ctx)
{
    return on_exit(ctx->ret, HOOK_TRACEPOINT);
}

SEC("tracepoint/syscalls/sys_enter_open")
int tp_enter_open(struct syscall_enter_ctx *ctx)
{
    return on_enter((const char *)ctx->args[0], AT_FDCWD, (int)ctx->args[1],
                    (__u32)ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_exit_open")
int tp_exit_open(struct syscall_exit_ctx *ctx)
{
    return on_exit(ctx->ret, HOOK_TRACEPOINT);
}

char LICENSE[] SEC("license") = "GPL";
