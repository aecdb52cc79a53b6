// .kconfig externs: the libbpf-provided LINUX_* values and CONFIG_* of every kind (bool,
// tristate, int, string), strong and __weak, the missing ones defaulting to zero.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

extern u32 LINUX_KERNEL_VERSION __kconfig;
extern bool LINUX_HAS_BPF_COOKIE __kconfig;
extern bool LINUX_HAS_SYSCALL_WRAPPER __kconfig __weak;
extern int CONFIG_HZ __kconfig __weak;
extern bool CONFIG_BPF_SYSCALL __kconfig;
extern enum libbpf_tristate CONFIG_BPF_JIT __kconfig __weak;
extern bool CONFIG_BPFKIT_DOES_NOT_EXIST __kconfig __weak;
extern int CONFIG_NR_CPUS __kconfig __weak;
extern char CONFIG_DEFAULT_HOSTNAME[16] __kconfig __weak;
extern u64 CONFIG_BPFKIT_NUMBER __kconfig __weak;

u64 seen[10];

SEC("tp/syscalls/sys_enter_getpid")
int kconfig_values(void *ctx)
{
	seen[0] = LINUX_KERNEL_VERSION;
	seen[1] = LINUX_HAS_BPF_COOKIE ? bpf_get_attach_cookie(ctx) : 0;
	seen[2] = LINUX_HAS_SYSCALL_WRAPPER;
	seen[3] = CONFIG_HZ;
	seen[4] = CONFIG_BPF_SYSCALL;
	seen[5] = CONFIG_BPF_JIT == TRI_YES;
	if (CONFIG_BPFKIT_DOES_NOT_EXIST)
		seen[6] = bpf_ktime_get_boot_ns();
	seen[7] = CONFIG_NR_CPUS;
	seen[8] = CONFIG_DEFAULT_HOSTNAME[0];
	seen[9] = CONFIG_BPFKIT_NUMBER;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
