// oomkill: out-of-memory kills: the victim, and the task whose allocation triggered the
// kill (current when oom:mark_victim fires), with the victim's memory.  tp_btf reads the
// victim's task_struct and mm; the tracepoint fallback has the same facts in its record.
#include "bk_events.h"

struct mm_struct___bk {
    unsigned long total_vm;
} __attribute__((preserve_access_index));

struct task_struct___bkoom {
    int tgid;
    char comm[TASK_COMM_LEN];
    struct mm_struct___bk *mm;
} __attribute__((preserve_access_index));

struct event {
    __u64 ts_ns;
    __u64 total_vm;   /* victim's pages */
    __u32 fpid;       /* triggered by */
    __u32 tpid;       /* killed */
    __u32 uid;        /* victim's uid */
    __u32 hook;
    char fcomm[TASK_COMM_LEN];
    char tcomm[TASK_COMM_LEN];
};

const struct event *event_btf __attribute__((unused));

struct tp_mark_victim {
    __u64 common;
    __s32 pid;
    __u32 comm_loc;
    __u64 total_vm;
    __u64 anon_rss;
    __u64 file_rss;
    __u64 shmem_rss;
    __u32 uid;
};

static __always_inline struct event *start_event(__u32 hook)
{
    struct event *e = reserve_event(sizeof(*e));
    if (!e)
        return 0;
    __builtin_memset(e, 0, sizeof(*e));
    e->ts_ns = bpf_ktime_get_ns();
    e->fpid = bpf_get_current_pid_tgid() >> 32;
    e->hook = hook;
    bpf_get_current_comm(&e->fcomm, sizeof(e->fcomm));
    return e;
}

SEC("tp_btf/mark_victim")
int BPF_PROG(tp_btf_victim, struct task_struct___bkoom *task, __u32 uid)
{
    struct event *e = start_event(HOOK_TP_BTF);
    if (!e)
        return 0;
    e->tpid = BPF_CORE_READ(task, tgid);
    e->uid = uid;
    e->total_vm = BPF_CORE_READ(task, mm, total_vm);
    BPF_CORE_READ_STR_INTO(&e->tcomm, task, comm);
    bpf_ringbuf_submit(e, 0);
    return 0;
}

SEC("tracepoint/oom/mark_victim")
int tp_victim(struct tp_mark_victim *ctx)
{
    struct event *e = start_event(HOOK_TRACEPOINT);
    if (!e)
        return 0;
    e->tpid = ctx->pid;
    e->uid = ctx->uid;
    e->total_vm = ctx->total_vm;
    bpf_probe_read_kernel_str(e->tcomm, sizeof(e->tcomm),
                              (void *)ctx + (ctx->comm_loc & 0xFFFF));
    bpf_ringbuf_submit(e, 0);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
