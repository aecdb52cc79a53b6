// biosnoop: every block I/O request with the process that submitted it, the disk, the
// operation, sector, size and latency (and, -Q, the time it spent queued).
// block_io_start (blk_account_io_start, in the submitter's context) records who; issue
// records when the device got it; complete emits.  tp_btf keys requests by address, the
// tracepoint fallback by (device, sector).
#include "bk_block.h"

struct who {
    __u64 ts;  /* insertion into the queue (io_start) */
    __u32 pid;
    char comm[TASK_COMM_LEN];
};

struct event {
    __u64 ts_ns;
    __u64 delta_ns;   /* issue -> complete */
    __u64 qdelta_ns;  /* io_start -> issue, 0 if unknown */
    __u64 sector;
    __u32 len;
    __u32 pid;
    __u32 dev;
    __u32 op;
    __s32 error;
    __u32 hook;
    char comm[TASK_COMM_LEN];
};

const struct event *event_btf __attribute__((unused));

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 10240);
    __type(key, struct rq_key);
    __type(value, struct who);
} whos SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 10240);
    __type(key, struct rq_key);
    __type(value, __u64);
} start SEC(".maps");

static __always_inline int on_io_start(struct rq_key *k, __u32 dev)
{
    struct who w = {.ts = bpf_ktime_get_ns()};
    if (!dev_allowed(dev))
        return 0;
    w.pid = bpf_get_current_pid_tgid() >> 32;
    bpf_get_current_comm(&w.comm, sizeof(w.comm));
    bpf_map_update_elem(&whos, k, &w, BPF_ANY);
    return 0;
}

static __always_inline int on_issue(struct rq_key *k, __u32 dev)
{
    __u64 ts = bpf_ktime_get_ns();
    if (!dev_allowed(dev))
        return 0;
    bpf_map_update_elem(&start, k, &ts, BPF_ANY);
    return 0;
}

static __always_inline int on_complete(struct rq_key *k, __u32 dev, __u64 sector, __u32 len,
                                       __u32 op, __s32 error, __u32 hook)
{
    __u64 *tsp = bpf_map_lookup_elem(&start, k), now = bpf_ktime_get_ns();
    struct who *w;
    struct event *e;
    if (!tsp)
        return 0;
    e = reserve_event(sizeof(*e));
    if (!e)
        goto out;
    e->ts_ns = now;
    e->delta_ns = now - *tsp;
    e->qdelta_ns = 0;
    e->sector = sector;
    e->len = len;
    e->dev = dev;
    e->op = op;
    e->error = error;
    e->hook = hook;
    e->pid = 0;
    e->comm[0] = 0;
    w = bpf_map_lookup_elem(&whos, k);
    if (w) {
        e->pid = w->pid;
        __builtin_memcpy(e->comm, w->comm, sizeof(e->comm));
        if (*tsp > w->ts)
            e->qdelta_ns = *tsp - w->ts;
    }
    bpf_ringbuf_submit(e, 0);
out:
    bpf_map_delete_elem(&start, k);
    bpf_map_delete_elem(&whos, k);
    return 0;
}

SEC("tp_btf/block_io_start")
int BPF_PROG(tp_btf_io_start, struct request___bk *rq)
{
    struct rq_key k = {.a = (__u64)rq};
    return on_io_start(&k, rq_dev(rq));
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(tp_btf_issue, struct request___bk *rq)
{
    struct rq_key k = {.a = (__u64)rq};
    return on_issue(&k, rq_dev(rq));
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(tp_btf_complete, struct request___bk *rq, int error, unsigned int nr_bytes)
{
    struct rq_key k = {.a = (__u64)rq};
    return on_complete(&k, rq_dev(rq), BPF_CORE_READ(rq, __sector), nr_bytes, rq_op(rq),
                       error, HOOK_TP_BTF);
}

SEC("tracepoint/block/block_io_start")
int tp_io_start(struct tp_block_rq *ctx)
{
    struct rq_key k = {.a = ctx->dev, .b = ctx->sector};
    return on_io_start(&k, ctx->dev);
}

SEC("tracepoint/block/block_rq_issue")
int tp_issue(struct tp_block_rq *ctx)
{
    struct rq_key k = {.a = ctx->dev, .b = ctx->sector};
    return on_issue(&k, ctx->dev);
}

SEC("tracepoint/block/block_rq_complete")
int tp_complete(struct tp_block_rq_complete *ctx)
{
    struct rq_key k = {.a = ctx->dev, .b = ctx->sector};
    return on_complete(&k, ctx->dev, ctx->sector, ctx->nr_sector * 512, rwbs_op(ctx->rwbs),
                       ctx->error, HOOK_TRACEPOINT);
}

char LICENSE[] SEC("license") = "GPL";
