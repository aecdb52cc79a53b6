// BPF trampoline (fentry/fexit/fmod_ret) test programs on kernel functions.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 targ_tgid = 0;

__u64 fentry_hits;
__u64 fexit_hits;
__u64 fmod_ret_hits;
__s32 fmod_ret_value = 42;

static __always_inline int mine(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == targ_tgid;
}

SEC("fentry/vfs_mkdir")
int fentry_mkdir(void *ctx)
{
	if (mine())
		__sync_fetch_and_add(&fentry_hits, 1);
	return 0;
}

SEC("fexit/vfs_mkdir")
int fexit_mkdir(void *ctx)
{
	if (mine())
		__sync_fetch_and_add(&fexit_hits, 1);
	return 0;
}

/* bpf_modify_return_test() is called by BPF_PROG_TEST_RUN of this very program; a nonzero
 * return skips the function and becomes its return value. */
SEC("fmod_ret/bpf_modify_return_test")
int fmod_ret_test(void *ctx)
{
	__sync_fetch_and_add(&fmod_ret_hits, 1);
	return fmod_ret_value;
}
