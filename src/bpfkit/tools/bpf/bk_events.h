/* Shared by the event and histogram tools added for BCC parity (exitsnoop, killsnoop,
 * runqlat, biolatency...): the event ring buffer with a count of the records it refused,
 * log2 slots, and map counters.  Kernel structs these tools read are declared in each
 * source with a "___bk" flavour (CO-RE ignores the suffix), so they never clash with the
 * declarations in tools.h. */
#ifndef BPFKIT_BK_EVENTS_H
#define BPFKIT_BK_EVENTS_H
#include "tracing_common.h"

/* records the ring buffer refused (full): user space reports them, never silent */
__u64 lost = 0;

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* a ring buffer record of `size` bytes, or NULL (and one more lost record) */
static __always_inline void *reserve_event(__u64 size)
{
    void *e = bpf_ringbuf_reserve(&events, size, 0);
    if (!e)
        __sync_fetch_and_add(&lost, 1);
    return e;
}

/* histogram slots: slot = floor(log2(v)), 0 and 1 share slot 0 (libbpf-tools' log2l) */
#define MAX_SLOTS 27

static __always_inline __u32 log2_slot(__u64 v)
{
    __u32 r = 0;
    #pragma unroll
    for (int s = 32; s > 0; s >>= 1) {
        if (v >> s) {
            v >>= s;
            r += s;
        }
    }
    return r < MAX_SLOTS ? r : MAX_SLOTS - 1;
}

/* *map[key] += by, creating the entry (another CPU may create it first) */
static __always_inline void map_add(void *map, const void *key, __u64 by)
{
    __u64 *v = bpf_map_lookup_elem(map, key);
    if (v) {
        __sync_fetch_and_add(v, by);
        return;
    }
    if (bpf_map_update_elem(map, key, &by, BPF_NOEXIST)) {
        v = bpf_map_lookup_elem(map, key);
        if (v)
            __sync_fetch_and_add(v, by);
    }
}

/* histogram key: a section (pid, tid, device, irq... or 0) and a slot */
struct hist_key {
    __u32 id;
    __u32 slot;
};

#endif
