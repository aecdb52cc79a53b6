// struct_ops: a tcp_congestion_ops (the bpf_cubic/dctcp style of the kernel selftests) in
// SEC(".struct_ops"), its callbacks as SEC("struct_ops/...") programs with BPF_PROG.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char _license[] SEC("license") = "GPL";

static __always_inline struct tcp_sock *tcp_sk(const struct sock *sk)
{
	return (struct tcp_sock *)sk;
}

SEC("struct_ops/corpus_init")
void BPF_PROG(corpus_init, struct sock *sk)
{
	tcp_sk(sk)->snd_ssthresh = 0x7fffffff;
}

SEC("struct_ops/corpus_ssthresh")
__u32 BPF_PROG(corpus_ssthresh, struct sock *sk)
{
	const struct tcp_sock *tp = tcp_sk(sk);

	return tp->snd_cwnd > 4 ? tp->snd_cwnd >> 1 : 2;
}

SEC("struct_ops/corpus_cong_avoid")
void BPF_PROG(corpus_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	struct tcp_sock *tp = tcp_sk(sk);

	if (tp->snd_cwnd < tp->snd_cwnd_clamp)
		tp->snd_cwnd++;
}

SEC("struct_ops/corpus_undo_cwnd")
__u32 BPF_PROG(corpus_undo_cwnd, struct sock *sk)
{
	return tcp_sk(sk)->snd_cwnd;
}

SEC(".struct_ops")
struct tcp_congestion_ops corpus_cc = {
	.init = (void *)corpus_init,
	.ssthresh = (void *)corpus_ssthresh,
	.cong_avoid = (void *)corpus_cong_avoid,
	.undo_cwnd = (void *)corpus_undo_cwnd,
	.name = "bpfkit_corpus",
};
