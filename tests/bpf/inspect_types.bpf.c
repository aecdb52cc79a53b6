// Maps and a program for `bpfkit map dump/lookup/show` and `prog dump/list`, compared with
// bpftool (tests/test_inspect.py): a struct value with an enum and a char array, a per-CPU
// array, and a program name longer than the kernel's 15 characters.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

enum state { ST_IDLE = 0, ST_RUN = 1, ST_DONE = 2 };

struct val {
	__u32 pid;
	enum state st;
	char comm[16];
	__u64 count;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct val);
} inspect_vals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} inspect_pcpu SEC(".maps");

const volatile __u32 targ_pid = 0;

SEC("tp/syscalls/sys_enter_getppid")
int record_getppid_callers(void *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	__u32 zero = 0;
	__u64 *c;

	if (targ_pid && pid != targ_pid)
		return 0;
	struct val v = { .pid = pid, .st = ST_RUN, .count = 1 };
	bpf_get_current_comm(v.comm, sizeof(v.comm));
	bpf_map_update_elem(&inspect_vals, &pid, &v, BPF_ANY);
	c = bpf_map_lookup_elem(&inspect_pcpu, &zero);
	if (c)
		*c += 1;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
