// bpftrace shape: `tracepoint:raw_syscalls:sys_enter { @[comm] = count(); }` -- a per-CPU
// hash keyed by the comm string, the value bumped in place or inserted.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, char[16]);
	__type(value, __u64);
} AT_ SEC(".maps");

SEC("tracepoint/raw_syscalls/sys_enter")
int tracepoint_raw_syscalls_sys_enter_1(void *ctx)
{
	char key[16] = {};
	__u64 *val, one = 1;

	bpf_get_current_comm(key, sizeof(key));
	val = bpf_map_lookup_elem(&AT_, key);
	if (val)
		*val += 1;
	else
		bpf_map_update_elem(&AT_, key, &one, BPF_ANY);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
