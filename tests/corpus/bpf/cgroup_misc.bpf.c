// cgroup hooks beyond skb: device access policy, sysctl reads, getsockopt/setsockopt,
// sock_create/sock_release, bind4, and a cgroup storage map.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_STORAGE);
	__type(key, struct bpf_cgroup_storage_key);
	__type(value, __u64);
} cg_storage SEC(".maps");

SEC("cgroup/dev")
int dev_policy(struct bpf_cgroup_dev_ctx *ctx)
{
	short type = ctx->access_type & 0xFFFF;

	if (type == BPF_DEVCG_DEV_CHAR && ctx->major == 1 && ctx->minor == 3)
		return 1;
	return ctx->major != 4242;
}

SEC("cgroup/sysctl")
int sysctl_reads(struct bpf_sysctl *ctx)
{
	char name[64];

	bpf_sysctl_get_name(ctx, name, sizeof(name), 0);
	return ctx->write ? name[0] != 'k' : 1;
}

SEC("cgroup/getsockopt")
int getsockopt_hook(struct bpf_sockopt *ctx)
{
	return 1;
}

SEC("cgroup/setsockopt")
int setsockopt_hook(struct bpf_sockopt *ctx)
{
	if (ctx->optlen < 0)
		return 0;
	return 1;
}

SEC("cgroup/sock_create")
int sock_create_hook(struct bpf_sock *sk)
{
	__u64 *v = bpf_get_local_storage(&cg_storage, 0);

	__sync_fetch_and_add(v, 1);
	return 1;
}

SEC("cgroup/sock_release")
int sock_release_hook(struct bpf_sock *sk)
{
	return 1;
}

SEC("cgroup/bind4")
int bind4_hook(struct bpf_sock_addr *ctx)
{
	return 1;
}

SEC("cgroup/sock")
int sock_legacy(struct bpf_sock *sk)
{
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
