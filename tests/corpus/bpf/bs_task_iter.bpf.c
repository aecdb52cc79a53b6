// libbpf-bootstrap task_iter: an iter/task program writing records with bpf_seq_write,
// CO-RE reads and a bpf_get_task_stack call.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define TASK_COMM_LEN 16
#define MAX_STACK_LEN 127

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct task_info {
	pid_t pid;
	pid_t tid;
	__u32 state;
	char comm[TASK_COMM_LEN];
	int kstack_len;
	__u64 kstack[MAX_STACK_LEN];
};

static struct task_info t;

SEC("iter/task")
int get_tasks(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	long state;

	if (task == (void *)0)
		return 0;
	t.pid = task->tgid;
	t.tid = task->pid;
	state = BPF_CORE_READ(task, __state);
	t.state = state;
	bpf_probe_read_kernel_str(t.comm, TASK_COMM_LEN, task->comm);
	t.kstack_len = bpf_get_task_stack(task, t.kstack, sizeof(t.kstack), 0);
	bpf_seq_write(seq, &t, sizeof(t));
	return 0;
}
