// mkdirsnoop: directories created, with the mode and the result (0 or -errno).
// Best hooks: fentry+fexit on vfs_mkdir (every mkdir path, incl. in-kernel), then
// kprobe+kretprobe on vfs_mkdir, then the sys_enter/sys_exit tracepoints of mkdirat and
// mkdir.  The entry hook keeps the name per thread, the exit hook emits it with the result.
#include "tracing_common.h"

/* records the ring buffer refused (full): user space reports them, never silent */
__u64 lost = 0;

#define NAME_LEN 256
#define MAX_ERRNO 4095

struct qstr {
    const unsigned char *name;
} __attribute__((preserve_access_index));

struct dentry {
    struct qstr d_name;
} __attribute__((preserve_access_index));

struct args_t {
    const char *name;     /* user pointer (tracepoints) or kernel pointer (kernel hooks) */
    __u32 mode;
    __u32 kernel;         /* name points into kernel memory */
};

struct event {
    __u64 ts_ns;
    __u32 pid;
    __u32 tid;
    __u32 uid;
    __s32 ret;
    __u32 mode;
    __u32 hook;
    char comm[TASK_COMM_LEN];
    char name[NAME_LEN];
};

const struct event *event_btf __attribute__((unused));

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

static __always_inline int on_enter(const char *name, __u32 mode, bool kernel)
{
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    struct args_t a = {.name = name, .mode = mode, .kernel = kernel};
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
    e->mode = a->mode;
    e->hook = hook;
    bpf_get_current_comm(&e->comm, sizeof(e->comm));
    long n = a->kernel ? bpf_probe_read_kernel_str(&e->name, sizeof(e->name), a->name)
                       : bpf_probe_read_user_str(&e->name, sizeof(e->name), a->name);
    if (n < 0)
        e->name[0] = 0;
    bpf_ringbuf_submit(e, 0);
out:
    bpf_map_delete_elem(&start, &tid);
    return 0;
}

/* vfs_mkdir returns a dentry (6.15+) or an int (before): an error either way is a small
 * negative value; anything else is success. */
static __always_inline long mkdir_result(long ret)
{
    return (unsigned long)ret >= (unsigned long)-MAX_ERRNO ? ret : 0;
}

/* ---- fentry/fexit */

SEC("fentry/vfs_mkdir")
int BPF_PROG(fentry_mkdir, void *idmap, void *dir, struct dentry *dentry, unsigned short mode)
{
    return on_enter((const char *)BPF_CORE_READ(dentry, d_name.name), mode, true);
}

SEC("fexit/vfs_mkdir")
int BPF_PROG(fexit_mkdir, void *idmap, void *dir, struct dentry *dentry, unsigned short mode,
             long ret)
{
    return on_exit(mkdir_result(ret), HOOK_FENTRY);
}

/* ---- kprobe/kretprobe */

SEC("kprobe/vfs_mkdir")
int BPF_KPROBE(kprobe_mkdir, void *idmap, void *dir, struct dentry *dentry,
               unsigned short mode)
{
    return on_enter((const char *)BPF_CORE_READ(dentry, d_name.name), mode, true);
}

SEC("kretprobe/vfs_mkdir")
int BPF_KRETPROBE(kretprobe_mkdir, long ret)
{
    return on_exit(mkdir_result(ret), HOOK_KPROBE);
}

/* ---- syscall tracepoints */

SEC("tracepoint/syscalls/sys_enter_mkdirat")
int tp_enter_mkdirat(struct syscall_enter_ctx *ctx)
{
    return on_enter((const char *)ctx->args[1], (__u32)ctx->args[2], false);
}

SEC("tracepoint/syscalls/sys_exit_mkdirat")
int tp_exit_mkdirat(struct syscall_exit_ctx *ctx)
{
    return on_exit(ctx->ret, HOOK_TRACEPOINT);
}

SEC("tracepoint/syscalls/sys_enter_mkdir")
int tp_enter_mkdir(struct syscall_enter_ctx *ctx)
{
    return on_enter((const char *)ctx->args[0], (__u32)ctx->args[1], false);
}

SEC("tracepoint/syscalls/sys_exit_mkdir")
int tp_exit_mkdir(struct syscall_exit_ctx *ctx)
{
    return on_exit(ctx->ret, HOOK_TRACEPOINT);
}

char LICENSE[] SEC("license") = "GPL";
