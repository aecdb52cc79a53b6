// Written against a current libbpf (BPF_URETPROBE, BPF_KSYSCALL, bpf_for, bpf_repeat,
// bpf_core_cast, bpf_ksym_exists, __arg_ctx), as code copied from today's tool
// collections is; Debian 12's libbpf-dev 1.1 headers lack several of these names.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

const volatile int targ_tgid = 0;
__u64 loop_sum = 0;
__u64 repeats = 0;
__u64 uret_calls = 0;
__u64 last_ret = 0;
int cast_pid = 0;
int have_rdonly_cast = 0;

extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;

static __noinline int add_one(void *ctx __arg_ctx, int x)
{
	return x + 1;
}

SEC("raw_tp")
int loops(void *ctx)
{
	int i;

	bpf_for(i, 0, 10)
		loop_sum += i;
	bpf_repeat(5)
		repeats++;
	struct task_struct *t = bpf_core_cast((void *)bpf_get_current_task(), struct task_struct);
	cast_pid = t->tgid;
	have_rdonly_cast = bpf_ksym_exists(bpf_rdonly_cast);
	return add_one(ctx, 0);
}

SEC("uretprobe")
int BPF_URETPROBE(getpid_ret, int ret)
{
	if (targ_tgid && (bpf_get_current_pid_tgid() >> 32) != targ_tgid)
		return 0;
	__sync_fetch_and_add(&uret_calls, 1);
	last_ret = ret;
	return 0;
}

SEC("ksyscall/getppid")
int BPF_KSYSCALL(ksys_getppid)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
