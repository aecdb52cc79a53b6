// libbpf-tools style: struct event exists only as a local (no dummy global), so clang
// leaves it out of .BTF; bpfkit finds it in DWARF (tests/test_dwarf.py, test_records.py).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define TASK_COMM_LEN 16

enum event_kind { EV_EXEC = 1, EV_EXIT = 2, EV_FAIL = -1 };

struct event {
	__u32 pid;
	enum event_kind kind;
	__u64 ts;
	char comm[TASK_COMM_LEN];
	unsigned int flags : 3, prio : 5;
	short grid[2][3];
	union {
		__u32 as_u32;
		__u8 bytes[4];
	} u;
	struct event *next;
	int (*cb)(int, ...);
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 18);
} rb_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} perf_events SEC(".maps");

/* a macro, not a function: a function taking struct event * would put the type in .BTF */
#define FILL(e, k)                                              \
	do {                                                    \
		(e)->pid = bpf_get_current_pid_tgid() >> 32;    \
		(e)->kind = (k);                                \
		(e)->ts = bpf_ktime_get_ns();                   \
		bpf_get_current_comm((e)->comm, sizeof((e)->comm)); \
		(e)->flags = 5;                                 \
		(e)->prio = 17;                                 \
		(e)->grid[1][2] = -7;                           \
		(e)->u.as_u32 = 0x01020304;                     \
		(e)->next = 0;                                  \
		(e)->cb = 0;                                    \
	} while (0)

SEC("tp/syscalls/sys_exit_execve")
int on_exec_rb(void *ctx)
{
	struct event *e = bpf_ringbuf_reserve(&rb_events, sizeof(*e), 0);
	if (!e)
		return 0;
	__builtin_memset(e, 0, sizeof(*e));
	FILL(e, EV_EXEC);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp/syscalls/sys_exit_execve")
int on_exec_perf(void *ctx)
{
	struct event e = {};
	FILL(&e, EV_EXIT);
	bpf_perf_event_output(ctx, &perf_events, BPF_F_CURRENT_CPU, &e, sizeof(e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
