// Subprograms: static __noinline functions, global (separately verified) functions,
// a function shared by two programs, bpf_loop and bpf_for_each_map_elem callbacks,
// recursion-free call chains three deep.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 128);
	__type(key, __u32);
	__type(value, __u64);
} vals SEC(".maps");

__u64 total;

static __noinline __u64 leaf(__u64 x)
{
	return x * 3 + 1;
}

static __noinline __u64 middle(__u64 x)
{
	return leaf(x) + leaf(x + 1);
}

__noinline int global_sum(__u32 n)
{
	__u64 s = 0;
	__u32 i;

	for (i = 0; i < n && i < 16; i++)
		s += i;
	return s;
}

static int loop_cb(__u32 index, void *ctx)
{
	__u64 *acc = ctx;

	*acc += index;
	return 0;
}

static long each_cb(void *map, __u32 *key, __u64 *val, void *ctx)
{
	__u64 *acc = ctx;

	*acc += *val;
	return 0;
}

SEC("tp/syscalls/sys_enter_getpid")
int subprogs_a(void *ctx)
{
	__u64 acc = 0;

	total += middle(bpf_get_prandom_u32() & 7);
	total += global_sum(8);
	bpf_loop(10, loop_cb, &acc, 0);
	bpf_for_each_map_elem(&vals, each_cb, &acc, 0);
	total += acc;
	return 0;
}

SEC("tp/syscalls/sys_enter_getppid")
int subprogs_b(void *ctx)
{
	total += leaf(2) + global_sum(3);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
