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

/* common filters: set as constants before load */
const volatile __u32 targ_pid = 0;
const volatile char targ_comm[TASK_COMM_LEN] = {};

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

#endif
