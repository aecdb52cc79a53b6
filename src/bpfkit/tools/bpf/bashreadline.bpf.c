// bashreadline: every command line bash reads, from a uretprobe on readline() (its return
// value is the line the user typed).  /usr/bin/bash by default; user space can attach the
// same program to another binary or library (--binary).
#include "tracing_common.h"

/* records the ring buffer refused (full): user space reports them, never silent */
__u64 lost = 0;

#define LINE_LEN 256

struct event {
    __u64 ts_ns;
    __u32 pid;
    __u32 uid;
    char comm[TASK_COMM_LEN];
    char line[LINE_LEN];
};

const struct event *event_btf __attribute__((unused));

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 256 * 1024);
} events SEC(".maps");

SEC("uretprobe//usr/bin/bash:readline")
int BPF_KRETPROBE(uretprobe_readline, const char *ret)
{
    struct event *e;
    if (!ret || !task_allowed())
        return 0;
    e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) {
        __sync_fetch_and_add(&lost, 1);
        return 0;
    }
    e->ts_ns = bpf_ktime_get_ns();
    e->pid = bpf_get_current_pid_tgid() >> 32;
    e->uid = (__u32)bpf_get_current_uid_gid();
    bpf_get_current_comm(&e->comm, sizeof(e->comm));
    if (bpf_probe_read_user_str(&e->line, sizeof(e->line), ret) < 0)
        e->line[0] = 0;
    bpf_ringbuf_submit(e, 0);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
