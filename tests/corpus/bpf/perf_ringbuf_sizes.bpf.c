// Buffer declarations as projects write them: a perf event array with no max_entries
// and only __type(key/value) (not key_size/value_size), one with an explicit size, a ring
// buffer that is not a power-of-two number of pages, a user ring buffer, and an
// explicitly sized BPF_F_MMAPABLE array.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__type(key, int);
	__type(value, __u32);
} perf_typed SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(int));
	__uint(value_size, sizeof(int));
	__uint(max_entries, 64);
} perf_sized SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 3 * 4096 + 100);
} rb_odd SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_USER_RINGBUF);
	__uint(max_entries, 12 * 4096);
} urb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 100);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
} mm_array SEC(".maps");

static long drain(struct bpf_dynptr *dynptr, void *ctx)
{
	__u64 *sum = ctx, v;

	if (bpf_dynptr_read(&v, sizeof(v), dynptr, 0, 0) == 0)
		*sum += v;
	return 0;
}

SEC("tp/syscalls/sys_enter_getpid")
int buffers(void *ctx)
{
	__u64 v = bpf_get_current_pid_tgid(), sum = 0;
	__u32 k = 0;
	__u64 *slot;

	bpf_perf_event_output(ctx, &perf_typed, BPF_F_CURRENT_CPU, &v, sizeof(v));
	bpf_perf_event_output(ctx, &perf_sized, BPF_F_CURRENT_CPU, &v, sizeof(v));
	bpf_ringbuf_output(&rb_odd, &v, sizeof(v), 0);
	bpf_user_ringbuf_drain(&urb, drain, &sum, 0);
	slot = bpf_map_lookup_elem(&mm_array, &k);
	if (slot)
		*slot += sum;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
