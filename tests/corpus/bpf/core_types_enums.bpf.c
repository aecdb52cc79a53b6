// CO-RE type and enum relocations: bpf_core_type_exists/size/matches, local and target
// type ids, enum value existence and value (including an enumerator this kernel lacks).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

enum bpf_func_id___x {
	BPF_FUNC_get_attach_cookie___x = 1,
	BPF_FUNC_bpfkit_never___x = 2,
};

enum bpf_map_type___x {
	BPF_MAP_TYPE_RINGBUF___x = 1,
};

struct bpfkit_missing_struct {
	int a;
};

typedef struct bpfkit_missing_struct bpfkit_missing_t;

u64 out[12];

SEC("tp/syscalls/sys_enter_getpid")
int core_types_enums(void *ctx)
{
	out[0] = bpf_core_type_exists(struct task_struct);
	out[1] = bpf_core_type_exists(struct bpfkit_missing_struct);
	out[2] = bpf_core_type_size(struct task_struct);
	out[3] = bpf_core_type_id_kernel(struct task_struct);
	out[4] = bpf_core_type_id_local(struct bpfkit_missing_struct);
	out[5] = bpf_core_enum_value_exists(enum bpf_func_id___x, BPF_FUNC_get_attach_cookie___x);
	out[6] = bpf_core_enum_value_exists(enum bpf_func_id___x, BPF_FUNC_bpfkit_never___x);
	out[7] = bpf_core_enum_value(enum bpf_func_id___x, BPF_FUNC_get_attach_cookie___x);
	out[8] = bpf_core_enum_value(enum bpf_map_type___x, BPF_MAP_TYPE_RINGBUF___x);
	out[9] = bpf_core_type_exists(bpfkit_missing_t);
	out[10] = bpf_core_type_size(union bpf_attr);
	out[11] = bpf_core_type_matches(struct list_head);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
