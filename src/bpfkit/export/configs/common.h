/* Shared by the exporter's example programs: self-contained (no vmlinux.h), built with
 * `bpfkit build` / compile_bpf.  Tracepoint contexts are declared from their stable
 * format files (/sys/kernel/tracing/events/.../format). */
#ifndef BPFKIT_EXPORT_COMMON_H
#define BPFKIT_EXPORT_COMMON_H
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

/* 0 = every process; else only this thread group (set with --const target_tgid=PID) */
const volatile __u32 target_tgid = 0;

static __always_inline int tgid_allowed(void)
{
    __u32 tgid = bpf_get_current_pid_tgid() >> 32;
    return !target_tgid || tgid == target_tgid;
}

static __always_inline void add(void *map, const void *key, __u64 n)
{
    __u64 *v = bpf_map_lookup_elem(map, key);
    if (v) {
        __sync_fetch_and_add(v, n);
        return;
    }
    if (bpf_map_update_elem(map, key, &n, BPF_NOEXIST) == 0)
        return;
    v = bpf_map_lookup_elem(map, key);   /* another CPU created it first: add to it */
    if (v)
        __sync_fetch_and_add(v, n);
}

char LICENSE[] SEC("license") = "GPL";
#endif
