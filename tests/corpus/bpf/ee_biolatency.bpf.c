// ebpf_exporter biolatency example shape: tp_btf block_rq_insert/issue/complete, an exp2
// histogram keyed by {dev, op, bucket}, the sum in the bucket after the last one.
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "ee_maps.h"

#define MAX_LATENCY_SLOT 26
#define MKDEV(ma, mi) ((mi & 0xff) | (ma << 8) | ((mi & ~0xff) << 12))
#define REQ_OP_BITS 8
#define REQ_OP_MASK ((1 << REQ_OP_BITS) - 1)

struct disk_latency_key_t {
	u32 dev;
	u8 op;
	u64 bucket;
};

extern int LINUX_KERNEL_VERSION __kconfig;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10000);
	__type(key, struct request *);
	__type(value, u64);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, (MAX_LATENCY_SLOT + 2) * 10000);
	__type(key, struct disk_latency_key_t);
	__type(value, u64);
} bio_latency_seconds SEC(".maps");

static __always_inline int trace_rq_start(struct request *rq)
{
	u64 ts = bpf_ktime_get_ns();

	bpf_map_update_elem(&start, &rq, &ts, 0);
	return 0;
}

SEC("tp_btf/block_rq_insert")
int block_rq_insert(u64 *ctx)
{
	return trace_rq_start((void *)ctx[0]);
}

SEC("tp_btf/block_rq_issue")
int block_rq_issue(u64 *ctx)
{
	return trace_rq_start((void *)ctx[0]);
}

SEC("tp_btf/block_rq_complete")
int block_rq_complete(u64 *ctx)
{
	struct request *rq = (struct request *)ctx[0];
	struct disk_latency_key_t latency_key = {};
	struct gendisk *disk;
	u64 *tsp, delta_us;
	unsigned int flags;

	tsp = bpf_map_lookup_elem(&start, &rq);
	if (!tsp)
		return 0;
	delta_us = (bpf_ktime_get_ns() - *tsp) / 1000;
	disk = BPF_CORE_READ(rq, q, disk);
	flags = BPF_CORE_READ(rq, cmd_flags);
	latency_key.dev = disk ? MKDEV(BPF_CORE_READ(disk, major), BPF_CORE_READ(disk, first_minor)) : 0;
	latency_key.op = flags & REQ_OP_MASK;
	increment_exp2_histogram(&bio_latency_seconds, &latency_key, delta_us, MAX_LATENCY_SLOT);
	bpf_map_delete_elem(&start, &rq);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
