// bitesize: block I/O sizes as a histogram per process name (the process issuing the
// request).  tp_btf on block_rq_issue, else the tracepoint (which carries the comm).
#include "bk_block.h"

struct comm_key {
    char comm[TASK_COMM_LEN];
    __u32 slot;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 10240);
    __type(key, struct comm_key);
    __type(value, __u64);
} hist SEC(".maps");

static __always_inline int on_issue(__u32 dev, __u32 bytes)
{
    struct comm_key key = {};
    if (!dev_allowed(dev) || !task_allowed())
        return 0;
    bpf_get_current_comm(&key.comm, sizeof(key.comm));
    key.slot = log2_slot(bytes / 1024);
    map_add(&hist, &key, 1);
    return 0;
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(tp_btf_issue, struct request___bk *rq)
{
    return on_issue(rq_dev(rq), BPF_CORE_READ(rq, __data_len));
}

SEC("tracepoint/block/block_rq_issue")
int tp_issue(struct tp_block_rq *ctx)
{
    return on_issue(ctx->dev, ctx->bytes);
}

char LICENSE[] SEC("license") = "GPL";
