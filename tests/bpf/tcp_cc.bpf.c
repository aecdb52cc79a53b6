// A minimal TCP congestion control as a struct_ops map: Reno, through the kernel's
// tcp_reno_* kfuncs, counting its own calls.  Only the members it sets are declared:
// the loader matches members with the kernel's struct tcp_congestion_ops by name.
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

struct sock;

struct tcp_congestion_ops {
	__u32 (*ssthresh)(struct sock *sk);
	void (*cong_avoid)(struct sock *sk, __u32 ack, __u32 acked);
	__u32 (*undo_cwnd)(struct sock *sk);
	char name[16];
	__u32 flags;
};

extern __u32 tcp_reno_ssthresh(struct sock *sk) __ksym;
extern void tcp_reno_cong_avoid(struct sock *sk, __u32 ack, __u32 acked) __ksym;
extern __u32 tcp_reno_undo_cwnd(struct sock *sk) __ksym;

__u64 cong_avoid_calls;
__u64 ssthresh_calls;

SEC("struct_ops/bpfkit_ssthresh")
__u32 BPF_PROG(bpfkit_ssthresh, struct sock *sk)
{
	__sync_fetch_and_add(&ssthresh_calls, 1);
	return tcp_reno_ssthresh(sk);
}

SEC("struct_ops/bpfkit_cong_avoid")
void BPF_PROG(bpfkit_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	__sync_fetch_and_add(&cong_avoid_calls, 1);
	tcp_reno_cong_avoid(sk, ack, acked);
}

SEC("struct_ops/bpfkit_undo_cwnd")
__u32 BPF_PROG(bpfkit_undo_cwnd, struct sock *sk)
{
	return tcp_reno_undo_cwnd(sk);
}

/* Not referenced by any struct_ops map: not loaded. */
SEC("struct_ops/bpfkit_unused")
__u32 BPF_PROG(bpfkit_unused, struct sock *sk)
{
	return 0;
}

SEC(".struct_ops.link")
struct tcp_congestion_ops bpfkit_cc = {
	.ssthresh = (void *)bpfkit_ssthresh,
	.cong_avoid = (void *)bpfkit_cong_avoid,
	.undo_cwnd = (void *)bpfkit_undo_cwnd,
	.name = "bpfkit_cc",
};

/* The same algorithm registered the legacy way: updating the map registers it. */
SEC(".struct_ops")
struct tcp_congestion_ops bpfkit_cc_legacy = {
	.ssthresh = (void *)bpfkit_ssthresh,
	.cong_avoid = (void *)bpfkit_cong_avoid,
	.undo_cwnd = (void *)bpfkit_undo_cwnd,
	.name = "bpfkit_cc_old",
};
