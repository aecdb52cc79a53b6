/* Shared by biolatency, biosnoop and bitesize: the request fields they read (CO-RE,
 * "___bk" flavour) and the layouts of the block tracepoints' records.  tp_btf programs
 * key a request by its address; the tracepoint fallback, which has no request pointer,
 * keys it by (device, sector) as BCC's tracepoint versions do. */
#ifndef BPFKIT_BK_BLOCK_H
#define BPFKIT_BK_BLOCK_H
#include "bk_events.h"

#define MINORBITS 20
#define REQ_OP_MASK 0xff

struct gendisk___bk {
    int major;
    int first_minor;
} __attribute__((preserve_access_index));

struct request_queue___bk {
    struct gendisk___bk *disk;
} __attribute__((preserve_access_index));

struct request___bk {
    struct request_queue___bk *q;
    unsigned int cmd_flags;
    __u64 __sector;
    unsigned int __data_len;
} __attribute__((preserve_access_index));

/* block_rq_issue / block_rq_insert / block_io_start */
struct tp_block_rq {
    __u64 common;
    __u32 dev;
    __u32 pad;
    __u64 sector;
    __u32 nr_sector;
    __u32 bytes;
    __u16 ioprio;
    char rwbs[10];
    char comm[TASK_COMM_LEN];
};

/* block_rq_complete */
struct tp_block_rq_complete {
    __u64 common;
    __u32 dev;
    __u32 pad;
    __u64 sector;
    __u32 nr_sector;
    __s32 error;
    __u16 ioprio;
    char rwbs[10];
};

/* a request: its address (tp_btf), or (device, sector) (tracepoint) */
struct rq_key {
    __u64 a;
    __u64 b;
};

/* -d DISK: only this device (kernel dev_t: major << 20 | minor), 0 = any */
const volatile __u32 targ_dev = 0;

enum bk_op { OP_READ = 0, OP_WRITE = 1, OP_FLUSH = 2, OP_DISCARD = 3, OP_OTHER = 4 };

static __always_inline __u32 rq_dev(struct request___bk *rq)
{
    struct gendisk___bk *disk = BPF_CORE_READ(rq, q, disk);
    if (!disk)
        return 0;
    return ((__u32)BPF_CORE_READ(disk, major) << MINORBITS) | BPF_CORE_READ(disk, first_minor);
}

static __always_inline __u32 rq_op(struct request___bk *rq)
{
    __u32 op = BPF_CORE_READ(rq, cmd_flags) & REQ_OP_MASK;
    return op <= OP_DISCARD ? op : OP_OTHER;
}

/* the operation from the tracepoint's rwbs string ("WS", "R", "FF", "D"...) */
static __always_inline __u32 rwbs_op(const char *rwbs)
{
    for (int i = 0; i < 3; i++) {
        switch (rwbs[i]) {
        case 'R': return OP_READ;
        case 'W': return OP_WRITE;
        case 'D': return OP_DISCARD;
        case 'F': continue;  /* FUA/preflush prefix: look further */
        default: return i ? OP_FLUSH : OP_OTHER;
        }
    }
    return OP_FLUSH;
}

static __always_inline bool dev_allowed(__u32 dev)
{
    return !targ_dev || dev == targ_dev;
}

#endif
