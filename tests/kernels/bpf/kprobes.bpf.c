// kprobe family test programs: each counts the calls made by one process (targ_tgid),
// so other processes in the guest (or on the host) do not disturb the exact counts.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 targ_tgid = 0;

__u64 kprobe_hits;
__u64 kretprobe_hits;
__u64 ksyscall_hits;
__u64 cookie_hits;
__u64 last_cookie;
__u64 multi_hits;
__u64 multi_cookie_sum;

static __always_inline int mine(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == targ_tgid;
}

SEC("kprobe/vfs_mkdir")
int kprobe_mkdir(void *ctx)
{
	if (mine())
		__sync_fetch_and_add(&kprobe_hits, 1);
	return 0;
}

SEC("kretprobe/vfs_mkdir")
int kretprobe_mkdir(void *ctx)
{
	if (mine())
		__sync_fetch_and_add(&kretprobe_hits, 1);
	return 0;
}

SEC("ksyscall/getppid")
int ksyscall_getppid(void *ctx)
{
	if (mine())
		__sync_fetch_and_add(&ksyscall_hits, 1);
	return 0;
}

SEC("kprobe")
int kprobe_cookie(void *ctx)
{
	if (mine()) {
		__sync_fetch_and_add(&cookie_hits, 1);
		last_cookie = bpf_get_attach_cookie(ctx);
	}
	return 0;
}

SEC("kprobe.multi")
int kprobe_multi(void *ctx)
{
	if (mine()) {
		__sync_fetch_and_add(&multi_hits, 1);
		__sync_fetch_and_add(&multi_cookie_sum, bpf_get_attach_cookie(ctx));
	}
	return 0;
}
