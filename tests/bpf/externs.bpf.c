// .kconfig and .ksyms externs, including weak missing ones.
#include <linux/bpf.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

extern unsigned int LINUX_KERNEL_VERSION __kconfig;
extern bool LINUX_HAS_BPF_COOKIE __kconfig;
extern bool LINUX_HAS_SYSCALL_WRAPPER __kconfig;
extern bool CONFIG_BPF_SYSCALL __kconfig;
extern int CONFIG_HZ __kconfig __weak;
extern int CONFIG_BPFKIT_DOES_NOT_EXIST __kconfig __weak;

extern const void _stext __ksym;                      /* untyped ksym (kallsyms) */
extern const void bpfkit_missing_symbol __ksym __weak; /* weak, missing */

__u64 out_version, out_cookie, out_wrapper, out_syscall, out_hz, out_missing;
__u64 out_link_fops, out_missing_sym, out_kfunc_ran;

SEC("raw_tp/sys_enter")
int read_externs(void *ctx)
{
	out_version = LINUX_KERNEL_VERSION;
	out_cookie = LINUX_HAS_BPF_COOKIE;
	out_wrapper = LINUX_HAS_SYSCALL_WRAPPER;
	out_syscall = CONFIG_BPF_SYSCALL;
	out_hz = CONFIG_HZ;
	out_missing = CONFIG_BPFKIT_DOES_NOT_EXIST + 1;
	out_link_fops = (__u64)&_stext;
	out_missing_sym = (__u64)&bpfkit_missing_symbol;
	return 0;
}

/* kfuncs: one every program type may call, and a weak one this kernel lacks */
extern void bpf_rcu_read_lock(void) __ksym;
extern void bpf_rcu_read_unlock(void) __ksym;
extern void bpfkit_no_such_kfunc(void) __ksym __weak;

SEC("syscall")
int call_kfuncs(void *ctx)
{
	bpf_rcu_read_lock();
	out_kfunc_ran = 1;
	bpf_rcu_read_unlock();
	if (&bpfkit_no_such_kfunc) /* bpf_ksym_exists() */
		bpfkit_no_such_kfunc();
	return 5;
}
