// ebpf_exporter oom-kills shape: the oom:mark_victim tracepoint counted per victim pid's
// cgroup, through a classic tracepoint with a hand-declared context struct.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct mark_victim_args {
	__u64 pad;
	int pid;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u64);
} oom_kills_total SEC(".maps");

SEC("tracepoint/oom/mark_victim")
int mark_victim(struct mark_victim_args *args)
{
	__u64 cgroup_id = bpf_get_current_cgroup_id(), one = 1, *v;

	v = bpf_map_lookup_elem(&oom_kills_total, &cgroup_id);
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(&oom_kills_total, &cgroup_id, &one, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
