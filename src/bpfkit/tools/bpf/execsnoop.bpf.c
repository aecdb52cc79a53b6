// execsnoop: every exec with pid, ppid, uid, return code and argv.
// sys_enter_execve captures argv into a per-thread entry; sys_exit_execve emits it
// with the return value (tracepoints: they exist on every kernel).  Filters: pid, uid and
// cgroup at entry, comm (the new program's) at exit; failed execs only with targ_failed.
#include "tools.h"

/* records the ring buffer refused (full): user space reports them, never silent */
__u64 lost = 0;

const volatile bool targ_failed = false;   /* -x: include failed execs */

#define ARGSIZE 128
#define MAXARGS 8

struct event {
    __u64 ts_ns;
    __u32 pid;
    __u32 ppid;
    __u32 uid;
    __s32 retval;
    __u32 args_count;
    __u32 args_size;
    char comm[TASK_COMM_LEN];
    __u8 args[MAXARGS * ARGSIZE];
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 10240);
    __type(key, __u32);
    __type(value, struct event);
} execs SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 256 * 1024);
} events SEC(".maps");

static const struct event empty_event = {};

struct execve_enter_args {
    __u64 common;
    __s32 syscall_nr;
    __u32 pad;
    const char *filename;
    const char *const *argv;
    const char *const *envp;
};

struct execve_exit_args {
    __u64 common;
    __s32 syscall_nr;
    __u32 pad;
    __s64 ret;
};

SEC("tracepoint/syscalls/sys_enter_execve")
int tp_enter_execve(struct execve_enter_args *ctx)
{
    __u64 id = bpf_get_current_pid_tgid();
    __u32 pid = id >> 32, tid = (__u32)id;
    if (!pid_allowed() || !uid_allowed() || !cgroup_allowed())
        return 0;
    if (bpf_map_update_elem(&execs, &tid, &empty_event, BPF_ANY))
        return 0;
    struct event *e = bpf_map_lookup_elem(&execs, &tid);
    if (!e)
        return 0;
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    e->pid = pid;
    e->uid = (__u32)bpf_get_current_uid_gid();
    e->ppid = BPF_CORE_READ(task, real_parent, tgid);
    e->args_count = 0;
    e->args_size = 0;
    for (int i = 0; i < MAXARGS; i++) {
        const char *argp = 0;
        bpf_probe_read_user(&argp, sizeof(argp), &ctx->argv[i]);
        if (!argp)
            break;
        long n = bpf_probe_read_user_str(&e->args[i * ARGSIZE], ARGSIZE, argp);
        if (n <= 0)
            break;
        e->args_count++;
    }
    e->args_size = e->args_count * ARGSIZE;
    return 0;
}

SEC("tracepoint/syscalls/sys_exit_execve")
int tp_exit_execve(struct execve_exit_args *ctx)
{
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    struct event *e = bpf_map_lookup_elem(&execs, &tid);
    if (!e)
        return 0;
    e->retval = ctx->ret;
    e->ts_ns = bpf_ktime_get_ns();
    bpf_get_current_comm(&e->comm, sizeof(e->comm));
    if ((targ_failed || ctx->ret >= 0) && comm_allowed())
        if (bpf_ringbuf_output(&events, e, sizeof(*e), 0))
            __sync_fetch_and_add(&lost, 1);
    bpf_map_delete_elem(&execs, &tid);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
