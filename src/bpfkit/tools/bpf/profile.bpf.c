// profile: on-CPU sampling.  A perf event (cpu-clock, or hardware cycles where the CPU
// exposes them) fires at a fixed frequency on every CPU; each sample counts the current
// (pid, comm, kernel stack, user stack) in a hash map, stacks kept in a STACK_TRACE map.
#include "tools.h"
#include <linux/bpf_perf_event.h>

#define MAX_DEPTH 127

struct key {
    __u32 pid;
    __u32 tid;
    __s32 kstack;
    __s32 ustack;
    char comm[TASK_COMM_LEN];
};

struct {
    __uint(type, BPF_MAP_TYPE_STACK_TRACE);
    __uint(max_entries, 16384);
    __uint(key_size, sizeof(__u32));
    __uint(value_size, MAX_DEPTH * sizeof(__u64));
} stacks SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 40960);
    __type(key, struct key);
    __type(value, __u64);
} counts SEC(".maps");

const volatile bool skip_idle = true;     // samples of the idle task (pid 0)
const volatile bool user_only = false;
const volatile bool kernel_only = false;

SEC("perf_event")
int do_sample(struct bpf_perf_event_data *ctx)
{
    __u64 id = bpf_get_current_pid_tgid();
    __u32 pid = id >> 32, tid = (__u32)id;
    if (skip_idle && tid == 0)
        return 0;
    if (!task_allowed())   // pid, tid, uid, cgroup, comm (the tools' common filters)
        return 0;
    struct key k = {};
    k.pid = pid;
    k.tid = tid;
    bpf_get_current_comm(&k.comm, sizeof(k.comm));
    k.kstack = user_only ? -1 : bpf_get_stackid(ctx, &stacks, 0);
    k.ustack = kernel_only ? -1 : bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
    __u64 one = 1;
    __u64 *c = bpf_map_lookup_elem(&counts, &k);
    if (c)
        __sync_fetch_and_add(c, 1);
    else
        bpf_map_update_elem(&counts, &k, &one, BPF_NOEXIST);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
