// Record types bpfkit cannot infer (tests/test_records.py): two locals of the same size
// sent through one ring buffer, and a size computed at run time.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct pair64 { __u64 x, y; };
struct quad32 { __u32 p, q, r, s; };

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} amb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} varsize SEC(".maps");

SEC("tp/syscalls/sys_enter_getppid")
int send_both(void *ctx)
{
	struct pair64 a = { 1, 2 };
	struct quad32 b = { 3, 4, 5, 6 };
	char buf[16] = {};
	__u32 n = bpf_get_prandom_u32() & 7;

	if (bpf_get_prandom_u32() & 1)
		bpf_ringbuf_output(&amb, &a, sizeof(a), 0);
	else
		bpf_ringbuf_output(&amb, &b, sizeof(b), 0);
	bpf_ringbuf_output(&varsize, buf, n + 1, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
