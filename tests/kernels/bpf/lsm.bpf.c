// A BPF LSM program on inode_mkdir: counts one process's mkdirs and can deny them.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 targ_tgid = 0;

__u64 lsm_hits;
__u32 deny;

SEC("lsm/inode_mkdir")
int lsm_mkdir(void *ctx)
{
	if ((bpf_get_current_pid_tgid() >> 32) != targ_tgid)
		return 0;
	__sync_fetch_and_add(&lsm_hits, 1);
	return deny ? -1 /* -EPERM */ : 0;
}
