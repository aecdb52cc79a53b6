// biolatency: block device I/O latency as a histogram: request issue (or, -Q, insert into
// the queue) to completion, overall, per disk (-D) or per operation (-F).
// tp_btf on block_rq_insert/issue/complete (requests keyed by address), else the block
// tracepoints (requests keyed by device and sector).
#include "bk_block.h"

const volatile bool targ_per_disk = false;  /* -D */
const volatile bool targ_per_flag = false;  /* -F */
const volatile bool targ_ms = false;        /* -m */

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 10240);
    __type(key, struct rq_key);
    __type(value, __u64);
} start SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 10240);
    __type(key, struct hist_key);
    __type(value, __u64);
} hist SEC(".maps");

static __always_inline int on_start(struct rq_key *k, __u32 dev, __u64 flags)
{
    __u64 ts = bpf_ktime_get_ns();
    if (!dev_allowed(dev))
        return 0;
    /* insert first (-Q): the issue of an inserted request keeps the insert time */
    bpf_map_update_elem(&start, k, &ts, flags);
    return 0;
}

static __always_inline int on_done(struct rq_key *k, __u32 dev, __u32 op)
{
    struct hist_key key = {};
    __u64 *tsp = bpf_map_lookup_elem(&start, k), delta;
    if (!tsp)
        return 0;
    delta = bpf_ktime_get_ns() - *tsp;
    bpf_map_delete_elem(&start, k);
    if ((__s64)delta < 0)
        return 0;
    delta /= targ_ms ? 1000000 : 1000;
    if (targ_per_disk)
        key.id = dev;
    else if (targ_per_flag)
        key.id = op;
    key.slot = log2_slot(delta);
    map_add(&hist, &key, 1);
    return 0;
}

SEC("tp_btf/block_rq_insert")
int BPF_PROG(tp_btf_insert, struct request___bk *rq)
{
    struct rq_key k = {.a = (__u64)rq};
    return on_start(&k, rq_dev(rq), BPF_ANY);
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(tp_btf_issue, struct request___bk *rq)
{
    struct rq_key k = {.a = (__u64)rq};
    return on_start(&k, rq_dev(rq), BPF_NOEXIST);
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(tp_btf_complete, struct request___bk *rq, int error, unsigned int nr_bytes)
{
    struct rq_key k = {.a = (__u64)rq};
    return on_done(&k, rq_dev(rq), rq_op(rq));
}

SEC("tracepoint/block/block_rq_insert")
int tp_insert(struct tp_block_rq *ctx)
{
    struct rq_key k = {.a = ctx->dev, .b = ctx->sector};
    return on_start(&k, ctx->dev, BPF_ANY);
}

SEC("tracepoint/block/block_rq_issue")
int tp_issue(struct tp_block_rq *ctx)
{
    struct rq_key k = {.a = ctx->dev, .b = ctx->sector};
    return on_start(&k, ctx->dev, BPF_NOEXIST);
}

SEC("tracepoint/block/block_rq_complete")
int tp_complete(struct tp_block_rq_complete *ctx)
{
    struct rq_key k = {.a = ctx->dev, .b = ctx->sector};
    return on_done(&k, ctx->dev, rwbs_op(ctx->rwbs));
}

char LICENSE[] SEC("license") = "GPL";
