// A libbpf-style CO-RE program built against a generated vmlinux.h (tests/test_btf_cdump.py
// compiles it against bpfkit's header and against bpftool's and compares the objects).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

struct event {
	u32 pid;
	u32 ppid;
	char comm[16];
	u64 ts;
	u32 len;
	u16 protocol;
	u8 pkt_type;
	u8 state;
	s64 drop_reason;
	u64 task_size;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, u32);
	__type(value, struct event);
} last SEC(".maps");

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct task_struct *t = (void *)bpf_get_current_task();
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e)
		return 0;
	e->pid = BPF_CORE_READ(t, tgid);
	e->ppid = BPF_CORE_READ(t, real_parent, tgid);
	bpf_core_read_str(e->comm, sizeof(e->comm), &t->comm);
	e->ts = bpf_ktime_get_ns();
	e->task_size = bpf_core_type_size(struct task_struct);
	if (bpf_core_field_exists(t->__state))
		e->state = BPF_CORE_READ(t, __state) & 0xff;
	if (bpf_core_enum_value_exists(enum bpf_map_type, BPF_MAP_TYPE_RINGBUF))
		e->drop_reason = bpf_core_enum_value(enum bpf_map_type, BPF_MAP_TYPE_RINGBUF);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp_btf/net_dev_queue")
int BPF_PROG(on_queue, struct sk_buff *skb)
{
	struct event e = {};
	u32 key = 0;
	enum skb_drop_reason r = SKB_DROP_REASON_NOT_SPECIFIED;

	e.len = BPF_CORE_READ(skb, len);
	e.protocol = BPF_CORE_READ(skb, protocol);
	e.pkt_type = BPF_CORE_READ_BITFIELD_PROBED(skb, pkt_type);
	e.pid = BPF_CORE_READ(skb, dev, ifindex);
	e.drop_reason = r + bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_NO_SOCKET);
	if (bpf_core_type_exists(struct sk_buff))
		e.task_size = bpf_core_type_size(struct sk_buff);
	bpf_map_update_elem(&last, &key, &e, BPF_ANY);
	return 0;
}
