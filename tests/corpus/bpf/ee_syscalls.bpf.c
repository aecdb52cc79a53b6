// ebpf_exporter raw-syscalls example shape: raw_tp/sys_enter counting by syscall number in
// an array (decoded by the exporter's syscall decoder).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define MAX_SYSCALL 1024

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_SYSCALL);
	__type(key, u32);
	__type(value, u64);
} syscalls_total SEC(".maps");

SEC("raw_tp/sys_enter")
int BPF_PROG(sys_enter, struct pt_regs *regs, long id)
{
	u32 key = id;
	u64 *count;

	if (key >= MAX_SYSCALL)
		return 0;
	count = bpf_map_lookup_elem(&syscalls_total, &key);
	if (count)
		__sync_fetch_and_add(count, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
