// writesize: log2 histogram of write sizes (bytes asked for) per pid, uid and comm.
// Best hook: fentry on vfs_write (every write path: write, pwrite, writev's pieces do not
// go through it, kernel_write does); then kprobe on vfs_write; then the sys_enter_write
// tracepoint (write(2) only).
#include "tracing_common.h"

#define MAX_SLOTS 40

struct hist_key {
    __u32 pid;
    __u32 uid;
    char comm[TASK_COMM_LEN];
    __u32 slot;
    __u32 pad;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 10240);
    __type(key, struct hist_key);
    __type(value, __u64);
} hist SEC(".maps");

/* slot = floor(log2(v)), 0 and 1 share slot 0 (as libbpf-tools' log2l) */
static __always_inline __u32 log2_slot(__u64 v)
{
    __u32 r = 0;
    #pragma unroll
    for (int s = 32; s > 0; s >>= 1) {
        if (v >> s) {
            v >>= s;
            r += s;
        }
    }
    return r;
}

static __always_inline int on_write(__u64 size)
{
    struct hist_key key = {};
    __u64 one = 1, *cnt;
    if (!task_allowed())
        return 0;
    key.pid = bpf_get_current_pid_tgid() >> 32;
    key.uid = (__u32)bpf_get_current_uid_gid();
    bpf_get_current_comm(&key.comm, sizeof(key.comm));
    key.slot = log2_slot(size);
    if (key.slot >= MAX_SLOTS)
        key.slot = MAX_SLOTS - 1;
    cnt = bpf_map_lookup_elem(&hist, &key);
    if (cnt)
        __sync_fetch_and_add(cnt, 1);
    else if (bpf_map_update_elem(&hist, &key, &one, BPF_NOEXIST)) {
        cnt = bpf_map_lookup_elem(&hist, &key);  /* another CPU created it first */
        if (cnt)
            __sync_fetch_and_add(cnt, 1);
    }
    return 0;
}

SEC("fentry/vfs_write")
int BPF_PROG(fentry_write, void *file, const char *buf, __u64 count)
{
    return on_write(count);
}

SEC("kprobe/vfs_write")
int BPF_KPROBE(kprobe_write, void *file, const char *buf, __u64 count)
{
    return on_write(count);
}

SEC("tracepoint/syscalls/sys_enter_write")
int tp_enter_write(struct syscall_enter_ctx *ctx)
{
    return on_write(ctx->args[2]);
}

char LICENSE[] SEC("license") = "GPL";
