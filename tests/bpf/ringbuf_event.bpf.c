// A ring buffer producer whose record type is known only through BTF (tests/test_readers.py).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct event {
	__u32 kind;
	__u64 seq;
	char tag[8];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

struct event event_type_anchor; // puts struct event into the object's BTF

__u64 counter;

SEC("xdp")
int emit(struct xdp_md *ctx)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return XDP_PASS;
	e->kind = 7;
	e->seq = __sync_fetch_and_add(&counter, 1);
	__builtin_memcpy(e->tag, "bpfkit!", 8);
	bpf_ringbuf_submit(e, 0);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
