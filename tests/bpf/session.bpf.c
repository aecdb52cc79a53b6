// uprobe.session: one program runs at entry and (because entry returns 0) at return.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <stdbool.h>

extern bool bpf_session_is_return(void) __ksym __weak;

const volatile __u32 targ_pid = 0;
__u64 entries = 0;
__u64 returns = 0;

SEC("uprobe.session//lib/x86_64-linux-gnu/libc.so.6:getpid")
int on_getpid(void *ctx)
{
    if ((bpf_get_current_pid_tgid() >> 32) != targ_pid)
        return 1;  /* non-zero at entry: no return probe */
    if (bpf_session_is_return())
        __sync_fetch_and_add(&returns, 1);
    else
        __sync_fetch_and_add(&entries, 1);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
