// bpftrace shape: `uretprobe:/bin/bash:readline { @lines[str(retval)] = count(); }` --
// a string key built in per-CPU scratch, the return value register read from pt_regs.
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, char[64]);
} str_buf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, char[64]);
	__type(value, __u64);
} AT_lines SEC(".maps");

SEC("uretprobe//bin/bash:readline")
int uretprobe_bin_bash_readline_1(struct pt_regs *ctx)
{
	__u32 zero = 0;
	__u64 one = 1, *v;
	char *buf = bpf_map_lookup_elem(&str_buf, &zero);

	if (!buf)
		return 0;
	__builtin_memset(buf, 0, 64);
	bpf_probe_read_user_str(buf, 64, (void *)ctx->rax);
	v = bpf_map_lookup_elem(&AT_lines, buf);
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(&AT_lines, buf, &one, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
