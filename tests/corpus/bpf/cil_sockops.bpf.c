// Cilium sockmap acceleration shape: sockops adds established sockets to a sockhash,
// sk_msg redirects between local sockets, sk_skb parser/verdict pair on a sockmap.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct sock_key {
	__u32 sip4;
	__u32 dip4;
	__u8 family;
	__u8 pad1;
	__u16 pad2;
	__u32 pad3;
	__u32 sport;
	__u32 dport;
};

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__type(key, struct sock_key);
	__type(value, __u32);
	__uint(max_entries, 65535);
} sock_ops_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 16);
} skb_map SEC(".maps");

static __always_inline void sk_extract_key(struct bpf_sock_ops *ops, struct sock_key *key)
{
	key->dip4 = ops->remote_ip4;
	key->sip4 = ops->local_ip4;
	key->family = 1;
	key->sport = bpf_htonl(ops->local_port) >> 16;
	key->dport = ops->remote_port >> 16;
}

SEC("sockops")
int cil_sockops(struct bpf_sock_ops *skops)
{
	struct sock_key key = {};

	switch (skops->op) {
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		if (skops->family == 2) {
			sk_extract_key(skops, &key);
			bpf_sock_hash_update(skops, &sock_ops_map, &key, BPF_NOEXIST);
		}
		break;
	}
	return 0;
}

SEC("sk_msg")
int cil_redir(struct sk_msg_md *msg)
{
	struct sock_key key = {};

	key.sip4 = msg->remote_ip4;
	key.dip4 = msg->local_ip4;
	key.family = 1;
	key.dport = bpf_htonl(msg->local_port) >> 16;
	key.sport = msg->remote_port >> 16;
	bpf_msg_redirect_hash(msg, &sock_ops_map, &key, BPF_F_INGRESS);
	return SK_PASS;
}

SEC("sk_skb/stream_parser")
int cil_parser(struct __sk_buff *skb)
{
	return skb->len;
}

SEC("sk_skb/stream_verdict")
int cil_verdict(struct __sk_buff *skb)
{
	return bpf_sk_redirect_map(skb, &skb_map, 0, 0);
}

char __license[] SEC("license") = "Dual BSD/GPL";
