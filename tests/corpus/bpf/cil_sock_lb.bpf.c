// Cilium-style socket load balancing: cgroup connect4/sendmsg4/recvmsg4/getpeername4 hooks
// rewriting the destination through a service map, a reverse-NAT map for replies.
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct svc_key { __be32 addr; __be16 port; __u16 pad; };
struct svc_val { __be32 backend_addr; __be16 backend_port; __u16 rev_nat_id; };
struct revnat_key { __u64 cookie; __be32 addr; __be16 port; __u16 pad; };
struct revnat_val { __be32 addr; __be16 port; __u16 pad; };

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct svc_key);
	__type(value, struct svc_val);
	__uint(max_entries, 4096);
} sock_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct revnat_key);
	__type(value, struct revnat_val);
	__uint(max_entries, 65536);
} sock_revnat SEC(".maps");

static __always_inline int xlate_fwd(struct bpf_sock_addr *ctx)
{
	struct svc_key key = { .addr = ctx->user_ip4, .port = ctx->user_port };
	struct svc_val *svc = bpf_map_lookup_elem(&sock_services, &key);
	struct revnat_key rk = {};
	struct revnat_val rv = {};

	if (!svc)
		return 1;
	rk.cookie = bpf_get_socket_cookie(ctx);
	rk.addr = svc->backend_addr;
	rk.port = svc->backend_port;
	rv.addr = ctx->user_ip4;
	rv.port = ctx->user_port;
	bpf_map_update_elem(&sock_revnat, &rk, &rv, BPF_ANY);
	ctx->user_ip4 = svc->backend_addr;
	ctx->user_port = svc->backend_port;
	return 1;
}

static __always_inline int xlate_rev(struct bpf_sock_addr *ctx)
{
	struct revnat_key rk = { .cookie = bpf_get_socket_cookie(ctx), .addr = ctx->user_ip4,
				 .port = ctx->user_port };
	struct revnat_val *rv = bpf_map_lookup_elem(&sock_revnat, &rk);

	if (rv) {
		ctx->user_ip4 = rv->addr;
		ctx->user_port = rv->port;
	}
	return 1;
}

SEC("cgroup/connect4")
int cil_sock4_connect(struct bpf_sock_addr *ctx)
{
	return xlate_fwd(ctx);
}

SEC("cgroup/sendmsg4")
int cil_sock4_sendmsg(struct bpf_sock_addr *ctx)
{
	return xlate_fwd(ctx);
}

SEC("cgroup/recvmsg4")
int cil_sock4_recvmsg(struct bpf_sock_addr *ctx)
{
	return xlate_rev(ctx);
}

SEC("cgroup/getpeername4")
int cil_sock4_getpeername(struct bpf_sock_addr *ctx)
{
	return xlate_rev(ctx);
}

SEC("cgroup/post_bind4")
int cil_sock4_post_bind(struct bpf_sock *ctx)
{
	return 1;
}

char __license[] SEC("license") = "Dual BSD/GPL";
