// Global data of every section kind, a BTF hash map and a raw_tp counter.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 magic = 1;            /* .rodata, set before load */
const volatile __u32 target_pid = 0;       /* .rodata */
const volatile char greeting[8] = "hello"; /* .rodata */
__u64 data_counter = 5;                    /* .data */
__u64 bss_counter;                         /* .bss */
__u32 custom_data SEC(".data.custom") = 7;
const volatile __u32 custom_ro SEC(".rodata.custom") = 11;
__s32 getpid_calls;                        /* .bss, counted by the raw_tp program */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 16);
} counts SEC(".maps");

SEC("raw_tp/sys_enter")
int count_getpid(struct bpf_raw_tracepoint_args *ctx)
{
	if ((bpf_get_current_pid_tgid() >> 32) != target_pid)
		return 0;
	if (ctx->args[1] == 39 /* __NR_getpid */) {
		__u32 k = 39;
		__u64 one = 1, *v;
		__sync_fetch_and_add(&getpid_calls, 1);
		v = bpf_map_lookup_elem(&counts, &k);
		if (v)
			__sync_fetch_and_add(v, 1);
		else
			bpf_map_update_elem(&counts, &k, &one, BPF_ANY);
	}
	return 0;
}

SEC("syscall")
int bump(void *ctx)
{
	__u32 k = 1;
	__u64 val = magic;

	bss_counter += magic;
	data_counter++;
	custom_data += custom_ro;
	bpf_map_update_elem(&counts, &k, &val, BPF_ANY);
	return magic + greeting[0];
}
