// libbpf-bootstrap usdt: BPF_USDT programs (auto-attach and manual), usdt.bpf.h's maps
// and its __weak __hidden helpers, bpf_usdt_cookie.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

pid_t my_pid;

SEC("usdt/libc.so.6:libc:setjmp")
int BPF_USDT(usdt_auto_attach, void *arg1, int arg2, void *arg3)
{
	pid_t pid = bpf_get_current_pid_tgid() >> 32;

	if (pid != my_pid)
		return 0;
	bpf_printk("USDT auto attach to libc:setjmp: arg1 = %lx, arg2 = %d, arg3 = %lx", arg1, arg2,
		   arg3);
	return 0;
}

SEC("usdt")
int BPF_USDT(usdt_manual_attach, void *arg1, int arg2, void *arg3)
{
	bpf_printk("USDT manual attach to libc:setjmp: arg1 = %lx, arg2 = %d, arg3 = %lx", arg1,
		   arg2, arg3);
	return 0;
}

SEC("usdt")
int usdt_cookie(struct pt_regs *ctx)
{
	long v;

	if (bpf_usdt_arg(ctx, 0, &v) == 0)
		bpf_printk("cookie %lld arg %ld", bpf_usdt_cookie(ctx), v);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
