// bpftrace shape: `tracepoint:syscalls:sys_exit_read { @bytes = hist(args->ret); }` --
// the log2 bucket computed with an unrolled compare ladder, a per-CPU hash keyed by the
// bucket index, args read through the tracepoint's raw offsets.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u64);
} AT_bytes SEC(".maps");

static __always_inline __u64 bt_log2(__s64 n)
{
	__u64 res = 1;

	if (n < 0)
		return 0;
	if (n == 0)
		return 1;
	if (n >= (1LL << 32)) { n >>= 32; res += 32; }
	if (n >= (1LL << 16)) { n >>= 16; res += 16; }
	if (n >= (1LL << 8)) { n >>= 8; res += 8; }
	if (n >= (1LL << 4)) { n >>= 4; res += 4; }
	if (n >= (1LL << 2)) { n >>= 2; res += 2; }
	if (n >= (1LL << 1)) { res += 1; }
	return res + 1;
}

SEC("tracepoint/syscalls/sys_exit_read")
int tracepoint_syscalls_sys_exit_read_1(void *ctx)
{
	__s64 ret = *(__s64 *)(ctx + 16);
	__u64 key = bt_log2(ret), *val, one = 1;

	val = bpf_map_lookup_elem(&AT_bytes, &key);
	if (val)
		*val += 1;
	else
		bpf_map_update_elem(&AT_bytes, &key, &one, BPF_ANY);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
