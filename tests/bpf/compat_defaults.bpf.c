// Map and program declarations that rely on libbpf's load-time defaults.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* the usual way to declare a perf buffer: no max_entries (one slot per possible CPU) */
struct {
    __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
    __uint(key_size, sizeof(int));
    __uint(value_size, sizeof(int));
} events SEC(".maps");

/* not a power-of-two number of pages: rounded up to 8 KiB with 4 KiB pages */
struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 5000);
} rb SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_USER_RINGBUF);
    __uint(max_entries, 4096 * 3);
} urb SEC(".maps");

/* no program reads it, yet libbpf binds .rodata to every program */
const volatile int unused_const = 5;

/* an unknown virtual LINUX_* value is 0 when __weak */
extern int LINUX_BPFKIT_UNKNOWN __kconfig __weak;
int linux_unknown = 1;

/* a section with only static variables is not mmap-able (libbpf map_is_mmapable) */
static __u64 static_only SEC(".data.statics") = 7;

SEC("tp/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
    int v = 1;
    bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &v, sizeof(v));
    bpf_ringbuf_output(&rb, &v, sizeof(v), 0);
    linux_unknown = LINUX_BPFKIT_UNKNOWN;
    static_only++;
    return 0;
}

SEC("fentry/bpfkit_no_such_kernel_function")
int missing_target(void *ctx)
{
    return 0;
}

SEC("sockops")
int ops(struct bpf_sock_ops *skops)
{
    return 1;
}

char LICENSE[] SEC("license") = "GPL";
