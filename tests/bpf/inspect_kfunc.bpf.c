// A tp_btf program calling kfuncs, for `bpfkit prog dump` (tests/test_inspect.py).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
extern struct task_struct *bpf_task_acquire(struct task_struct *p) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;
__u64 hits;
SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch_kfunc, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	struct task_struct *t = bpf_task_acquire(next);
	if (t) {
		hits++;
		bpf_task_release(t);
	}
	return 0;
}
char LICENSE[] SEC("license") = "GPL";
