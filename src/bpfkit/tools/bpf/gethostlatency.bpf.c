// gethostlatency: how long name lookups take: uprobes on libc's getaddrinfo,
// gethostbyname and gethostbyname2 save the host name and the start time per thread, the
// uretprobes emit them with the latency.
#include "bk_events.h"

#define HOST_LEN 80

struct val_t {
    __u64 start_ns;
    char host[HOST_LEN];
};

struct event {
    __u64 ts_ns;
    __u64 delta_ns;
    __u32 pid;
    __u32 tid;
    __u32 uid;
    __s32 ret;
    char comm[TASK_COMM_LEN];
    char host[HOST_LEN];
};

const struct event *event_btf __attribute__((unused));

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 10240);
    __type(key, __u32);
    __type(value, struct val_t);
} start SEC(".maps");

SEC("uprobe")
int BPF_KPROBE(uprobe_lookup, const char *host)
{
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    struct val_t v = {};
    if (!task_allowed())
        return 0;
    v.start_ns = bpf_ktime_get_ns();
    bpf_probe_read_user_str(v.host, sizeof(v.host), host);
    bpf_map_update_elem(&start, &tid, &v, BPF_ANY);
    return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(uretprobe_lookup, long ret)
{
    __u64 id = bpf_get_current_pid_tgid();
    __u32 tid = (__u32)id;
    struct val_t *v = bpf_map_lookup_elem(&start, &tid);
    struct event *e;
    if (!v)
        return 0;
    e = reserve_event(sizeof(*e));
    if (!e)
        goto out;
    e->ts_ns = bpf_ktime_get_ns();
    e->delta_ns = e->ts_ns - v->start_ns;
    e->pid = id >> 32;
    e->tid = tid;
    e->uid = (__u32)bpf_get_current_uid_gid();
    e->ret = ret;
    bpf_get_current_comm(&e->comm, sizeof(e->comm));
    __builtin_memcpy(e->host, v->host, sizeof(e->host));
    bpf_ringbuf_submit(e, 0);
out:
    bpf_map_delete_elem(&start, &tid);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
