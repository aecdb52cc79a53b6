// ebpf_exporter timers example shape: timer:timer_start counted by the callback function
// address (decoded to a kernel symbol by the exporter's ksym decoder).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "ee_maps.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u64);
	__type(value, u64);
} timer_starts_total SEC(".maps");

SEC("tp_btf/timer_start")
int BPF_PROG_timer_start(u64 *ctx)
{
	struct timer_list *timer = (struct timer_list *)ctx[0];
	u64 function = (u64)timer->function;

	increment_map(&timer_starts_total, &function, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
