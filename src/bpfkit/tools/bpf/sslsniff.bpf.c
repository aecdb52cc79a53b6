// sslsniff: the plaintext of TLS traffic, read from OpenSSL's SSL_write (the buffer at
// entry) and SSL_read (the buffer at return, when its length is known): uprobes on
// libssl, no key or CA needed.
#include "bk_events.h"

#define MAX_BUF 8192

struct event {
    __u64 ts_ns;
    __u32 pid;
    __u32 tid;
    __u32 uid;
    __s32 len;      /* bytes the call transferred (or its error) */
    __u32 buf_len;  /* bytes copied here (<= MAX_BUF) */
    __u32 rw;       /* 0 read, 1 write */
    char comm[TASK_COMM_LEN];
    __u8 buf[MAX_BUF];
};

const struct event *event_btf __attribute__((unused));

/* SSL_read/SSL_read_ex in flight per thread: the buffer, and SSL_read_ex's *readbytes */
struct read_args {
    __u64 buf;
    __u64 readbytes;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 10240);
    __type(key, __u32);
    __type(value, struct read_args);
} bufs SEC(".maps");

static __always_inline int emit(const void *buf, int len, __u32 rw)
{
    __u64 id = bpf_get_current_pid_tgid();
    __u32 n;
    struct event *e;
    if (len <= 0)
        return 0;
    e = reserve_event(sizeof(*e));
    if (!e)
        return 0;
    e->ts_ns = bpf_ktime_get_ns();
    e->pid = id >> 32;
    e->tid = (__u32)id;
    e->uid = (__u32)bpf_get_current_uid_gid();
    e->len = len;
    e->rw = rw;
    bpf_get_current_comm(&e->comm, sizeof(e->comm));
    n = len < MAX_BUF ? len : MAX_BUF;
    if (bpf_probe_read_user(e->buf, n & (MAX_BUF - 1) ? n & (MAX_BUF - 1) : MAX_BUF, buf))
        n = 0;
    e->buf_len = n;
    bpf_ringbuf_submit(e, 0);
    return 0;
}

SEC("uprobe")
int BPF_KPROBE(uprobe_write, void *ssl, const void *buf, int num)
{
    if (!task_allowed())
        return 0;
    return emit(buf, num, 1);
}

/* OpenSSL 1.1.1+: int SSL_write_ex(SSL *, const void *buf, size_t num, size_t *written) */
SEC("uprobe")
int BPF_KPROBE(uprobe_write_ex, void *ssl, const void *buf, __u64 num)
{
    if (!task_allowed())
        return 0;
    return emit(buf, num, 1);
}

static __always_inline int read_enter(void *buf, void *readbytes)
{
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    struct read_args a = {.buf = (__u64)buf, .readbytes = (__u64)readbytes};
    if (!task_allowed())
        return 0;
    bpf_map_update_elem(&bufs, &tid, &a, BPF_ANY);
    return 0;
}

SEC("uprobe")
int BPF_KPROBE(uprobe_read, void *ssl, void *buf, int num)
{
    return read_enter(buf, 0);
}

/* int SSL_read_ex(SSL *, void *buf, size_t num, size_t *readbytes): 1 on success */
SEC("uprobe")
int BPF_KPROBE(uprobe_read_ex, void *ssl, void *buf, __u64 num, __u64 *readbytes)
{
    return read_enter(buf, readbytes);
}

SEC("uretprobe")
int BPF_KRETPROBE(uretprobe_read, int ret)
{
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    struct read_args *a = bpf_map_lookup_elem(&bufs, &tid);
    __u64 n = 0;
    if (!a)
        return 0;
    if (!a->readbytes)
        n = ret > 0 ? ret : 0;
    else if (ret == 1)
        bpf_probe_read_user(&n, sizeof(n), (void *)a->readbytes);
    emit((const void *)a->buf, (int)n, 0);
    bpf_map_delete_elem(&bufs, &tid);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
