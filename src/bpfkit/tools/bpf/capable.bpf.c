// capable: security capability checks (cap_capable), with the capability and the verdict.
// BCC uses a kprobe on cap_capable; this kernel generation has the capability:cap_capable
// tracepoint at its end (with the result): tp_btf first, else the tracepoint.
#include "bk_events.h"

struct cap_capable_ctx {
    __u64 common;
    const void *cred;
    const void *target_ns;
    const void *capable_ns;
    __s32 cap;
    __s32 ret;
};

struct event {
    __u64 ts_ns;
    __u32 pid;
    __u32 tid;
    __u32 uid;
    __s32 cap;
    __s32 ret;
    __u32 hook;
    char comm[TASK_COMM_LEN];
};

const struct event *event_btf __attribute__((unused));

/* --unique: one event per (tid, cap) */
const volatile bool targ_unique = false;

struct seen_key {
    __u32 tid;
    __s32 cap;
};

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 10240);
    __type(key, struct seen_key);
    __type(value, __u8);
} seen SEC(".maps");

static __always_inline int on_cap(__s32 cap, __s32 ret, __u32 hook)
{
    __u64 id = bpf_get_current_pid_tgid();
    struct event *e;
    if (!task_allowed())
        return 0;
    if (targ_unique) {
        struct seen_key k = {.tid = (__u32)id, .cap = cap};
        __u8 one = 1;
        if (bpf_map_lookup_elem(&seen, &k))
            return 0;
        bpf_map_update_elem(&seen, &k, &one, BPF_ANY);
    }
    e = reserve_event(sizeof(*e));
    if (!e)
        return 0;
    e->ts_ns = bpf_ktime_get_ns();
    e->pid = id >> 32;
    e->tid = (__u32)id;
    e->uid = (__u32)bpf_get_current_uid_gid();
    e->cap = cap;
    e->ret = ret;
    e->hook = hook;
    bpf_get_current_comm(&e->comm, sizeof(e->comm));
    bpf_ringbuf_submit(e, 0);
    return 0;
}

SEC("tp_btf/cap_capable")
int BPF_PROG(tp_btf_capable, const void *cred, void *target_ns, const void *capable_ns,
             int cap, int ret)
{
    return on_cap(cap, ret, HOOK_TP_BTF);
}

SEC("tracepoint/capability/cap_capable")
int tp_capable(struct cap_capable_ctx *ctx)
{
    return on_cap(ctx->cap, ctx->ret, HOOK_TRACEPOINT);
}

char LICENSE[] SEC("license") = "GPL";
