// syscount: syscalls per process.  The command-name filter is a map user space fills
// after load (and may change while the program runs, or from another process when the
// maps are pinned), not a load-time constant.
// Hooks: raw_tp sys_enter (cheapest: no record is built), else the
// raw_syscalls:sys_enter tracepoint.
#include "tracing_common.h"

#define MAX_COMMS 64

struct proc_count {
    __u64 count;
    char comm[TASK_COMM_LEN];
};

struct filter_config {
    __u32 comm_filter;   /* nonzero: only commands present in comm_filter */
    __u32 pad;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 10240);
    __type(key, __u32);
    __type(value, struct proc_count);
} counts SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, MAX_COMMS);
    __type(key, char[TASK_COMM_LEN]);
    __type(value, __u8);
} comm_filter SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct filter_config);
} filter_cfg SEC(".maps");

static __always_inline int on_syscall(void)
{
    char comm[TASK_COMM_LEN] = {};
    __u32 zero = 0, pid;
    struct proc_count *pc;
    struct filter_config *cfg;

    if (!pid_allowed() || !cgroup_allowed())
        return 0;
    bpf_get_current_comm(&comm, sizeof(comm));
    cfg = bpf_map_lookup_elem(&filter_cfg, &zero);
    if (cfg && cfg->comm_filter && !bpf_map_lookup_elem(&comm_filter, &comm))
        return 0;
    pid = bpf_get_current_pid_tgid() >> 32;
    pc = bpf_map_lookup_elem(&counts, &pid);
    if (!pc) {
        struct proc_count init = {};
        __builtin_memcpy(init.comm, comm, sizeof(comm));
        bpf_map_update_elem(&counts, &pid, &init, BPF_NOEXIST);
        pc = bpf_map_lookup_elem(&counts, &pid);
        if (!pc)
            return 0;
    }
    __sync_fetch_and_add(&pc->count, 1);
    return 0;
}

SEC("raw_tp/sys_enter")
int raw_tp_sys_enter(void *ctx)
{
    return on_syscall();
}

SEC("tracepoint/raw_syscalls/sys_enter")
int tp_sys_enter(void *ctx)
{
    return on_syscall();
}

char LICENSE[] SEC("license") = "GPL";
