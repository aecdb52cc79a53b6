// bpftrace shape: `profile:hz:99 { @[kstack, ustack, comm] = count(); }` -- a perf_event
// program, two stack maps, a struct key with stack ids and the comm.
#include <linux/bpf.h>
#include <linux/bpf_perf_event.h>
#include <bpf/bpf_helpers.h>

struct key {
	__s64 kstack;
	__s64 ustack;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(key_size, 4);
	__uint(value_size, 127 * 8);
	__uint(max_entries, 4096);
} stack_bpftrace_127 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct key);
	__type(value, __u64);
} AT_ SEC(".maps");

SEC("perf_event")
int profile_hz_99_1(struct bpf_perf_event_data *ctx)
{
	struct key k = {};
	__u64 *v, one = 1;

	k.kstack = bpf_get_stackid(ctx, &stack_bpftrace_127, 0);
	k.ustack = bpf_get_stackid(ctx, &stack_bpftrace_127, BPF_F_USER_STACK);
	bpf_get_current_comm(k.comm, sizeof(k.comm));
	v = bpf_map_lookup_elem(&AT_, &k);
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(&AT_, &k, &one, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
