// libbpf-bootstrap lsm: an lsm/bpf program denying BPF_MAP_CREATE by policy.  This kernel
// refuses LSM programs before verification: both loaders must say so.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define EPERM 1

char LICENSE[] SEC("license") = "GPL";

const volatile int deny_cmd = -1;

SEC("lsm/bpf")
int BPF_PROG(lsm_bpf, int cmd, union bpf_attr *attr, unsigned int size, int ret)
{
	if (ret != 0)
		return ret;
	if (cmd == deny_cmd)
		return -EPERM;
	return 0;
}
