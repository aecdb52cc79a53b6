// XDP redirect shapes: a devmap with a per-entry program (xdp/devmap), a cpumap program,
// and an xdp.frags program for multi-buffer packets.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct bpf_devmap_val));
	__uint(max_entries, 32);
} tx_port SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_CPUMAP);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct bpf_cpumap_val));
	__uint(max_entries, 8);
} cpu_map SEC(".maps");

SEC("xdp")
int xdp_redirect_map(struct xdp_md *ctx)
{
	return bpf_redirect_map(&tx_port, ctx->rx_queue_index, XDP_PASS);
}

SEC("xdp")
int xdp_redirect_cpu(struct xdp_md *ctx)
{
	return bpf_redirect_map(&cpu_map, 0, XDP_PASS);
}

SEC("xdp/devmap")
int xdp_devmap_prog(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp/cpumap")
int xdp_cpumap_prog(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp.frags")
int xdp_frags_len(struct xdp_md *ctx)
{
	return bpf_xdp_get_buff_len(ctx) > 1500 ? XDP_DROP : XDP_PASS;
}

char __license[] SEC("license") = "GPL";
