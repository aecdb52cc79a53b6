// libbpf-tools funclatency/fsslower shape: fentry/fexit programs with kprobe twins; the
// tool probes fentry and turns one family's autoload off.  Targets set at open time
// (generic section names), a global histogram array in .bss.
// corpus: autoload-off dummy_fentry dummy_fexit
// corpus: autoload-off dummy_kprobe dummy_kretprobe
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#define MAX_SLOTS 25

const volatile pid_t targ_tgid = 0;
const volatile int units = 0;
const volatile bool filter_cg = false;

__u32 hist[MAX_SLOTS] = {};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, u64);
} starts SEC(".maps");

static __always_inline u64 log2(u32 v)
{
	u32 shift, r;

	r = (v > 0xFFFF) << 4; v >>= r;
	shift = (v > 0xFF) << 3; v >>= shift; r |= shift;
	shift = (v > 0xF) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (v >> 1);
	return r;
}

static __always_inline u64 log2l(u64 v)
{
	u32 hi = v >> 32;
	return hi ? log2(hi) + 32 : log2(v);
}

static void entry(void)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tgid = id >> 32;
	u32 pid = id;
	u64 nsec;

	if (targ_tgid && targ_tgid != tgid)
		return;
	nsec = bpf_ktime_get_ns();
	bpf_map_update_elem(&starts, &pid, &nsec, BPF_ANY);
}

static void exit(void)
{
	u64 *start;
	u64 nsec = bpf_ktime_get_ns();
	u64 id = bpf_get_current_pid_tgid();
	u32 pid = id;
	u64 slot, delta;

	start = bpf_map_lookup_elem(&starts, &pid);
	if (!start)
		return;
	delta = nsec - *start;
	switch (units) {
	case 0: break;
	case 1: delta /= 1000; break;
	case 2: delta /= 1000000; break;
	}
	slot = log2l(delta);
	if (slot >= MAX_SLOTS)
		slot = MAX_SLOTS - 1;
	__sync_fetch_and_add(&hist[slot], 1);
}

SEC("fentry/vfs_read")
int BPF_PROG(dummy_fentry)
{
	entry();
	return 0;
}

SEC("fexit/vfs_read")
int BPF_PROG(dummy_fexit)
{
	exit();
	return 0;
}

SEC("kprobe/vfs_read")
int BPF_KPROBE(dummy_kprobe)
{
	entry();
	return 0;
}

SEC("kretprobe/vfs_read")
int BPF_KRETPROBE(dummy_kretprobe)
{
	exit();
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
