// cpudist: how long tasks run on a CPU before being switched out (or, -O, how long they
// stay off-CPU), as a histogram.  tp_btf on sched_switch, else raw_tp.
#include "bk_sched.h"

const volatile bool targ_offcpu = false;       /* -O: off-CPU time instead */
const volatile bool targ_per_process = false;  /* -P */
const volatile bool targ_per_thread = false;   /* -L */
const volatile bool targ_ms = false;           /* -m */

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

static __always_inline void store(struct task_struct___bk *t, __u64 now)
{
    __u32 pid = BPF_CORE_READ(t, pid);
    if (task_ids_allowed(BPF_CORE_READ(t, tgid), pid))
        bpf_map_update_elem(&start, &pid, &now, BPF_ANY);
}

static __always_inline void update(struct task_struct___bk *t, __u64 now)
{
    struct hist_key key = {};
    __u32 pid = BPF_CORE_READ(t, pid);
    __u64 *tsp = bpf_map_lookup_elem(&start, &pid), delta;
    if (!tsp)
        return;
    delta = now - *tsp;
    bpf_map_delete_elem(&start, &pid);
    if ((__s64)delta < 0)
        return;
    delta /= targ_ms ? 1000000 : 1000;
    if (targ_per_process)
        key.id = BPF_CORE_READ(t, tgid);
    else if (targ_per_thread)
        key.id = pid;
    key.slot = log2_slot(delta);
    map_add(&hist, &key, 1);
}

static __always_inline int on_switch(struct task_struct___bk *prev,
                                     struct task_struct___bk *next)
{
    __u64 now = bpf_ktime_get_ns();
    if (targ_offcpu) {
        store(prev, now);
        update(next, now);
    } else {
        update(prev, now);
        store(next, now);
    }
    return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(tp_btf_switch, bool preempt, struct task_struct___bk *prev,
             struct task_struct___bk *next)
{
    return on_switch(prev, next);
}

SEC("raw_tp/sched_switch")
int BPF_PROG(raw_tp_switch, bool preempt, struct task_struct___bk *prev,
             struct task_struct___bk *next)
{
    return on_switch(prev, next);
}

char LICENSE[] SEC("license") = "GPL";
