// CO-RE relocation tests (tests/test_core.py): every relocation kind, on our own
// struct declarations (no vmlinux.h).  One program per section so each section's
// .BTF.ext records are relative to the program start.  Programs that only check
// relocated constants are never loaded; the others run with BPF_PROG_TEST_RUN.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

/* ------------------------------------------------ against the running kernel */
struct task_struct___mine {
	int pid;
	int tgid;
	struct task_struct___mine *real_parent;
} __attribute__((preserve_access_index));

struct task_struct___missing {
	int no_such_field_in_kernel;
} __attribute__((preserve_access_index));

struct task_struct___badmatch {
	long pid;
} __attribute__((preserve_access_index));

struct no_such_type_in_kernel___x {
	int a;
} __attribute__((preserve_access_index));

enum bpf_prog_type___mine {
	BPF_PROG_TYPE_XDP___mine = 1000,
	BPF_PROG_TYPE_NOPE___mine = 1001,
};

SEC("raw_tp/tgid")
int read_tgid(void *ctx)
{
	struct task_struct___mine *t = (void *)bpf_get_current_task();

	return BPF_CORE_READ(t, tgid);
}

SEC("raw_tp/ppid")
int read_ppid(void *ctx)
{
	struct task_struct___mine *t = (void *)bpf_get_current_task();

	return BPF_CORE_READ(t, real_parent, tgid);
}

SEC("raw_tp/guarded")
int guarded(void *ctx)
{
	struct task_struct___missing *t = (void *)bpf_get_current_task();

	if (bpf_core_field_exists(t->no_such_field_in_kernel))
		return BPF_CORE_READ(t, no_such_field_in_kernel);
	return 42;
}

SEC("raw_tp/unguarded")
int unguarded(void *ctx)
{
	struct task_struct___missing *t = (void *)bpf_get_current_task();

	return BPF_CORE_READ(t, no_such_field_in_kernel);
}

SEC("raw_tp/kernel_kinds")
int kernel_kinds(void *ctx)
{
	struct task_struct___mine *t = 0;
	long r = 0;

	r += bpf_core_field_exists(t->pid);
	r += bpf_core_field_size(t->real_parent);
	r += bpf_core_field_offset(t->pid);
	r += bpf_core_type_id_local(struct task_struct___mine);
	r += bpf_core_type_id_kernel(struct task_struct___mine);
	r += bpf_core_type_exists(struct task_struct___mine);
	r += bpf_core_type_exists(struct no_such_type_in_kernel___x);
	r += bpf_core_type_size(struct task_struct___mine);
	r += bpf_core_type_matches(struct task_struct___mine);
	r += bpf_core_type_matches(struct task_struct___badmatch);
	r += bpf_core_enum_value_exists(enum bpf_prog_type___mine, BPF_PROG_TYPE_XDP___mine);
	r += bpf_core_enum_value_exists(enum bpf_prog_type___mine, BPF_PROG_TYPE_NOPE___mine);
	r += bpf_core_enum_value(enum bpf_prog_type___mine, BPF_PROG_TYPE_XDP___mine);
	return r;
}

/* ------------------------------------------------ against synthetic target BTF */
struct bits {
	unsigned int a:3;
	int b:5;
	unsigned long long c:40;
	int e;
	unsigned short d;
	int arr[4];
} __attribute__((preserve_access_index));

/* raw_tp test runs pass the context (up to 96 bytes) by pointer; read it directly
 * with the probed macro, or copy it to the stack and use plain loads there. */
SEC("raw_tp/bits_a")
int bits_a(void *ctx)
{
	struct bits *s = ctx;

	return BPF_CORE_READ_BITFIELD_PROBED(s, a);
}

SEC("raw_tp/bits_b")
int bits_b(void *ctx)
{
	char buf[64];
	struct bits *s = (void *)buf;

	bpf_probe_read_kernel(buf, sizeof(buf), ctx);
	return BPF_CORE_READ_BITFIELD(s, b);
}

SEC("raw_tp/bits_c")
int bits_c(void *ctx)
{
	struct bits *s = ctx;

	return BPF_CORE_READ_BITFIELD_PROBED(s, c) >> 8;
}

SEC("raw_tp/bits_d")
int bits_d(void *ctx)
{
	char buf[64];
	struct bits *s = (void *)buf;

	bpf_probe_read_kernel(buf, sizeof(buf), ctx);
	return s->d;
}

SEC("raw_tp/bits_e")
int bits_e(void *ctx)
{
	char buf[64];
	struct bits *s = (void *)buf;

	bpf_probe_read_kernel(buf, sizeof(buf), ctx);
	return s->e;
}

SEC("raw_tp/bits_arr")
int bits_arr(void *ctx)
{
	char buf[64];
	struct bits *s = (void *)buf;

	bpf_probe_read_kernel(buf, sizeof(buf), ctx);
	return s->arr[2];
}

struct amb___local {
	int f;
	int g;
} __attribute__((preserve_access_index));

SEC("raw_tp/amb")
int amb(void *ctx)
{
	struct amb___local *s = ctx;

	return bpf_core_field_offset(s->g);
}

struct flex___local {
	int n;
	int data[];
} __attribute__((preserve_access_index));

SEC("raw_tp/flex")
int flex(void *ctx)
{
	struct flex___local *s = ctx;

	return bpf_core_field_offset(s->data[5]);
}

enum color___local {
	RED___local = 0,
	GREEN___local = 1,
	BLUE = 2,
};

SEC("raw_tp/enums")
int enums(void *ctx)
{
	long r = 0;

	r += bpf_core_enum_value_exists(enum color___local, GREEN___local);
	r += bpf_core_enum_value_exists(enum color___local, BLUE);
	r += bpf_core_enum_value(enum color___local, GREEN___local);
	r += bpf_core_enum_value(enum color___local, BLUE);
	return r;
}

struct tm___local {
	int x;
	unsigned long y;
	struct tm___local *next;
} __attribute__((preserve_access_index));

SEC("raw_tp/types")
int types(void *ctx)
{
	long r = 0;

	r += bpf_core_type_exists(struct tm___local);
	r += bpf_core_type_size(struct tm___local);
	r += bpf_core_type_matches(struct tm___local);
	r += bpf_core_type_id_kernel(struct tm___local);
	r += bpf_core_type_id_local(struct tm___local);
	return r;
}
