// hardirqs: time spent in each hard interrupt handler, by handler name (total, count, or
// -d a histogram).  tp_btf on irq:irq_handler_entry/exit (name from the irqaction), else
// the tracepoints (name from the record).
#include "bk_events.h"

#define IRQ_NAME_LEN 32

struct irqaction___bk {
    const char *name;
} __attribute__((preserve_access_index));

const volatile bool targ_dist = false;  /* -d */
const volatile bool targ_ns = false;    /* -N */

struct irq_key {
    char name[IRQ_NAME_LEN];
    __u32 slot;  /* histogram slot with -d, else 0 */
};

struct totals {
    __u64 time;
    __u64 count;
};

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} start SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct irq_key);
} scratch SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
    __uint(max_entries, 1024);
    __type(key, struct irq_key);
    __type(value, struct totals);
} totals SEC(".maps");

static __always_inline int on_entry(void)
{
    __u32 zero = 0;
    __u64 *ts = bpf_map_lookup_elem(&start, &zero);
    if (ts)
        *ts = bpf_ktime_get_ns();
    return 0;
}

/* key->name is filled by the caller */
static __always_inline int on_exit(struct irq_key *key)
{
    __u32 zero = 0;
    __u64 *ts = bpf_map_lookup_elem(&start, &zero), delta;
    struct totals *t, init = {};
    if (!ts || !*ts)
        return 0;
    delta = bpf_ktime_get_ns() - *ts;
    *ts = 0;
    if (!targ_ns)
        delta /= 1000;
    key->slot = targ_dist ? log2_slot(delta) : 0;
    t = bpf_map_lookup_elem(&totals, key);
    if (!t) {
        bpf_map_update_elem(&totals, key, &init, BPF_NOEXIST);
        t = bpf_map_lookup_elem(&totals, key);
        if (!t)
            return 0;
    }
    t->time += delta;
    t->count += 1;
    return 0;
}

SEC("tp_btf/irq_handler_entry")
int BPF_PROG(tp_btf_entry, int irq, struct irqaction___bk *action)
{
    return on_entry();
}

SEC("tp_btf/irq_handler_exit")
int BPF_PROG(tp_btf_exit, int irq, struct irqaction___bk *action, int ret)
{
    __u32 zero = 0;
    struct irq_key *key = bpf_map_lookup_elem(&scratch, &zero);
    if (!key)
        return 0;
    __builtin_memset(key, 0, sizeof(*key));
    bpf_probe_read_kernel_str(key->name, sizeof(key->name), BPF_CORE_READ(action, name));
    return on_exit(key);
}

struct tp_irq_entry {
    __u64 common;
    __s32 irq;
    __u32 name_loc;  /* __data_loc: offset in the low 16 bits */
};

SEC("tracepoint/irq/irq_handler_entry")
int tp_entry(struct tp_irq_entry *ctx)
{
    __u32 zero = 0;
    struct irq_key *key = bpf_map_lookup_elem(&scratch, &zero);
    if (!key)
        return 0;
    /* the exit record has no name: keep the entry's for this CPU */
    __builtin_memset(key, 0, sizeof(*key));
    bpf_probe_read_kernel_str(key->name, sizeof(key->name),
                              (void *)ctx + (ctx->name_loc & 0xFFFF));
    return on_entry();
}

SEC("tracepoint/irq/irq_handler_exit")
int tp_exit(void *ctx)
{
    __u32 zero = 0;
    struct irq_key *key = bpf_map_lookup_elem(&scratch, &zero);
    if (!key)
        return 0;
    return on_exit(key);
}

char LICENSE[] SEC("license") = "GPL";
