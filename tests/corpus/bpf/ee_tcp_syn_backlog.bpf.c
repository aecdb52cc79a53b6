// ebpf_exporter tcp-syn-backlog shape: a kprobe reading the listen backlog of the socket,
// a linear histogram keyed by bucket; the fentry twin is chosen when the kernel allows.
// corpus: autoload-off fentry_tcp_v4_syn_recv_sock
// corpus: autoload-off kprobe_tcp_v4_syn_recv_sock
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "ee_maps.h"

#define BUCKET_MULTIPLIER 50
#define BUCKET_COUNT 20

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BUCKET_COUNT + 2);
	__type(key, u32);
	__type(value, u64);
} tcp_syn_backlog SEC(".maps");

static int do_count(u64 backlog)
{
	u64 bucket = backlog / BUCKET_MULTIPLIER;
	u32 key;

	if (bucket > BUCKET_COUNT)
		bucket = BUCKET_COUNT;
	key = bucket;
	increment_map(&tcp_syn_backlog, &key, 1);
	key = BUCKET_COUNT + 1;
	increment_map(&tcp_syn_backlog, &key, backlog);
	return 0;
}

SEC("kprobe/tcp_v4_syn_recv_sock")
int BPF_KPROBE(kprobe_tcp_v4_syn_recv_sock, struct sock *sk)
{
	return do_count(BPF_CORE_READ(sk, sk_ack_backlog) / 50);
}

SEC("fentry/tcp_v4_syn_recv_sock")
int BPF_PROG(fentry_tcp_v4_syn_recv_sock, struct sock *sk)
{
	return do_count(sk->sk_ack_backlog / 50);
}

char LICENSE[] SEC("license") = "GPL";
