// uprobe.multi / uretprobe.multi sections (libbpf 1.3+, Linux 6.6+ links), with glob
// targets and a sleepable variant reading user memory.
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

__u64 calls, returns, copied;

SEC("uprobe.multi//usr/lib/x86_64-linux-gnu/libc.so.6:getpid")
int BPF_KPROBE(multi_getpid)
{
	__sync_fetch_and_add(&calls, 1);
	return 0;
}

SEC("uretprobe.multi//usr/lib/x86_64-linux-gnu/libc.so.6:getp*")
int BPF_KRETPROBE(multi_getp_ret)
{
	__sync_fetch_and_add(&returns, 1);
	return 0;
}

SEC("uprobe.multi.s")
int BPF_KPROBE(multi_sleepable, const char *s)
{
	char buf[16];

	if (bpf_copy_from_user(buf, sizeof(buf), s) == 0)
		copied++;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
