// fentry/fexit on, and freplace of, bpfkit_target_fn() of target.bpf.c: the target
// program is given at load (bpfkit.load(..., attach_targets={...})).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

__u64 fentry_hits;
__u64 fexit_hits;
int last_arg;
int last_ret;

SEC("fentry/bpfkit_target_fn")
int BPF_PROG(on_entry, int x)
{
	__sync_fetch_and_add(&fentry_hits, 1);
	last_arg = x;
	return 0;
}

SEC("fexit/bpfkit_target_fn")
int BPF_PROG(on_exit, int x, int ret)
{
	__sync_fetch_and_add(&fexit_hits, 1);
	last_ret = ret;
	return 0;
}

/* Same prototype as the target: int (int). */
SEC("freplace/bpfkit_target_fn")
int bpfkit_replacement(int x)
{
	return x + 1000;
}
