// A strong __kconfig extern that is neither CONFIG_* nor a known LINUX_* value.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern int LINUX_BPFKIT_UNKNOWN __kconfig;
int seen;

SEC("tp/syscalls/sys_enter_getppid")
int use_unknown(void *ctx)
{
    seen = LINUX_BPFKIT_UNKNOWN;
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
