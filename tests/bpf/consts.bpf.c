// const volatile globals of every kind `--const NAME=VALUE` parses (tests/test_consts.py)
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

enum mode { MODE_OFF = 0, MODE_FAST = 3, MODE_SLOW = 7 };
struct pair { int a, b; };

const volatile __u32 targ_pid = 0;
const volatile __s8 small = 0;
const volatile __u16 port = 0;
const volatile __u64 big = 0;
const volatile _Bool verbose = 0;
const volatile char letter = 0;
const volatile char comm[8] = {};
const volatile enum mode mode = MODE_OFF;
const volatile struct pair pair = {};

__u64 seen = 0;

SEC("tp/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
    if (targ_pid && (bpf_get_current_pid_tgid() >> 32) != targ_pid)
        return 0;
    seen += small + port + big + verbose + letter + comm[0] + mode + pair.a;
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
