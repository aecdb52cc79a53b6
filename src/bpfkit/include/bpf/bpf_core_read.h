/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bpfkit's overlay of libbpf's <bpf/bpf_core_read.h>: the system header, then the names
 * newer libbpf releases added, defined only where missing (see bpf_helpers.h here for why).
 */
#ifndef __BPFKIT_OVERLAY_BPF_CORE_READ_H
#define __BPFKIT_OVERLAY_BPF_CORE_READ_H

/* Newer libbpf releases include bpf_helpers.h here (bpf_core_cast needs __ksym), and code
 * such as ebpf_exporter's examples relies on it: bpf_core_read.h alone brings
 * __always_inline and the helper declarations. */
#include <bpf/bpf_helpers.h>
#include_next <bpf/bpf_core_read.h>

/* Treat a kernel pointer as a trusted pointer of a (vmlinux) BTF type, so its fields can
 * be read directly: the kernel's bpf_rdonly_cast kfunc with the type's kernel BTF id. */
#if !defined(bpf_core_cast)
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;
#define bpf_core_cast(ptr, type) \
	((typeof(type) *)bpf_rdonly_cast((ptr), bpf_core_type_id_kernel(type)))
#endif

#endif /* __BPFKIT_OVERLAY_BPF_CORE_READ_H */
