// offcputime: time spent off-CPU (blocked, sleeping, waiting), summed per kernel + user
// stack.  At sched_switch the outgoing task is current: its stacks (where it blocked) are
// taken then, and the time is added when it is switched back in.  tp_btf, else raw_tp.
#include "bk_sched.h"

#define PERF_MAX_STACK_DEPTH 127

struct key_t {
    __u32 pid;
    __u32 tgid;
    __s32 kern_stack_id;
    __s32 user_stack_id;
    char comm[TASK_COMM_LEN];
};

struct start_t {
    __u64 ts;
    __s32 kern_stack_id;
    __s32 user_stack_id;
};

const volatile bool targ_user_only = false;    /* -U */
const volatile bool targ_kernel_only = false;  /* -K */
const volatile __u64 targ_min_us = 1;          /* -m */
const volatile __u64 targ_max_us = (__u64)-1;  /* -M */

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 10240);
    __type(key, __u32);
    __type(value, struct start_t);
} start SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_STACK_TRACE);
    __uint(max_entries, 16384);
    __uint(key_size, sizeof(__u32));
    __uint(value_size, PERF_MAX_STACK_DEPTH * sizeof(__u64));
} stacks SEC(".maps");

/* key -> off-CPU microseconds */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 10240);
    __type(key, struct key_t);
    __type(value, __u64);
} counts SEC(".maps");

/* stacks the stack map had no room for: reported, not silently merged */
__u64 stack_errors = 0;

static __always_inline int on_switch(void *ctx, struct task_struct___bk *prev,
                                     struct task_struct___bk *next)
{
    __u32 pid = BPF_CORE_READ(prev, pid);
    __u64 now = bpf_ktime_get_ns();
    struct start_t *s, st = {.ts = now, .kern_stack_id = -1, .user_stack_id = -1};
    struct key_t key = {};
    __u64 delta;

    if (task_ids_allowed(BPF_CORE_READ(prev, tgid), pid)) {
        if (!targ_user_only)
            st.kern_stack_id = bpf_get_stackid(ctx, &stacks, 0);
        if (!targ_kernel_only)
            st.user_stack_id = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
        if (st.kern_stack_id == -12 /* -ENOMEM */ || st.user_stack_id == -12)
            __sync_fetch_and_add(&stack_errors, 1);
        bpf_map_update_elem(&start, &pid, &st, BPF_ANY);
    }
    pid = BPF_CORE_READ(next, pid);
    s = bpf_map_lookup_elem(&start, &pid);
    if (!s)
        return 0;
    delta = (now - s->ts) / 1000;
    key.kern_stack_id = s->kern_stack_id;
    key.user_stack_id = s->user_stack_id;
    bpf_map_delete_elem(&start, &pid);
    if (delta < targ_min_us || delta > targ_max_us)
        return 0;
    key.pid = pid;
    key.tgid = BPF_CORE_READ(next, tgid);
    BPF_CORE_READ_STR_INTO(&key.comm, next, comm);
    map_add(&counts, &key, delta);
    return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(tp_btf_switch, bool preempt, struct task_struct___bk *prev,
             struct task_struct___bk *next)
{
    return on_switch(ctx, prev, next);
}

SEC("raw_tp/sched_switch")
int BPF_PROG(raw_tp_switch, bool preempt, struct task_struct___bk *prev,
             struct task_struct___bk *next)
{
    return on_switch(ctx, prev, next);
}

char LICENSE[] SEC("license") = "GPL";
