/* Shared by bpfkit's tracing tools (opensnoop, mkdirsnoop, writesize, syscount,
 * tcpconnect, netrx, bashreadline): the cgroup filter and the generic layout of
 * syscall tracepoint records (same on every architecture: a u64 header, the syscall
 * number, then six unsigned-long arguments or the return value). */
#ifndef BPFKIT_TRACING_COMMON_H
#define BPFKIT_TRACING_COMMON_H
#include "tools.h"
#include <asm/ptrace.h>  /* struct pt_regs (UAPI layout) for BPF_KPROBE */

struct syscall_enter_ctx {
    __u64 common;
    __s32 syscall_nr;
    __u32 pad;
    unsigned long args[6];
};

struct syscall_exit_ctx {
    __u64 common;
    __s32 syscall_nr;
    __u32 pad;
    long ret;
};

/* which hook produced an event (shown by the tools) */
enum hook_kind {
    HOOK_TRACEPOINT = 0,
    HOOK_RAW_TP = 1,
    HOOK_TP_BTF = 2,
    HOOK_KPROBE = 3,
    HOOK_FENTRY = 4,
    HOOK_UPROBE = 5,
};

#endif
