// runqlat: run queue (scheduler) latency as a histogram: the time from a task becoming
// runnable (woken, new, or preempted while runnable) to it running on a CPU.
// tp_btf on sched_wakeup, sched_wakeup_new and sched_switch, else the same as raw_tp
// (the task pointers come from the tracepoint arguments either way).
#include "bk_sched.h"

const volatile bool targ_per_process = false;  /* -P: one histogram per process */
const volatile bool targ_per_thread = false;   /* -L: one histogram per thread */
const volatile bool targ_ms = false;           /* -m: milliseconds */

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 10240);
    __type(key, __u32);
    __type(value, __u64);
} start SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 10240);
    __type(key, struct hist_key);
    __type(value, __u64);
} hist SEC(".maps");

static __always_inline int enqueue(struct task_struct___bk *p)
{
    __u32 pid = BPF_CORE_READ(p, pid), tgid = BPF_CORE_READ(p, tgid);
    __u64 ts;
    if (!task_ids_allowed(tgid, pid))
        return 0;
    ts = bpf_ktime_get_ns();
    bpf_map_update_elem(&start, &pid, &ts, BPF_ANY);
    return 0;
}

static __always_inline int on_switch(struct task_struct___bk *prev,
                                     struct task_struct___bk *next)
{
    struct hist_key key = {};
    __u32 pid;
    __u64 *tsp, delta;

    if (task_state(prev) == TASK_RUNNING)
        enqueue(prev);  /* preempted: runnable again from now */
    pid = BPF_CORE_READ(next, pid);
    tsp = bpf_map_lookup_elem(&start, &pid);
    if (!tsp)
        return 0;
    delta = bpf_ktime_get_ns() - *tsp;
    bpf_map_delete_elem(&start, &pid);
    if ((__s64)delta < 0)
        return 0;
    delta /= targ_ms ? 1000000 : 1000;
    if (targ_per_process)
        key.id = BPF_CORE_READ(next, tgid);
    else if (targ_per_thread)
        key.id = pid;
    key.slot = log2_slot(delta);
    map_add(&hist, &key, 1);
    return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(tp_btf_wakeup, struct task_struct___bk *p)
{
    return enqueue(p);
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(tp_btf_wakeup_new, struct task_struct___bk *p)
{
    return enqueue(p);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(tp_btf_switch, bool preempt, struct task_struct___bk *prev,
             struct task_struct___bk *next)
{
    return on_switch(prev, next);
}

SEC("raw_tp/sched_wakeup")
int BPF_PROG(raw_tp_wakeup, struct task_struct___bk *p)
{
    return enqueue(p);
}

SEC("raw_tp/sched_wakeup_new")
int BPF_PROG(raw_tp_wakeup_new, struct task_struct___bk *p)
{
    return enqueue(p);
}

SEC("raw_tp/sched_switch")
int BPF_PROG(raw_tp_switch, bool preempt, struct task_struct___bk *prev,
             struct task_struct___bk *next)
{
    return on_switch(prev, next);
}

char LICENSE[] SEC("license") = "GPL";
