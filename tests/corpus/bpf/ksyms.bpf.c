// .ksyms externs: a typed kernel variable (BTF id, read with direct access or
// bpf_per_cpu_ptr), an untyped address from kallsyms, weak ones missing from this kernel,
// and bpf_ksym_exists() guards.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

extern const struct rq runqueues __ksym;
extern const void bpf_prog_fops __ksym;
extern const void bpfkit_no_such_symbol __ksym __weak;
extern const int bpfkit_no_such_typed __ksym __weak;

u64 out[4];

SEC("raw_tp/sys_enter")
int ksyms(void *ctx)
{
	struct rq *rq = bpf_per_cpu_ptr(&runqueues, 0);

	if (rq)
		out[0] = rq->cpu;
	out[1] = (u64)&bpf_prog_fops;
	out[2] = bpf_ksym_exists(&bpfkit_no_such_symbol);
	if (bpf_ksym_exists(&bpfkit_no_such_typed))
		out[3] = 1;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
