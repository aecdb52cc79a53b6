// bpf-to-bpf calls: static and global functions, and a bpf_loop callback.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

__u64 loop_sum;

static __noinline int twice(int x)
{
	return x * 2;
}

__noinline int add_global(int a)
{
	return a + 100;
}

static int loop_cb(__u32 index, void *data)
{
	__u64 *sum = data;
	*sum += index;
	return 0;
}

SEC("syscall")
int use_static(void *ctx)
{
	return twice(21);
}

SEC("syscall")
int use_global(void *ctx)
{
	return add_global(twice(1));
}

SEC("syscall")
int use_loop(void *ctx)
{
	__u64 sum = 0;
	bpf_loop(10, loop_cb, &sum, 0);
	loop_sum = sum;
	return (int)sum;
}
