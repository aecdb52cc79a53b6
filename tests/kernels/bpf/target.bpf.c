// A program with a global function, the target of fentry/fexit-on-BPF and freplace tests.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

/* Global (non-static) and not inlined: verified on its own, so it can be replaced by an
 * freplace program and traced by fentry/fexit. */
__attribute__((noinline)) int bpfkit_target_fn(int x)
{
	return x + 1;
}

SEC("tc")
int target_entry(struct __sk_buff *skb)
{
	return bpfkit_target_fn(skb->len);
}
