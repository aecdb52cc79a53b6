// hookcost: one minimal program per kind of hook, each counting the getpid() calls of one
// process.  User space loads them one at a time, times a getpid() loop with each attached
// and compares with no probe: the difference is what the hook costs per event.
#include "tools.h"

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} hits SEC(".maps");

#define NR_GETPID 39   /* x86_64 */

static __always_inline int hit(void)
{
    __u32 k = 0;
    __u64 *c;
    if (!pid_allowed())
        return 0;
    c = bpf_map_lookup_elem(&hits, &k);
    if (c)
        __sync_fetch_and_add(c, 1);
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_tracepoint(void *ctx)
{
    return hit();
}

// raw_tp/sys_enter fires on every syscall: args are (struct pt_regs *regs, long id).
SEC("raw_tp/sys_enter")
int on_raw_tp(struct bpf_raw_tracepoint_args *ctx)
{
    if (ctx->args[1] != NR_GETPID)
        return 0;
    return hit();
}

SEC("tp_btf/sys_enter")
int BPF_PROG(on_tp_btf, struct pt_regs *regs, long id)
{
    if (id != NR_GETPID)
        return 0;
    return hit();
}

SEC("fentry/__x64_sys_getpid")
int on_fentry(void *ctx)
{
    return hit();
}

SEC("kprobe/__x64_sys_getpid")
int on_kprobe(void *ctx)
{
    return hit();
}

// Attached by user space to libc's getpid(), for the measuring process only.
SEC("uprobe")
int on_uprobe(void *ctx)
{
    return hit();
}

char LICENSE[] SEC("license") = "GPL";
