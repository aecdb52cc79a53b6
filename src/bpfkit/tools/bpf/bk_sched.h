/* Shared by runqlat, cpudist and offcputime: the task fields they read at
 * sched_wakeup/sched_switch (CO-RE, "___bk" flavour), the task's state across the
 * 5.14 rename (state -> __state), and the pid/tid filter applied to the task a
 * scheduler event is about (not to the current task, which is another one). */
#ifndef BPFKIT_BK_SCHED_H
#define BPFKIT_BK_SCHED_H
#include "bk_events.h"

#define TASK_RUNNING 0

struct task_struct___bk {
    int pid;
    int tgid;
    unsigned int __state;
    char comm[TASK_COMM_LEN];
} __attribute__((preserve_access_index));

struct task_struct___bk_old {
    long state;
} __attribute__((preserve_access_index));

static __always_inline long task_state(struct task_struct___bk *t)
{
    if (bpf_core_field_exists(t->__state))
        return BPF_CORE_READ(t, __state);
    return BPF_CORE_READ((struct task_struct___bk_old *)t, state);
}

/* -p / -t on the task the event is about */
static __always_inline bool task_ids_allowed(__u32 tgid, __u32 pid)
{
    if (!pid)
        return false;  /* the idle task */
    if (targ_pid && tgid != targ_pid)
        return false;
    if (targ_tid && pid != targ_tid)
        return false;
    return true;
}

#endif
