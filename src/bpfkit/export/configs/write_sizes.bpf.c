// A histogram of write(2) sizes: slot i counts writes of at most 2^i bytes (and more
// than 2^(i-1)); slot 33 holds the sum of all sizes, for the histogram's _sum.
#include "common.h"

#define MAX_SLOT 32
#define SUM_SLOT (MAX_SLOT + 1)

struct sys_enter_write_ctx {    /* syscalls/sys_enter_write */
    __u64 common;
    int nr;
    int pad;
    __u64 fd;
    __u64 buf;
    __u64 count;
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, SUM_SLOT + 1);
    __type(key, __u32);
    __type(value, __u64);
} write_size_hist SEC(".maps");

/* smallest i with v <= 2^i */
static __always_inline __u32 log2_ceil(__u64 v)
{
    __u32 r = 0;
    __u64 x;
    if (v <= 1)
        return 0;
    x = v - 1;
    if (x >> 32) { x >>= 32; r += 32; }
    if (x >> 16) { x >>= 16; r += 16; }
    if (x >> 8) { x >>= 8; r += 8; }
    if (x >> 4) { x >>= 4; r += 4; }
    if (x >> 2) { x >>= 2; r += 2; }
    if (x >> 1) { r += 1; }
    return r + 1;
}

SEC("tp/syscalls/sys_enter_write")
int on_write(struct sys_enter_write_ctx *ctx)
{
    __u32 slot, sum = SUM_SLOT;
    __u64 *v;
    if (!tgid_allowed())
        return 0;
    slot = log2_ceil(ctx->count);
    if (slot > MAX_SLOT)
        slot = MAX_SLOT;
    v = bpf_map_lookup_elem(&write_size_hist, &slot);
    if (v)
        __sync_fetch_and_add(v, 1);
    v = bpf_map_lookup_elem(&write_size_hist, &sum);
    if (v)
        __sync_fetch_and_add(v, ctx->count);
    return 0;
}
