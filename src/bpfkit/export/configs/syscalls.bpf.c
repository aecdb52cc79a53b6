// Syscall counts by syscall number, and failed syscalls by number and errno.
#include "common.h"

struct sys_enter_ctx {          /* raw_syscalls/sys_enter */
    __u64 common;
    long id;
    unsigned long args[6];
};

struct sys_exit_ctx {           /* raw_syscalls/sys_exit */
    __u64 common;
    long id;
    long ret;
};

struct err_key {
    __u32 nr;
    __s32 err;                  /* positive errno */
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, __u32);
    __type(value, __u64);
} syscall_counts SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __type(key, struct err_key);
    __type(value, __u64);
} syscall_errors SEC(".maps");

SEC("tp/raw_syscalls/sys_enter")
int count_enter(struct sys_enter_ctx *ctx)
{
    __u32 nr = ctx->id;
    if (!tgid_allowed() || ctx->id < 0)
        return 0;
    add(&syscall_counts, &nr, 1);
    return 0;
}

SEC("tp/raw_syscalls/sys_exit")
int count_exit(struct sys_exit_ctx *ctx)
{
    struct err_key k = {};
    if (!tgid_allowed() || ctx->ret >= 0 || ctx->ret < -4095 || ctx->id < 0)
        return 0;
    k.nr = ctx->id;
    k.err = -ctx->ret;
    add(&syscall_errors, &k, 1);
    return 0;
}
