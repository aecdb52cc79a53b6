// Tail calls through a prog_array initialised statically with program names.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("raw_tp/sys_enter")
int tail_one(void *ctx)
{
	return 111;
}

SEC("raw_tp/sys_enter")
int tail_two(void *ctx)
{
	return 222;
}

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__uint(key_size, sizeof(__u32));
	__array(values, int(void *));
} jumps SEC(".maps") = {
	.values = {
		[1] = (void *)&tail_one,
		[3] = (void *)&tail_two,
	},
};

const volatile __u32 slot = 1;

SEC("raw_tp/sys_enter")
int entry(void *ctx)
{
	bpf_tail_call(ctx, &jumps, slot);
	return 7;
}
