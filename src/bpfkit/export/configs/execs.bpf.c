// exec() counts by command name, user and cgroup.
#include "common.h"

struct exec_key {
    __u64 cgroup;
    __u32 uid;
    char comm[16];
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 8192);
    __type(key, struct exec_key);
    __type(value, __u64);
} exec_counts SEC(".maps");

SEC("tp/sched/sched_process_exec")
int count_exec(void *ctx)
{
    struct exec_key k = {};
    /* no target_tgid filter: an exec'd program is a new process of its own */
    k.cgroup = bpf_get_current_cgroup_id();
    k.uid = (__u32)bpf_get_current_uid_gid();
    bpf_get_current_comm(k.comm, sizeof(k.comm));
    add(&exec_counts, &k, 1);
    return 0;
}
