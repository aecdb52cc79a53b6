// Global data of every kind: .data, .bss, .rodata (const volatile and plain const),
// custom .data.* and .rodata.* sections, static variables in functions, arrays and
// structs, string literals (.rodata.str1.1), a hidden global, per-CPU-like arrays.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct cfg {
	int mode;
	char tag[8];
	__u64 mask;
};

int counter = 1;
__u64 bss_total;
static __u32 static_bss[4];
const volatile struct cfg config = { .mode = 2, .tag = "corpus", .mask = 0xff };
const volatile __u32 thresholds[3] = { 10, 20, 30 };
const __u64 plain_const = 42;
__u64 named_data SEC(".data.named") = 7;
__u32 named_array[8] SEC(".data.array");
const volatile int named_ro SEC(".rodata.named") = 9;
__hidden int hidden_global = 3;
char message[32] = "hello";

SEC("tp/syscalls/sys_enter_getpid")
int globals_all(void *ctx)
{
	static int calls;
	__u32 i = bss_total & 3;

	calls++;
	__sync_fetch_and_add(&counter, 1);
	bss_total += config.mode + plain_const + named_data + named_ro + hidden_global;
	if (config.mask & 1)
		static_bss[i] += thresholds[i % 3];
	named_array[i] = calls;
	bpf_printk("%s %d %s", message, calls, config.tag);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
