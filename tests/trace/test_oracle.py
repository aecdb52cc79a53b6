"""`bpfkit trace` against bpftrace 0.17 on the same deterministic workload.

Each case runs the workload (compiled with gcc) under `-c`, once with bpftrace and once
with `bpfkit trace` (clang removed from PATH), and compares stdout after sorting.
Filters use the workload's comm, which bpftrace's own child does not have before exec.
"""

from __future__ import annotations

import pytest

from .conftest import COMM, normalize, run_bpfkit, run_bpftrace

pytestmark = pytest.mark.requires_root

F = f'/comm == "{COMM}"/'
ROUNDS = 8

# (id, program); {wl} is the workload's path.
ONE_LINERS = [
    ("count_getppid", f"tracepoint:syscalls:sys_enter_getppid {F} {{ @ = count(); }}"),
    ("count_by_comm", f"tracepoint:syscalls:sys_enter_getppid {F} {{ @[comm] = count(); }}"),
    ("opens_by_file", f"tracepoint:syscalls:sys_enter_openat {F} "
                      "{ @[str(args->filename)] = count(); }"),
    ("open_printf", f"tracepoint:syscalls:sys_enter_openat {F} "
                    '{ printf("%s %s %d\\n", comm, str(args->filename), args->flags); }'),
    ("read_hist", f"tracepoint:syscalls:sys_exit_read {F} {{ @ = hist(args->ret); }}"),
    ("read_lhist", f"tracepoint:syscalls:sys_exit_read {F} "
                   "{ @ = lhist(args->ret, 0, 1000, 100); }"),
    ("read_sum_stats", f"tracepoint:syscalls:sys_exit_read {F} "
                       "{ @s = sum(args->ret); @t = stats(args->ret); @a = avg(args->ret); "
                       "@mn = min(args->ret); @mx = max(args->ret); }"),
    ("openat_errors", f"tracepoint:syscalls:sys_exit_openat {F} "
                      "{ @[args->ret < 0 ? -args->ret : 0] = count(); }"),
    ("write_size_pred", "tracepoint:syscalls:sys_enter_write "
                        f'/comm == "{COMM}" && args->count > 20/ {{ @[args->count] = count(); }}'),
    ("tuple_keys", f"tracepoint:syscalls:sys_enter_read {F} "
                   "{ @[comm, args->count] = count(); }"),
    ("locals_if_else", f"tracepoint:syscalls:sys_enter_read {F} "
                       "{ $n = args->count; if ($n > 250) { @big = count(); } "
                       "else if ($n > 150) { @mid = count(); } else { @small = count(); } }"),
    ("arith_bitwise", f"tracepoint:syscalls:sys_enter_read {F} "
                      "{ @[(args->count * 3 + 1) / 2 % 7, args->count & 0xf0, "
                      "args->count | 1, args->count ^ 5, args->count << 2, "
                      "args->count >> 3] = count(); }"),
    ("logical_ops", f"tracepoint:syscalls:sys_enter_read {F} "
                    "{ @[args->count > 100 && args->count < 400, "
                    "args->count == 100 || args->count == 400, !(args->count > 200)] "
                    "= count(); }"),
    ("str_compare", "tracepoint:syscalls:sys_enter_openat "
                    f'/comm == "{COMM}" && str(args->filename) == "/etc/hostname"/ '
                    "{ @ = count(); }"),
    ("str_ne", "tracepoint:syscalls:sys_enter_openat "
               f'/comm == "{COMM}" && str(args->filename) != "/etc/hostname"/ '
               "{ @[str(args->filename)] = count(); }"),
    ("casts", f"tracepoint:syscalls:sys_exit_openat {F} "
              "{ @[(int8)args->ret, (uint8)args->ret, (int32)args->ret] = count(); }"),
    ("str_n", f"tracepoint:syscalls:sys_enter_openat {F} "
              "{ @[str(args->filename, 5)] = count(); }"),
    ("map_update_read", f"tracepoint:syscalls:sys_enter_read {F} "
                        "{ @last = args->count; @n++; @tot += args->count; }"),
    ("delete_key", f"tracepoint:syscalls:sys_enter_openat {F} "
                   "{ @[tid] = 1; } "
                   f"tracepoint:syscalls:sys_exit_openat {F} {{ delete(@[tid]); @done = count(); }}"),
    ("begin_end", 'BEGIN { printf("start\\n"); @x = 1; } END { printf("end %d\\n", @x); }'),
    ("end_print_clear", f"tracepoint:syscalls:sys_enter_getppid {F} {{ @c = count(); }} "
                        "END { print(@c); clear(@c); }"),
    ("ternary_str", f"tracepoint:syscalls:sys_enter_read {F} "
                    '{ printf("%s\\n", args->count > 200 ? "big" : "small"); }'),
    ("printf_formats", f"tracepoint:syscalls:sys_enter_read {F} "
                       '{ printf("%d %u %x %5d|%-5d|%05d %s\\n", args->count, args->count, '
                       'args->count, args->count, args->count, args->count, comm); }'),
    ("pid_cpid", f"tracepoint:syscalls:sys_enter_getppid {F} {{ @[pid == cpid] = count(); }}"),
    ("uid_gid", f"tracepoint:syscalls:sys_enter_getppid {F} {{ @[uid, gid] = count(); }}"),
    ("positional", f"tracepoint:syscalls:sys_enter_read {F} "
                   "{ @[args->count > $1] = count(); }", ["150"]),
    ("exit_in_probe", f"tracepoint:syscalls:sys_enter_getppid {F} "
                      '{ printf("once\\n"); exit(); }'),
    ("multi_probe_block", "tracepoint:syscalls:sys_enter_getppid,"
                          f"tracepoint:syscalls:sys_enter_close {F} {{ @[probe] = count(); }}"),
    ("wildcard_tp", f"tracepoint:syscalls:sys_enter_open* {F} {{ @[probe] = count(); }}"),
    ("uprobe_args", "uprobe:{wl}:bk_add { @[arg0, arg1] = count(); }"),
    ("uretprobe_hist", "uretprobe:{wl}:bk_square { @ = hist(retval); }"),
    ("uretprobe_str", "uretprobe:{wl}:bk_name { @[str(retval)] = count(); }"),
    ("uprobe_wildcard", "uprobe:{wl}:bk_* { @[probe] = count(); }"),
    ("uprobe_printf", 'uprobe:{wl}:bk_square { printf("sq %d\\n", arg0); }'),
    ("curtask_btf", f"tracepoint:syscalls:sys_enter_getppid {F} "
                    "{ @[curtask->real_parent->pid == curtask->parent->tgid, curtask->comm, "
                    "curtask->pid == tid] = count(); }"),
    ("kstack", f"tracepoint:syscalls:sys_enter_getppid {F} {{ @[kstack] = count(); }}"),
    ("kstack_limit", f"tracepoint:syscalls:sys_enter_getppid {F} {{ @[kstack(2)] = count(); }}"),
    ("ksym_kaddr", f"tracepoint:syscalls:sys_enter_getppid {F} "
                   '{ @[ksym(kaddr("vfs_read"))] = count(); }'),
]


@pytest.mark.parametrize("case", ONE_LINERS, ids=[c[0] for c in ONE_LINERS])
def test_one_liner(case: tuple, workload: object, noclang_path: str) -> None:
    name, prog = case[0], case[1]
    params = case[2] if len(case) > 2 else []
    prog = prog.replace("{wl}", str(workload))
    cmd = f"{workload} {ROUNDS}"
    want = run_bpftrace(["-c", cmd, "-e", prog, *params])
    assert want.returncode == 0, want.stderr
    got = run_bpfkit(["-c", cmd, "-e", prog, *params], noclang_path)
    assert got.returncode == 0, got.stderr
    assert normalize(got.stdout) == normalize(want.stdout), (
        f"{name}\n--- bpftrace\n{want.stdout}\n--- bpfkit trace\n{got.stdout}")
