/* Shared by bpfkit's tool programs.  Kernel structs are declared here with only the
 * fields the tools read, marked preserve_access_index so CO-RE relocates them against
 * the running kernel: the objects build without a vmlinux.h and are reproducible. */
#ifndef BPFKIT_TOOLS_H
#define BPFKIT_TOOLS_H
#include <linux/bpf.h>
#include <linux/types.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define TASK_COMM_LEN 16

struct task_struct {
    int pid;
    int tgid;
    struct task_struct *real_parent;
    char comm[TASK_COMM_LEN];
} __attribute__((preserve_access_index));

/* Common filters, set as constants before load by the tools' argument layer
 * (bpfkit/tools/base.py: a tool declares in ``filters`` which of these its code tests;
 * the others are refused, never ignored). */
const volatile __u32 targ_pid = 0;          /* -p: tgid, 0 = any */
const volatile __u32 targ_tid = 0;          /* -t: thread id, 0 = any */
const volatile __u32 targ_uid = (__u32)-1;  /* -u: uid, (u32)-1 = any */
const volatile __u64 targ_cgid = 0;         /* -c: cgroup v2 id (directory inode), 0 = any */
const volatile char targ_comm[TASK_COMM_LEN] = {};   /* -n: comm, "" = any */

static __always_inline bool comm_allowed(void)
{
    char comm[TASK_COMM_LEN];
    if (!targ_comm[0])
        return true;
    bpf_get_current_comm(&comm, sizeof(comm));
    for (int i = 0; i < TASK_COMM_LEN; i++) {
        if (comm[i] != targ_comm[i])
            return false;
        if (!comm[i])
            break;
    }
    return true;
}

static __always_inline bool pid_allowed(void)
{
    __u32 pid = bpf_get_current_pid_tgid() >> 32;
    return !targ_pid || pid == targ_pid;
}

static __always_inline bool tid_allowed(void)
{
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    return !targ_tid || tid == targ_tid;
}

static __always_inline bool uid_allowed(void)
{
    return targ_uid == (__u32)-1 || (__u32)bpf_get_current_uid_gid() == targ_uid;
}

static __always_inline bool cgroup_allowed(void)
{
    return !targ_cgid || bpf_get_current_cgroup_id() == targ_cgid;
}

/* every common filter at once (pid, tid, uid, cgroup, comm) */
static __always_inline bool task_allowed(void)
{
    return pid_allowed() && tid_allowed() && uid_allowed() && cgroup_allowed() &&
           comm_allowed();
}

#endif
