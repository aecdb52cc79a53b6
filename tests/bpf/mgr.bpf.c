// Manager test object: one hook in three variants (fentry, kprobe, tracepoint),
// a constant to filter by pid, a counter map and a ring buffer.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

const volatile __u32 targ_pid = 0;
__u64 hits = 0;

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16);
    __type(key, __u32);
    __type(value, __u64);
} counts SEC(".maps");

struct event {
    __u32 pid;
    __u32 variant;
};

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096 * 4);
} events SEC(".maps");

static __always_inline int record(__u32 variant)
{
    __u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (targ_pid && pid != targ_pid)
        return 0;
    __sync_fetch_and_add(&hits, 1);
    __u64 one = 1, *v = bpf_map_lookup_elem(&counts, &variant);
    if (v)
        __sync_fetch_and_add(v, 1);
    else
        bpf_map_update_elem(&counts, &variant, &one, BPF_NOEXIST);
    struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (e) {
        e->pid = pid;
        e->variant = variant;
        bpf_ringbuf_submit(e, 0);
    }
    return 0;
}

SEC("fentry/do_sys_openat2")
int fentry_open(void *ctx) { return record(1); }

SEC("kprobe/do_sys_openat2")
int kprobe_open(void *ctx) { return record(2); }

SEC("tp/syscalls/sys_enter_openat")
int tp_open(void *ctx) { return record(3); }

SEC("tp/syscalls/sys_enter_getppid")
int tp_getppid(void *ctx) { return record(4); }

char LICENSE[] SEC("license") = "GPL";
