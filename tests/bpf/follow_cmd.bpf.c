// bpfkit run -- COMMAND: getppid() calls per process, only the target's (targ_pid)
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

const volatile __u32 targ_pid = 0;

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, __u32);
    __type(value, __u64);
} calls SEC(".maps");

SEC("tp/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
    __u32 pid = bpf_get_current_pid_tgid() >> 32;
    __u64 one = 1, *v;
    if (targ_pid && pid != targ_pid)
        return 0;
    v = bpf_map_lookup_elem(&calls, &pid);
    if (v)
        __sync_fetch_and_add(v, 1);
    else
        bpf_map_update_elem(&calls, &pid, &one, BPF_NOEXIST);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
