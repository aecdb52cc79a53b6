// libbpf-tools filelife shape: kprobes with BPF_KPROBE/BPF_KRETPROBE, CO-RE on dentry,
// a perf buffer.  Kprobe programs load on this kernel (only attaching needs kprobes).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#define DNAME_INLINE_LEN 32
#define TASK_COMM_LEN 16

struct event {
	char file[DNAME_INLINE_LEN];
	char task[TASK_COMM_LEN];
	__u64 delta_ns;
	pid_t tgid;
};

const volatile pid_t targ_tgid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct dentry *);
	__type(value, u64);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(u32));
	__uint(value_size, sizeof(u32));
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, u32);
	__type(value, struct dentry *);
} currevent SEC(".maps");

static __always_inline int probe_create(struct dentry *dentry)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tgid = id >> 32;
	u64 ts;

	if (targ_tgid && targ_tgid != tgid)
		return 0;
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&start, &dentry, &ts, 0);
	return 0;
}

SEC("kprobe/vfs_create")
int BPF_KPROBE(vfs_create, void *arg0, void *arg1, void *arg2)
{
	return probe_create(arg2);
}

SEC("kprobe/security_inode_create")
int BPF_KPROBE(security_inode_create, struct inode *dir, struct dentry *dentry)
{
	return probe_create(dentry);
}

SEC("kprobe/vfs_unlink")
int BPF_KPROBE(vfs_unlink, void *arg0, void *arg1, void *arg2)
{
	u64 id = bpf_get_current_pid_tgid();
	struct dentry *dentry = arg2;
	u32 tid = (u32)id;
	u64 *tsp;

	tsp = bpf_map_lookup_elem(&start, &dentry);
	if (!tsp)
		return 0;
	bpf_map_update_elem(&currevent, &tid, &dentry, BPF_ANY);
	return 0;
}

SEC("kretprobe/vfs_unlink")
int BPF_KRETPROBE(vfs_unlink_ret)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	int ret = PT_REGS_RC(ctx);
	struct event event = {};
	struct qstr qs = {};
	struct dentry *dentry, **dpp;
	u64 *tsp;

	dpp = bpf_map_lookup_elem(&currevent, &tid);
	if (!dpp)
		return 0;
	if (ret)
		goto cleanup;
	dentry = *dpp;
	tsp = bpf_map_lookup_elem(&start, &dentry);
	if (!tsp)
		goto cleanup;
	event.delta_ns = bpf_ktime_get_ns() - *tsp;
	bpf_map_delete_elem(&start, &dentry);
	qs = BPF_CORE_READ(dentry, d_name);
	bpf_probe_read_kernel_str(&event.file, sizeof(event.file), qs.name);
	bpf_get_current_comm(&event.task, sizeof(event.task));
	event.tgid = id >> 32;
	bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &event, sizeof(event));
cleanup:
	bpf_map_delete_elem(&currevent, &tid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
