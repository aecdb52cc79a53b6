// progtrace: how often and how long another BPF program runs.
// fentry/fexit programs attached to the target program itself (loaded with
// attach_prog_fd = the target and attach_btf_id = its main function in the target's BTF;
// one copy of this object per target).  Where the kernel refuses TRACING programs, the tool
// reads the kernel's own BPF stats instead (run_cnt / run_time_ns).
#include "tools.h"

struct stats {
    __u64 count;
    __u64 total_ns;
    __u64 max_ns;
};

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} start SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct stats);
} runs SEC(".maps");

SEC("fentry/bpf_prog")
int prog_entry(void *ctx)
{
    __u32 k = 0;
    __u64 *ts = bpf_map_lookup_elem(&start, &k);
    if (ts)
        *ts = bpf_ktime_get_ns();
    return 0;
}

SEC("fexit/bpf_prog")
int prog_exit(void *ctx)
{
    __u32 k = 0;
    __u64 *ts = bpf_map_lookup_elem(&start, &k);
    struct stats *s = bpf_map_lookup_elem(&runs, &k);
    if (!ts || !s || !*ts)
        return 0;
    __u64 d = bpf_ktime_get_ns() - *ts;
    *ts = 0;
    __sync_fetch_and_add(&s->count, 1);
    __sync_fetch_and_add(&s->total_ns, d);
    if (d > s->max_ns)
        s->max_ns = d;   // racy across CPUs; a maximum needs no precision
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
