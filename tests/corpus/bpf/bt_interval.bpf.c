// bpftrace shape: `tracepoint:sched:sched_switch { @switches = count(); } interval:s:1 {
// print(@switches); clear(@switches); }` -- a counter per CPU and an interval program on
// a cpu-clock perf event that emits a print action through the perf buffer.
#include <linux/bpf.h>
#include <linux/bpf_perf_event.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} AT_switches SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, 4);
	__uint(value_size, 4);
} printf_events SEC(".maps");

SEC("tracepoint/sched/sched_switch")
int tracepoint_sched_sched_switch_1(void *ctx)
{
	__u32 zero = 0;
	__u64 *v = bpf_map_lookup_elem(&AT_switches, &zero);

	if (v)
		*v += 1;
	return 0;
}

SEC("perf_event")
int interval_s_1_2(struct bpf_perf_event_data *ctx)
{
	struct { __u64 action; __u64 map_id; } print_action = { 30002, 0 };

	bpf_perf_event_output(ctx, &printf_events, BPF_F_CURRENT_CPU, &print_action, sizeof(print_action));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
