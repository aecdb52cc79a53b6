// What `bpfkit run` prints by type alone (tests/test_records.py): a histogram per key
// (value struct hist { __u32 slots[N]; }), enum keys and values by name, a struct global.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MAX_SLOTS 20

enum op_kind { OP_SMALL = 1, OP_BIG = 2 };

struct hist {
	__u32 slots[MAX_SLOTS];
};

struct totals {
	__u64 writes;
	__u64 bytes;
	enum op_kind last;
};

struct totals totals = {};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, enum op_kind);
	__type(value, struct hist);
} write_sizes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, enum op_kind);
} last_op SEC(".maps");

struct write_args { __u64 common; __s32 nr; __u32 pad; __u64 fd; __u64 buf; __u64 count; };

static __always_inline __u32 log2l(__u64 v)
{
	__u32 r = 0;
	for (int i = 0; i < 32 && v > 1; i++) {
		v >>= 1;
		r++;
	}
	return r;
}

SEC("tp/syscalls/sys_enter_write")
int on_write(struct write_args *ctx)
{
	char comm[16];
	const char want[] = "bkrun_types";
	static const struct hist zero = {};

	bpf_get_current_comm(comm, sizeof(comm));
	for (int i = 0; i < sizeof(want); i++)
		if (comm[i] != want[i])
			return 0;
	__u64 n = ctx->count;
	enum op_kind k = n < 64 ? OP_SMALL : OP_BIG;
	__u32 slot = log2l(n);
	if (slot >= MAX_SLOTS)
		slot = MAX_SLOTS - 1;
	struct hist *h = bpf_map_lookup_elem(&write_sizes, &k);
	if (!h) {
		bpf_map_update_elem(&write_sizes, &k, &zero, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&write_sizes, &k);
		if (!h)
			return 0;
	}
	__sync_fetch_and_add(&h->slots[slot], 1);
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	bpf_map_update_elem(&last_op, &pid, &k, BPF_ANY);
	totals.writes++;
	totals.bytes += n;
	totals.last = k;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
