// An ebpf_exporter-style object (its conventions: map name = metric name, u64 values,
// labels cut from the key by size/padding, exp2 histogram with the sum in slot max+1).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MAX_SLOT 10

const volatile __u32 targ_tgid = 0;

struct write_key {
	__u8 kind;      /* 1: small write, 2: big write */
	__u8 pad[3];
	__u32 fd;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u64);
} ee_syscalls_total SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct write_key);
	__type(value, __u64);
} ee_writes_total SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, __u64);
} ee_write_bytes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} ee_getppid_per_cpu SEC(".maps");

struct sys_enter_args {
	__u64 common;
	long id;
	unsigned long args[6];
};

static __always_inline int mine(void)
{
	return !targ_tgid || (bpf_get_current_pid_tgid() >> 32) == targ_tgid;
}

static __always_inline void add(void *map, void *key, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(map, key);
	if (v)
		__sync_fetch_and_add(v, n);
	else
		bpf_map_update_elem(map, key, &n, BPF_NOEXIST);
}

SEC("tp/raw_syscalls/sys_enter")
int count_syscalls(struct sys_enter_args *ctx)
{
	__u64 id = ctx->id;
	__u32 zero = 0;
	__u64 *c;

	if (!mine())
		return 0;
	add(&ee_syscalls_total, &id, 1);
	if (id == 110 /* getppid on x86_64 */) {
		c = bpf_map_lookup_elem(&ee_getppid_per_cpu, &zero);
		if (c)
			*c += 1;
	}
	if (id == 1 /* write */) {
		struct write_key k = {};
		__u64 size = ctx->args[2], slot = 0, v = 1;

		k.kind = size > 512 ? 2 : 1;
		k.fd = (__u32)ctx->args[0];
		add(&ee_writes_total, &k, 1);
		while (v < size && slot < MAX_SLOT) {  /* ceil(log2(size)), clamped */
			v <<= 1;
			slot++;
		}
		add(&ee_write_bytes, &slot, 1);
		slot = MAX_SLOT + 1;
		add(&ee_write_bytes, &slot, size);
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
