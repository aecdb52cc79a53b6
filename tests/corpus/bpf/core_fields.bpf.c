// CO-RE field relocations: byte offsets through BPF_CORE_READ chains, field existence and
// size, bitfields (BPF_CORE_READ_BITFIELD_PROBED), ___flavor structs for renamed fields,
// arrays inside structs, and a field that does not exist guarded by bpf_core_field_exists.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

struct task_struct___old {
	long state;
} __attribute__((preserve_access_index));

struct task_struct___nope {
	int bpfkit_field_that_never_was;
} __attribute__((preserve_access_index));

struct out {
	long state;
	int nope;
	u32 sz_comm;
	u32 has_nope;
	u64 in_execve;
	u32 flags;
	int prio;
	char c2;
	u64 ino;
};

struct out result;

SEC("tp_btf/sched_switch")
int BPF_PROG(core_fields, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	struct task_struct *t = (void *)bpf_get_current_task();
	struct task_struct___old *old = (void *)t;
	struct task_struct___nope *nope = (void *)t;

	if (bpf_core_field_exists(t->__state))
		result.state = BPF_CORE_READ(t, __state);
	else
		result.state = BPF_CORE_READ(old, state);
	result.has_nope = bpf_core_field_exists(nope->bpfkit_field_that_never_was);
	if (result.has_nope)
		result.nope = BPF_CORE_READ(nope, bpfkit_field_that_never_was);
	result.sz_comm = bpf_core_field_size(t->comm);
	result.in_execve = BPF_CORE_READ_BITFIELD_PROBED(t, in_execve);
	result.flags = BPF_CORE_READ(t, flags);
	result.prio = BPF_CORE_READ(t, prio);
	result.c2 = BPF_CORE_READ(t, comm[2]);
	result.ino = BPF_CORE_READ(t, mm, exe_file, f_inode, i_ino);
	return 0;
}

SEC("raw_tp/sched_switch")
int BPF_PROG(core_fields_direct, bool preempt, struct task_struct *prev)
{
	struct task_struct *t = prev;

	result.flags = bpf_core_field_offset(t->flags) + bpf_core_field_offset(struct task_struct, pid);
	result.in_execve = BPF_CORE_READ_BITFIELD_PROBED(t, in_iowait);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
