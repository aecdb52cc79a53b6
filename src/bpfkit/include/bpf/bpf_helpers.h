/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bpfkit's overlay of libbpf's <bpf/bpf_helpers.h>.
 *
 * Why: distributions ship older libbpf headers than the code people copy from current
 * tool collections (Debian 12: libbpf 1.1). `bpfkit build` and `bpfkit run FILE.c` put this
 * directory first on the include path; each overlay includes the system header it shadows
 * and then defines, only where they are missing, the names newer libbpf releases added.
 * Written by bpfkit from the documented behaviour of those names.
 */
#ifndef __BPFKIT_OVERLAY_BPF_HELPERS_H
#define __BPFKIT_OVERLAY_BPF_HELPERS_H

#include_next <bpf/bpf_helpers.h>

#ifndef likely
#define likely(x) __builtin_expect(!!(x), 1)
#endif
#ifndef unlikely
#define unlikely(x) __builtin_expect(!!(x), 0)
#endif

/* Is a __weak __ksym (or __kconfig) symbol present on the running kernel?  The loader
 * resolves a missing weak symbol to 0. */
#ifndef bpf_ksym_exists
#define bpf_ksym_exists(sym) ({                                                         \
	_Static_assert(!__builtin_constant_p(!!(sym)), #sym " must be declared __weak"); \
	!!(sym);                                                                        \
})
#endif

/* BTF type tags and declaration tags of newer libbpf releases. */
#ifndef __percpu_kptr
#define __percpu_kptr __attribute__((btf_type_tag("percpu_kptr")))
#endif
#ifndef __contains
#define __contains(name, node) __attribute__((btf_decl_tag("contains:" #name ":" #node)))
#endif
#ifndef __arg_ctx
#define __arg_ctx __attribute__((btf_decl_tag("arg:ctx")))
#endif
#ifndef __arg_nonnull
#define __arg_nonnull __attribute__((btf_decl_tag("arg:nonnull")))
#endif
#ifndef __arg_nullable
#define __arg_nullable __attribute__((btf_decl_tag("arg:nullable")))
#endif
#ifndef __arg_trusted
#define __arg_trusted __attribute__((btf_decl_tag("arg:trusted")))
#endif
#ifndef __arg_arena
#define __arg_arena __attribute__((btf_decl_tag("arg:arena")))
#endif

/*
 * Open-coded loops over the kernel's numbers iterator (kernel 6.4+): bpf_for(i, a, b)
 * runs i over [a, b), bpf_repeat(n) runs n times.  They need `struct bpf_iter_num`, which
 * a generated vmlinux.h declares (and Debian 12's uapi headers do not), so they are only
 * offered after vmlinux.h.
 */
#if defined(__VMLINUX_H__) && !defined(bpf_for)
extern int bpf_iter_num_new(struct bpf_iter_num *it, int start, int end) __weak __ksym;
extern int *bpf_iter_num_next(struct bpf_iter_num *it) __weak __ksym;
extern void bpf_iter_num_destroy(struct bpf_iter_num *it) __weak __ksym;

#define bpf_for_each(type, cur, args...)                                                \
	for (struct bpf_iter_##type ___it                                               \
	         __attribute__((aligned(8), cleanup(bpf_iter_##type##_destroy))),        \
	     *___once __attribute__((unused)) =                                         \
	         (bpf_iter_##type##_new(&___it, ##args), (void *)0);                    \
	     (((cur) = bpf_iter_##type##_next(&___it)));)

#define bpf_for(i, start, end)                                                          \
	for (struct bpf_iter_num ___it                                                  \
	         __attribute__((aligned(8), cleanup(bpf_iter_num_destroy))),            \
	     *___once __attribute__((unused)) =                                         \
	         (bpf_iter_num_new(&___it, (start), (end)), (void *)0);                 \
	     ({                                                                         \
		int *___v = bpf_iter_num_next(&___it);                                  \
		/* the bounds check tells the verifier i's range */                     \
		___v && ((i) = *___v, (i) >= (start) && (i) < (end));                   \
	     });)

#define bpf_repeat(n)                                                                   \
	for (struct bpf_iter_num ___it                                                  \
	         __attribute__((aligned(8), cleanup(bpf_iter_num_destroy))),            \
	     *___once __attribute__((unused)) =                                         \
	         (bpf_iter_num_new(&___it, 0, (n)), (void *)0);                         \
	     bpf_iter_num_next(&___it);)
#endif

#endif /* __BPFKIT_OVERLAY_BPF_HELPERS_H */
