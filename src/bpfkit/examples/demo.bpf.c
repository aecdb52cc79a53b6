// The built-in example `make demo` runs with `bpfkit run`: three kinds of output from
// three tracepoints -- a ring buffer of exec events, a hash of counters and a log2
// histogram -- all decoded through the object's types, no Python struct definitions.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct event {
    __u32 pid;
    char comm[16];
    char filename[64];
};

/* Ring buffer records have no type in the map definition: bpfkit finds it from the
 * size the program reserves (sizeof(*e)) and the type of the pointer it writes through. */

/* A histogram is known by its type: an array of u64/u32 slots (here the value of a
 * one-entry array; a hash with such values gives one histogram per key). */
struct hist {
    __u64 slots[32];
};

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 64 * 1024);
} events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, char[16]);
    __type(value, __u64);
} opens_by_comm SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct hist);
} read_size_hist SEC(".maps");

__u64 execs = 0;

struct exec_args { __u64 common; __s32 nr; __u32 pad; const char *filename; };
struct exit_args { __u64 common; __s32 nr; __u32 pad; __s64 ret; };

SEC("tp/syscalls/sys_enter_execve")
int on_exec(struct exec_args *ctx)
{
    struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e)
        return 0;
    e->pid = bpf_get_current_pid_tgid() >> 32;
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    bpf_probe_read_user_str(e->filename, sizeof(e->filename), ctx->filename);
    bpf_ringbuf_submit(e, 0);
    __sync_fetch_and_add(&execs, 1);
    return 0;
}

SEC("tp/syscalls/sys_enter_openat")
int on_open(void *ctx)
{
    char comm[16] = {};
    __u64 one = 1, *v;
    bpf_get_current_comm(comm, sizeof(comm));
    v = bpf_map_lookup_elem(&opens_by_comm, comm);
    if (v)
        __sync_fetch_and_add(v, 1);
    else
        bpf_map_update_elem(&opens_by_comm, comm, &one, BPF_NOEXIST);
    return 0;
}

static __always_inline __u32 log2l(__u64 v)
{
    __u32 r = 0;
    for (int i = 0; i < 32 && v > 1; i++) {
        v >>= 1;
        r++;
    }
    return r;
}

SEC("tp/syscalls/sys_exit_read")
int on_read(struct exit_args *ctx)
{
    if (ctx->ret <= 0)
        return 0;
    __u32 slot = log2l(ctx->ret);
    if (slot >= 32)
        slot = 31;
    __u32 zero = 0;
    struct hist *h = bpf_map_lookup_elem(&read_size_hist, &zero);
    if (h)
        __sync_fetch_and_add(&h->slots[slot], 1);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
