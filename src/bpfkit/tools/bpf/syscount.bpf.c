// syscount: syscalls counted per syscall (default) or per process (-P), with their total
// latency (-L), only failed ones (-x) or one errno (-e), as BCC's syscount.
// Counting happens at sys_exit, where the return value is known; sys_enter is attached
// only for -L (the entry time per thread).  The mode and the command-name filter live in
// maps user space fills after load (they can change while the program runs, and a reader
// of pinned maps learns the mode from them), not in load-time constants.
// Hooks: raw_tp sys_enter/sys_exit (cheapest: no record is built), else the
// raw_syscalls:sys_enter/sys_exit tracepoints.
#include "tracing_common.h"

#define MAX_COMMS 64

struct data {
    __u64 count;
    __u64 total_ns;
    char comm[TASK_COMM_LEN];
};

struct filter_config {
    __u32 comm_filter;   /* nonzero: only commands present in comm_filter */
    __u32 by_process;    /* key: pid (-P) instead of the syscall number */
    __u32 latency;       /* -L: sys_enter stores the entry time */
    __u32 failed;        /* -x: only calls that returned an error */
    __s32 errno_only;    /* -e: only calls that returned -errno_only (0: any) */
    __u32 pad;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 10240);
    __type(key, __u32);
    __type(value, struct data);
} counts SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 10240);
    __type(key, __u32);
    __type(value, __u64);
} start SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, MAX_COMMS);
    __type(key, char[TASK_COMM_LEN]);
    __type(value, __u8);
} comm_filter SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct filter_config);
} filter_cfg SEC(".maps");

static __always_inline struct filter_config *allowed(void)
{
    char comm[TASK_COMM_LEN] = {};
    __u32 zero = 0;
    struct filter_config *cfg;

    if (!pid_allowed() || !tid_allowed() || !uid_allowed() || !cgroup_allowed())
        return 0;
    cfg = bpf_map_lookup_elem(&filter_cfg, &zero);
    if (!cfg)
        return 0;
    if (cfg->comm_filter) {
        bpf_get_current_comm(&comm, sizeof(comm));
        if (!bpf_map_lookup_elem(&comm_filter, &comm))
            return 0;
    }
    return cfg;
}

static __always_inline int on_enter(void)
{
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    __u64 ts;
    struct filter_config *cfg = allowed();
    if (!cfg || !cfg->latency)
        return 0;
    ts = bpf_ktime_get_ns();
    bpf_map_update_elem(&start, &tid, &ts, BPF_ANY);
    return 0;
}

static __always_inline int on_exit(long id, long ret)
{
    __u64 id_tgid = bpf_get_current_pid_tgid();
    __u32 tid = (__u32)id_tgid, key;
    __u64 lat = 0, *ts;
    struct data *d;
    struct filter_config *cfg = allowed();

    if (!cfg || id < 0)
        return 0;
    if (cfg->latency) {
        ts = bpf_map_lookup_elem(&start, &tid);
        if (!ts)
            return 0;        /* entered before we attached: no latency to report */
        lat = bpf_ktime_get_ns() - *ts;
        bpf_map_delete_elem(&start, &tid);
    }
    if (cfg->failed && ret >= 0)
        return 0;
    if (cfg->errno_only && ret != -(long)cfg->errno_only)
        return 0;
    key = cfg->by_process ? (__u32)(id_tgid >> 32) : (__u32)id;
    d = bpf_map_lookup_elem(&counts, &key);
    if (!d) {
        struct data init = {};
        bpf_get_current_comm(&init.comm, sizeof(init.comm));
        bpf_map_update_elem(&counts, &key, &init, BPF_NOEXIST);
        d = bpf_map_lookup_elem(&counts, &key);
        if (!d)
            return 0;
    }
    __sync_fetch_and_add(&d->count, 1);
    if (lat)
        __sync_fetch_and_add(&d->total_ns, lat);
    return 0;
}

/* raw_tp: args are (struct pt_regs *regs, long id) at entry, (regs, long ret) at exit;
 * the syscall number at exit is the saved orig_ax of the registers */
SEC("raw_tp/sys_enter")
int raw_tp_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
    return on_enter();
}

SEC("raw_tp/sys_exit")
int raw_tp_sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
    struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
    long id = -1;
#if defined(__TARGET_ARCH_x86)
    bpf_probe_read_kernel(&id, sizeof(id), &regs->orig_rax);
#else
#error "syscount: the syscall number at raw_tp sys_exit is only read on x86"
#endif
    return on_exit(id, (long)ctx->args[1]);
}

struct raw_syscalls_exit {
    __u64 common;
    long id;
    long ret;
};

SEC("tracepoint/raw_syscalls/sys_enter")
int tp_sys_enter(void *ctx)
{
    return on_enter();
}

SEC("tracepoint/raw_syscalls/sys_exit")
int tp_sys_exit(struct raw_syscalls_exit *ctx)
{
    return on_exit(ctx->id, ctx->ret);
}

char LICENSE[] SEC("license") = "GPL";
