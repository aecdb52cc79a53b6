// An unguarded CO-RE read of a field the kernel does not have: the loader poisons it.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

struct task_struct___bogus {
	int bpfkit_no_such_field;
} __attribute__((preserve_access_index));

SEC("raw_tp/sys_enter")
int core_fail(void *ctx)
{
	struct task_struct___bogus *t = (void *)bpf_get_current_task();

	return BPF_CORE_READ(t, bpfkit_no_such_field);
}
