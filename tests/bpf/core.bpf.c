// CO-RE reads of task_struct fields, with our own minimal struct declarations.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

struct task_struct {
	int pid;
	int tgid;
	struct task_struct *real_parent;
} __attribute__((preserve_access_index));

struct task_struct___missing {
	int no_such_field_in_kernel;
} __attribute__((preserve_access_index));

const volatile __u32 target_pid = 0;
__s32 seen_pid, seen_tgid, seen_ppid;
__u32 has_missing;

SEC("raw_tp/sys_enter")
int core_read(void *ctx)
{
	struct task_struct *t = (void *)bpf_get_current_task();

	if ((bpf_get_current_pid_tgid() >> 32) != target_pid)
		return 0;
	seen_pid = BPF_CORE_READ(t, pid);
	seen_tgid = BPF_CORE_READ(t, tgid);
	seen_ppid = BPF_CORE_READ(t, real_parent, tgid);
	has_missing = bpf_core_field_exists(((struct task_struct___missing *)t)->no_such_field_in_kernel);
	return 0;
}
