/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bpfkit's overlay of libbpf's <bpf/bpf_tracing.h>: the system header, then the names
 * newer libbpf releases added, defined only where missing (see bpf_helpers.h here for why).
 */
#ifndef __BPFKIT_OVERLAY_BPF_TRACING_H
#define __BPFKIT_OVERLAY_BPF_TRACING_H

#include_next <bpf/bpf_tracing.h>

/* A uprobe's context is the same struct pt_regs as a kprobe's: user-space functions get
 * their arguments (and return value) through the same registers. */
#ifndef BPF_UPROBE
#define BPF_UPROBE(name, args...) BPF_KPROBE(name, ##args)
#endif
#ifndef BPF_URETPROBE
#define BPF_URETPROBE(name, args...) BPF_KRETPROBE(name, ##args)
#endif

#endif /* __BPFKIT_OVERLAY_BPF_TRACING_H */
