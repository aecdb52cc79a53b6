// Network program types with their own contexts: sk_lookup steering into a sockmap,
// a flow dissector, sk_reuseport selection, lwt programs, a SCHED_ACT action.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} redir_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_REUSEPORT_SOCKARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} reuse_map SEC(".maps");

const volatile __u16 steer_port = 7007;

SEC("sk_lookup")
int steer(struct bpf_sk_lookup *ctx)
{
	__u32 key = 0;
	struct bpf_sock *sk;
	long err;

	if (ctx->local_port != steer_port)
		return SK_PASS;
	sk = bpf_map_lookup_elem(&redir_map, &key);
	if (!sk)
		return SK_PASS;
	err = bpf_sk_assign(ctx, sk, 0);
	bpf_sk_release(sk);
	return err ? SK_DROP : SK_PASS;
}

SEC("flow_dissector")
int dissect(struct __sk_buff *skb)
{
	struct bpf_flow_keys *keys = skb->flow_keys;

	keys->nhoff = 0;
	keys->thoff = 0;
	return BPF_OK;
}

SEC("sk_reuseport")
int select_sock(struct sk_reuseport_md *reuse)
{
	__u32 key = reuse->hash & 3;

	if (bpf_sk_select_reuseport(reuse, &reuse_map, &key, 0))
		return SK_DROP;
	return SK_PASS;
}

SEC("lwt_in")
int lwt_in_pass(struct __sk_buff *skb)
{
	return BPF_OK;
}

SEC("lwt_xmit")
int lwt_xmit_pass(struct __sk_buff *skb)
{
	return BPF_OK;
}

SEC("action")
int act_ok(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
