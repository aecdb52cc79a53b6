// softirqs: time spent in each soft interrupt vector (total, count, or -d a histogram).
// A softirq does not nest with another on one CPU, so the entry time lives in a per-CPU
// slot.  tp_btf on irq:softirq_entry/exit, else raw_tp, else the tracepoints.
#include "bk_events.h"

#define NR_SOFTIRQS 10

const volatile bool targ_dist = false;  /* -d: histograms */
const volatile bool targ_ns = false;    /* -N: nanoseconds */

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} start SEC(".maps");

/* per vector: total time and count (per-CPU: no atomics) */
struct totals {
    __u64 time;
    __u64 count;
};

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, NR_SOFTIRQS);
    __type(key, __u32);
    __type(value, struct totals);
} totals SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, struct hist_key);
    __type(value, __u64);
} hist SEC(".maps");

static __always_inline int on_entry(void)
{
    __u32 zero = 0;
    __u64 *ts = bpf_map_lookup_elem(&start, &zero);
    if (ts)
        *ts = bpf_ktime_get_ns();
    return 0;
}

static __always_inline int on_exit(__u32 vec)
{
    __u32 zero = 0;
    __u64 *ts = bpf_map_lookup_elem(&start, &zero), delta;
    struct totals *t;
    if (!ts || !*ts || vec >= NR_SOFTIRQS)
        return 0;
    delta = bpf_ktime_get_ns() - *ts;
    *ts = 0;
    if (!targ_ns)
        delta /= 1000;
    if (targ_dist) {
        struct hist_key key = {.id = vec, .slot = log2_slot(delta)};
        map_add(&hist, &key, 1);
        return 0;
    }
    t = bpf_map_lookup_elem(&totals, &vec);
    if (t) {
        t->time += delta;
        t->count += 1;
    }
    return 0;
}

SEC("tp_btf/softirq_entry")
int BPF_PROG(tp_btf_entry, unsigned int vec)
{
    return on_entry();
}

SEC("tp_btf/softirq_exit")
int BPF_PROG(tp_btf_exit, unsigned int vec)
{
    return on_exit(vec);
}

SEC("raw_tp/softirq_entry")
int BPF_PROG(raw_tp_entry, unsigned int vec)
{
    return on_entry();
}

SEC("raw_tp/softirq_exit")
int BPF_PROG(raw_tp_exit, unsigned int vec)
{
    return on_exit(vec);
}

struct tp_softirq {
    __u64 common;
    __u32 vec;
};

SEC("tracepoint/irq/softirq_entry")
int tp_entry(struct tp_softirq *ctx)
{
    return on_entry();
}

SEC("tracepoint/irq/softirq_exit")
int tp_exit(struct tp_softirq *ctx)
{
    return on_exit(ctx->vec);
}

char LICENSE[] SEC("license") = "GPL";
