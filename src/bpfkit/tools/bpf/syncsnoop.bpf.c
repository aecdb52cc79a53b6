// syncsnoop: calls that flush data to storage (sync, syncfs, fsync, fdatasync, msync,
// sync_file_range), with the process and the fd.  Syscall entry tracepoints: the call
// is what matters, not how long it took.
#include "bk_events.h"

enum sync_call { C_SYNC, C_SYNCFS, C_FSYNC, C_FDATASYNC, C_MSYNC, C_SYNC_FILE_RANGE };

struct event {
    __u64 ts_ns;
    __u32 pid;
    __u32 tid;
    __s64 fd;  /* -1 where the call takes none */
    __u32 call;
    __u32 pad;
    char comm[TASK_COMM_LEN];
};

const struct event *event_btf __attribute__((unused));

static __always_inline int on_sync(__u32 call, __s64 fd)
{
    __u64 id = bpf_get_current_pid_tgid();
    struct event *e;
    if (!task_allowed())
        return 0;
    e = reserve_event(sizeof(*e));
    if (!e)
        return 0;
    e->ts_ns = bpf_ktime_get_ns();
    e->pid = id >> 32;
    e->tid = (__u32)id;
    e->fd = fd;
    e->call = call;
    e->pad = 0;
    bpf_get_current_comm(&e->comm, sizeof(e->comm));
    bpf_ringbuf_submit(e, 0);
    return 0;
}

#define SYNC_CALL(sys, call, fd_expr)                                   \
SEC("tracepoint/syscalls/sys_enter_" #sys)                              \
int tp_enter_##sys(struct syscall_enter_ctx *ctx)                       \
{                                                                       \
    return on_sync(call, fd_expr);                                      \
}

SYNC_CALL(sync, C_SYNC, -1)
SYNC_CALL(syncfs, C_SYNCFS, (int)ctx->args[0])
SYNC_CALL(fsync, C_FSYNC, (int)ctx->args[0])
SYNC_CALL(fdatasync, C_FDATASYNC, (int)ctx->args[0])
SYNC_CALL(msync, C_MSYNC, -1)
SYNC_CALL(sync_file_range, C_SYNC_FILE_RANGE, (int)ctx->args[0])

char LICENSE[] SEC("license") = "GPL";
