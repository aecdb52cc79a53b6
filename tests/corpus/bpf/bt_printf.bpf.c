// bpftrace shape: `tracepoint:syscalls:sys_enter_openat { printf("%d %s %s\n", pid, comm,
// str(args->filename)); }` -- an async-action record (id + args) pushed through a perf
// event array sized by the loader, built in a per-CPU scratch map (too big for the stack).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct printf_t {
	__u64 action_id;
	__u64 pid;
	char comm[16];
	char filename[200];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, 4);
	__uint(value_size, 4);
} printf_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct printf_t);
} fmt_str_buf SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_openat")
int tracepoint_syscalls_sys_enter_openat_1(void *ctx)
{
	__u32 zero = 0;
	struct printf_t *p = bpf_map_lookup_elem(&fmt_str_buf, &zero);
	const char *fname;

	if (!p)
		return 0;
	p->action_id = 0;
	p->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(p->comm, sizeof(p->comm));
	fname = *(const char **)(ctx + 24);
	bpf_probe_read_user_str(p->filename, sizeof(p->filename), fname);
	bpf_perf_event_output(ctx, &printf_events, BPF_F_CURRENT_CPU, p, sizeof(*p));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
