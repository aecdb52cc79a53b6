// ebpf_exporter cgroup example shape: sched_switch counted per cgroup id in an LRU hash
// (decoded by the exporter's cgroup decoder), the cgroup id read with CO-RE.
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "ee_maps.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, u64);
	__type(value, u64);
} cgroup_sched_migrations_total SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, u64);
	__type(value, u64);
} cgroup_switches_total SEC(".maps");

SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	u64 cgroup_id = bpf_get_current_cgroup_id();

	increment_map(&cgroup_switches_total, &cgroup_id, 1);
	return 0;
}

SEC("tp_btf/sched_migrate_task")
int BPF_PROG(sched_migrate_task, struct task_struct *task, int dest_cpu)
{
	u64 cgroup_id = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);

	increment_map(&cgroup_sched_migrations_total, &cgroup_id, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
