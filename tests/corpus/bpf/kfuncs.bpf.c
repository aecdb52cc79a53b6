// kfunc calls from a tp_btf program: bpf_task_acquire/bpf_task_release and
// bpf_task_from_pid (kernel BTF ids), plus a __weak kfunc this kernel lacks guarded by
// bpf_ksym_exists().
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

extern struct task_struct *bpf_task_acquire(struct task_struct *p) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;
extern struct task_struct *bpf_task_from_pid(s32 pid) __ksym;
extern void bpfkit_no_such_kfunc(void) __ksym __weak;

int seen_pid;

SEC("tp_btf/task_newtask")
int BPF_PROG(kfunc_task, struct task_struct *task, u64 clone_flags)
{
	struct task_struct *acquired, *found;

	acquired = bpf_task_acquire(task);
	if (!acquired)
		return 0;
	seen_pid = acquired->pid;
	bpf_task_release(acquired);
	found = bpf_task_from_pid(1);
	if (found)
		bpf_task_release(found);
	if (bpf_ksym_exists(bpfkit_no_such_kfunc))
		bpfkit_no_such_kfunc();
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
