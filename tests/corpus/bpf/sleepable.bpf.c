// Sleepable programs libbpf 1.1 knows: uprobe.s/uretprobe.s reading user memory with
// bpf_copy_from_user, an iter.s task iterator, and a BPF_PROG_TYPE_SYSCALL program.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char first[16];
int syscall_ret;

SEC("uprobe.s//usr/lib/x86_64-linux-gnu/libc.so.6:puts")
int BPF_KPROBE(puts_sleepable, const char *s)
{
	bpf_copy_from_user(first, sizeof(first), s);
	return 0;
}

SEC("uretprobe.s//usr/lib/x86_64-linux-gnu/libc.so.6:puts")
int BPF_KRETPROBE(puts_ret_sleepable, int ret)
{
	syscall_ret = ret;
	return 0;
}

SEC("iter.s/task")
int iter_task_sleepable(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;

	if (!task)
		return 0;
	BPF_SEQ_PRINTF(ctx->meta->seq, "%d\n", task->pid);
	return 0;
}

struct args {
	int x;
};

SEC("syscall")
int syscall_prog(struct args *ctx)
{
	syscall_ret = ctx->x + 1;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
