// A typed ksym: a per-CPU kernel variable resolved through kernel BTF.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

extern const int bpf_prog_active __ksym;

__u64 active_seen;

SEC("raw_tp/sys_enter")
int read_active(void *ctx)
{
	const int *active = bpf_this_cpu_ptr(&bpf_prog_active);

	active_seen = active ? 1 : 0;
	return 0;
}
