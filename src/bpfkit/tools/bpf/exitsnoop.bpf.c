// exitsnoop: every process (or, with threads, task) exit with its age, exit code or
// terminating signal.  sched:sched_process_exit fires in the exiting task itself, after
// do_exit() stored the exit code; tp_btf first (no record copy), else the tracepoint.
#include "bk_events.h"

struct task_struct___bk {
    int pid;
    int tgid;
    int exit_code;
    __u64 start_time;
    struct task_struct___bk *real_parent;
} __attribute__((preserve_access_index));

struct event {
    __u64 ts_ns;
    __u64 start_ns;
    __u32 pid;
    __u32 tid;
    __u32 ppid;
    __u32 uid;
    __s32 exit_code;
    __u32 hook;
    char comm[TASK_COMM_LEN];
};

const struct event *event_btf __attribute__((unused));

const volatile bool targ_failed = false;   /* -x: only non-zero exits */
const volatile bool targ_threads = false;  /* --threaded: every task, not only leaders */

static __always_inline int on_exit(__u32 hook)
{
    __u64 id = bpf_get_current_pid_tgid();
    __u32 pid = id >> 32, tid = (__u32)id;
    struct task_struct___bk *task;
    struct event *e;
    int code;

    if (!targ_threads && pid != tid)
        return 0;
    if (!task_allowed())
        return 0;
    task = (struct task_struct___bk *)bpf_get_current_task();
    code = BPF_CORE_READ(task, exit_code);
    if (targ_failed && code == 0)
        return 0;
    e = reserve_event(sizeof(*e));
    if (!e)
        return 0;
    e->ts_ns = bpf_ktime_get_ns();
    e->start_ns = BPF_CORE_READ(task, start_time);
    e->pid = pid;
    e->tid = tid;
    e->ppid = BPF_CORE_READ(task, real_parent, tgid);
    e->uid = (__u32)bpf_get_current_uid_gid();
    e->exit_code = code;
    e->hook = hook;
    bpf_get_current_comm(&e->comm, sizeof(e->comm));
    bpf_ringbuf_submit(e, 0);
    return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(tp_btf_exit)
{
    return on_exit(HOOK_TP_BTF);
}

SEC("tracepoint/sched/sched_process_exit")
int tp_exit(void *ctx)
{
    return on_exit(HOOK_TRACEPOINT);
}

char LICENSE[] SEC("license") = "GPL";
