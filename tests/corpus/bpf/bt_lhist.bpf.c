// bpftrace shape: `tracepoint:syscalls:sys_exit_write /pid == $1/ { @ = lhist(args->ret,
// 0, 1000, 100); @total = sum(args->ret); @max = max(args->ret); }` -- linear buckets,
// sum and max aggregates in per-CPU arrays, a positional parameter in .rodata.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

const volatile __u32 param_1 = 0;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, __u64);
} AT_ SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __s64);
} AT_total SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __s64);
} AT_max SEC(".maps");

static __always_inline __u64 linear(__s64 value, __s64 min, __s64 max, __s64 step)
{
	if (value < min)
		return 0;
	if (value > max)
		return 1 + (__u64)(max - min) / (__u64)step + 1;
	return 1 + (__u64)(value - min) / (__u64)step;
}

SEC("tracepoint/syscalls/sys_exit_write")
int tracepoint_syscalls_sys_exit_write_1(void *ctx)
{
	__s64 ret = *(__s64 *)(ctx + 16);
	__u32 zero = 0;
	__u64 key, one = 1, *v;
	__s64 *s;

	if ((bpf_get_current_pid_tgid() >> 32) != param_1)
		return 0;
	key = linear(ret, 0, 1000, 100);
	v = bpf_map_lookup_elem(&AT_, &key);
	if (v)
		*v += 1;
	else
		bpf_map_update_elem(&AT_, &key, &one, BPF_ANY);
	s = bpf_map_lookup_elem(&AT_total, &zero);
	if (s)
		*s += ret;
	s = bpf_map_lookup_elem(&AT_max, &zero);
	if (s && ret > *s)
		*s = ret;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
