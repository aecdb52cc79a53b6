// funccount: calls of user-space functions matching a pattern, counted per function.
// One uprobe per matching symbol, all on this program; the attach cookie says which
// function fired (its index in the list user space made).
#include "bk_events.h"

#define MAX_FUNCS 1024

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, MAX_FUNCS);
    __type(key, __u32);
    __type(value, __u64);
} counts SEC(".maps");

SEC("uprobe")
int uprobe_count(struct pt_regs *ctx)
{
    __u32 idx = (__u32)bpf_get_attach_cookie(ctx);
    __u64 *v;
    if (!task_allowed())
        return 0;
    v = bpf_map_lookup_elem(&counts, &idx);
    if (v)
        *v += 1;
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
