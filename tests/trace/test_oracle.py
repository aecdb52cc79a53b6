"""`bpfkit trace` against bpftrace 0.17 on the same deterministic workload.

Each case runs the workload (compiled with gcc) under `-c`, once with bpftrace and once
with `bpfkit trace` (clang removed from PATH), and compares stdout after sorting.
Filters use the workload's comm, which bpftrace's own child does not have before exec.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import COMM, HERE, has_usdt, normalize, run_bpfkit, run_bpftrace

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
    ("curtask_nested", f"tracepoint:syscalls:sys_enter_getppid {F} "
                       "{ @[curtask->mm->mmap_base > 0, curtask->signal->rlim[7].rlim_cur] "
                       "= count(); @c[str(curtask->fs->pwd.dentry->d_name.name)] = count(); }"),
    ("kstack", f"tracepoint:syscalls:sys_enter_getppid {F} {{ @[kstack] = count(); }}"),
    ("kstack_limit", f"tracepoint:syscalls:sys_enter_getppid {F} {{ @[kstack(2)] = count(); }}"),
    ("ksym_kaddr", f"tracepoint:syscalls:sys_enter_getppid {F} "
                   '{ @[ksym(kaddr("vfs_read"))] = count(); }'),
    ("syscalls_by_id", f"tracepoint:raw_syscalls:sys_enter {F} {{ @[args->id] = count(); }}"),
    ("syscall_exit_ret", f"tracepoint:raw_syscalls:sys_exit {F} "
                         "{ @[args->ret < 0] = count(); }"),
    ("close_fds", f"tracepoint:syscalls:sys_enter_close {F} {{ @[args->fd > 2] = count(); }}"),
    ("write_count_hist", f"tracepoint:syscalls:sys_enter_write {F} {{ @ = hist(args->count); }}"),
    ("write_lhist_oob", f"tracepoint:syscalls:sys_enter_write {F} "
                        "{ @ = lhist(args->count, 10, 50, 10); }"),
    ("read_fd_by_size", f"tracepoint:syscalls:sys_enter_read {F} "
                        "{ @[args->fd > 0, args->count] = sum(args->count); }"),
    ("exit_ret_min_max", f"tracepoint:syscalls:sys_exit_openat {F} "
                         "{ @mn = min(args->ret); @mx = max(args->ret + 100); }"),
    ("avg_by_key", f"tracepoint:syscalls:sys_enter_read {F} "
                   "{ @[args->count > 200] = avg(args->count); }"),
    ("stats_by_key", f"tracepoint:syscalls:sys_enter_read {F} "
                     "{ @[comm] = stats(args->count); }"),
    ("printf_str_width", f"tracepoint:syscalls:sys_enter_openat {F} "
                         '{ printf("[%-20s] [%20s]\\n", str(args->filename), comm); }'),
    ("printf_hex_char", f"tracepoint:syscalls:sys_enter_read {F} "
                        '{ printf("%x %X %o %c %%\\n", args->count, args->count, '
                        "args->count, 65); }"),
    ("printf_long_mods", f"tracepoint:syscalls:sys_enter_read {F} "
                         '{ printf("%ld %lu %lld %llu %lx\\n", args->count, args->count, '
                         "args->count, args->count, args->count); }"),
    ("var_compound", f"tracepoint:syscalls:sys_enter_read {F} "
                     "{ $x = args->count; $x += 5; $x *= 2; $x -= 1; $x /= 3; $x %= 100; "
                     "$x <<= 1; $x >>= 1; $x &= 0xff; $x |= 1; $x ^= 2; @[$x] = count(); }"),
    ("map_compound", f"tracepoint:syscalls:sys_enter_read {F} "
                     "{ @a += args->count; @b -= 1; @c++; @d--; }"),
    ("nested_ternary", f"tracepoint:syscalls:sys_enter_read {F} "
                       "{ @[args->count < 200 ? 1 : args->count < 300 ? 2 : 3] = count(); }"),
    ("unary_ops", f"tracepoint:syscalls:sys_enter_read {F} "
                  "{ @[-args->count, ~args->count, !args->count] = count(); }"),
    ("comm_compare", "tracepoint:syscalls:sys_enter_getppid "
                     f'/comm != "{COMM}" && comm == "{COMM}"/ {{ @ = count(); }}'),
    ("str_var_key", f"tracepoint:syscalls:sys_enter_openat {F} "
                    "{ $f = str(args->filename); @[$f, comm] = count(); }"),
    ("str_map_value", f"tracepoint:syscalls:sys_enter_openat {F} "
                      "{ @last = str(args->filename); @who = comm; }"),
    ("tid_equals_pid", f"tracepoint:syscalls:sys_enter_getppid {F} {{ @[tid == pid] = count(); }}"),
    ("cgroup_nonzero", f"tracepoint:syscalls:sys_enter_getppid {F} "
                       "{ @[cgroup > 0] = count(); }"),
    ("cpu_in_range", f"tracepoint:syscalls:sys_enter_getppid {F} "
                     "{ @[cpu < 1024] = count(); }"),
    ("nsecs_elapsed", f"tracepoint:syscalls:sys_enter_getppid {F} "
                      "{ @[nsecs > elapsed] = count(); }"),
    ("unroll", f"tracepoint:syscalls:sys_enter_getppid {F} "
               "{ $i = 0; unroll(4) { $i++; } @[$i] = count(); }"),
    ("sched_exec_args", "tracepoint:sched:sched_process_exec "
                        f'{F} {{ printf("%s\\n", str(args->filename)); }}'),
    ("two_probes_one_map", f"tracepoint:syscalls:sys_enter_read {F} {{ @[1] = count(); }} "
                           f"tracepoint:syscalls:sys_enter_write {F} {{ @[2] = count(); }}"),
    ("uprobe_arg_filter", "uprobe:{wl}:bk_add /arg0 > 3/ { @[arg0] = count(); }"),
    ("uretprobe_sum", "uretprobe:{wl}:bk_add { @ = sum(retval); }"),
    ("usdt_args", "usdt:{wl}:bkwl:round { @[arg0, arg1] = count(); }"),
    ("usdt_str_arg", "usdt:{wl}:path { @[str(arg0)] = count(); }"),
    ("usdt_wildcard", "usdt:{wl}:bkwl:* { @[probe] = count(); }"),
    ("uprobe_comm_pid", "uprobe:{wl}:bk_square { @[comm, pid == cpid] = count(); }"),
]


@pytest.mark.parametrize("case", ONE_LINERS, ids=[c[0] for c in ONE_LINERS])
def test_one_liner(case: tuple, workload: object, noclang_path: str) -> None:
    name, prog = case[0], case[1]
    params = case[2] if len(case) > 2 else []
    if prog.startswith("usdt:") and not has_usdt(workload):
        pytest.skip("the workload has no USDT probes: <sys/sdt.h> (systemtap-sdt-dev) is missing")
    prog = prog.replace("{wl}", str(workload))
    cmd = f"{workload} {ROUNDS}"
    want = run_bpftrace(["-c", cmd, "-e", prog, *params])
    assert want.returncode == 0, want.stderr
    got = run_bpfkit(["-c", cmd, "-e", prog, *params], noclang_path)
    assert got.returncode == 0, got.stderr
    assert normalize(got.stdout) == normalize(want.stdout), (
        f"{name}\n--- bpftrace\n{want.stdout}\n--- bpfkit trace\n{got.stdout}")


SCRIPTS = sorted((HERE / "scripts").glob("*.bt"))
# Workload arguments per script (rounds, then a mode); tcpstates also gets $1.
SCRIPT_ARGS = {"tcpstates": (["3", "tcp", "41734"], ["41734"])}


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_script(script: Path, workload: object, noclang_path: str, tmp_path: Path) -> None:
    wl_args, params = SCRIPT_ARGS.get(script.stem, ([str(ROUNDS)], []))
    prog = tmp_path / script.name
    prog.write_text(script.read_text().replace("{wl}", str(workload))
                    .replace("bktrace_wl", COMM))
    cmd = " ".join([str(workload), *wl_args])
    want = run_bpftrace(["-c", cmd, str(prog), *params])
    assert want.returncode == 0, want.stderr
    got = run_bpfkit(["-c", cmd, str(prog), *params], noclang_path)
    assert got.returncode == 0, got.stderr
    assert normalize(got.stdout) == normalize(want.stdout), (
        f"{script.stem}\n--- bpftrace\n{want.stdout}\n--- bpfkit trace\n{got.stdout}")
