"""Attaching to tracing, user-space, perf and cgroup hooks, against the running kernel.

Each kernel test attaches, triggers the hook, reads the effect from a map, closes, and
checks that no bpf link of its programs is left (and no tracefs probe event).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpfkit import asm
from bpfkit import syscall as sc
from bpfkit._consts import AttachType, Cmd, LinkType, MapType, ProgramType
from bpfkit.attach import cgroup as cg
from bpfkit.attach import features as ft
from bpfkit.attach import perf, tracing, uprobe, usdt
from bpfkit.errors import AttachError, MissingFeature, ParseError, PermissionDenied
from bpfkit.link import CallbackLink, Link
from bpfkit.maps import Map
from bpfkit.program import Program

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="needs root to load BPF programs")
A = asm
R0, R1, R2, R3, R4, R6, R7, R8, R10 = 0, 1, 2, 3, 4, 6, 7, 8, 10
GETPID_NR = 39  # x86_64
PY311 = "/usr/bin/python3.11"


# --------------------------------------------------------------------------- helpers


def link_ids_of(prog_ids: set[int]) -> list[int]:
    """Ids of bpf links (system-wide) whose program is one of ``prog_ids``."""
    out = []
    lid = 0
    while True:
        nxt = sc.get_next_id(Cmd.LINK_GET_NEXT_ID, lid)
        if nxt is None:
            return out
        lid = nxt
        try:
            fd = sc.get_fd_by_id(Cmd.LINK_GET_FD_BY_ID, lid)
        except Exception:
            continue
        try:
            if sc.obj_info(fd, sc.LinkInfo()).prog_id in prog_ids:
                out.append(lid)
        finally:
            os.close(fd)


def our_probe_events() -> list[str]:
    out = []
    for f in ("uprobe_events", "kprobe_events"):
        with contextlib.suppress(OSError, AttachError):
            with open(perf.tracefs_file(f)) as fh:
                out += [ln for ln in fh if f"bpfkit_{os.getpid()}_" in ln]
    return out


@contextlib.contextmanager
def leak_check(*progs: Program) -> Iterator[None]:
    """After the body closed its links: none of ``progs``' links and no probe events left."""
    yield
    ids = {p.id for p in progs}
    assert link_ids_of(ids) == [], "a bpf link was left behind"
    assert our_probe_events() == [], "a tracefs probe event was left behind"


def counter_map(n: int = 4) -> Map:
    return Map.create(MapType.ARRAY, 4, 8, n, name="cnt")


def read_u64(m: Map, i: int) -> int:
    return int.from_bytes(m[struct.pack("<I", i)], "little")


def bump(map_fd: int, key_reg_setup: list | None = None, *, slot: int = 0,
         add_reg: int | None = None) -> list:
    """array[slot] += 1 (or += add_reg); key may be computed into R8 by key_reg_setup."""
    body: list = []
    if key_reg_setup is None:
        body.append(A.st_mem(A.BPF_W, R10, -4, slot))
    else:
        body += key_reg_setup + [A.stx_mem(A.BPF_W, R10, R8, -4)]
    if add_reg is not None:
        body.append(A.stx_mem(A.BPF_DW, R10, add_reg, -16))
    body += [A.mov64_reg(R2, R10), A.alu64_imm(A.BPF_ADD, R2, -4), A.ld_map_fd(R1, map_fd),
             A.call(1), A.jmp_imm(A.BPF_JEQ, R0, 0, "out")]
    if add_reg is not None:
        body.append(A.ldx_mem(A.BPF_DW, R1, R10, -16))
    else:
        body.append(A.mov64_imm(R1, 1))
    body.append(A.atomic_op(A.BPF_DW, A.BPF_ADD, R0, R1, 0))
    return body


def tgid_filter(tgid: int) -> list:
    return [A.call(14), A.alu64_imm(A.BPF_RSH, R0, 32), A.jmp_imm(A.BPF_JNE, R0, tgid, "out")]


def finish() -> list:
    return ["out", A.mov64_imm(R0, 0), A.exit()]


def load(ptype: int, body: list, **kw) -> Program:
    return Program.load(ptype, A.assemble(body), name=kw.pop("name", "t"), **kw)


def getpid_n(n: int) -> None:
    for _ in range(n):
        os.getpid()


# --------------------------------------------------------------------------- unit: attr bytes


def test_perf_event_attr_layout_matches_libbpf() -> None:
    # libbpf perf_event_open_tracepoint(): type=TRACEPOINT, size=sizeof(attr), config=id
    a = perf.perf_event_attr(perf.PERF_TYPE_TRACEPOINT, 1234)
    raw = bytes(a)
    assert len(raw) == 136
    assert struct.unpack_from("<IIQ", raw, 0) == (2, 136, 1234)
    assert raw[16:] == b"\0" * 120
    # uprobe PMU: config bit 0 = retprobe, config[63:32] ref_ctr, config1 path, config2 offset
    u = uprobe.uprobe_perf_attr(8, 0xdeadbeef, 0x1130, retprobe=True, retbit=0,
                                ref_ctr_offset=0x683276)
    raw = bytes(u)
    assert struct.unpack_from("<IIQ", raw, 0) == (8, 136, (0x683276 << 32) | 1)
    assert struct.unpack_from("<QQ", raw, 56) == (0xdeadbeef, 0x1130)
    # sampling: freq bit (1 << 10) in the flags word at offset 40, frequency in the period slot
    s = perf.perf_event_attr(perf.PERF_TYPE_SOFTWARE, perf.PERF_COUNT_SW_CPU_CLOCK,
                             sample_freq=99)
    raw = bytes(s)
    assert struct.unpack_from("<Q", raw, 16)[0] == 99
    assert struct.unpack_from("<Q", raw, 40)[0] == 1 << 10
    with pytest.raises(ValueError):
        perf.perf_event_attr(1, 0, sample_period=1, sample_freq=1)


def test_link_create_extra_bytes() -> None:
    assert tracing.perf_link_extra(0x1122334455667788) == bytes.fromhex("8877665544332211")
    assert tracing.perf_link_extra(-1) == b"\xff" * 8
    # tracing: u32 target_btf_id, 4 bytes padding, u64 cookie
    assert tracing.tracing_link_extra(7, 9) == struct.pack("<I4xQ", 7, 9)
    # kprobe_multi: flags, cnt, syms, addrs, cookies
    assert tracing.kprobe_multi_extra(1, 3, 0x10, 0, 0x20) == struct.pack("<IIQQQ", 1, 3, 0x10,
                                                                         0, 0x20)
    # uprobe_multi: path, offsets, ref_ctr_offsets, cookies, cnt, flags, pid
    raw = uprobe.uprobe_multi_extra(1, 2, 3, 4, 5, 1, 77)
    assert len(raw) == 44 and struct.unpack("<QQQQIII", raw) == (1, 2, 3, 4, 5, 1, 77)
    # union bpf_iter_link_info is 16 bytes whatever the iterator
    assert tracing.iter_task_info(tid=5) == struct.pack("<III4x", 5, 0, 0)
    assert len(tracing.iter_map_info(3)) == len(tracing.iter_cgroup_info(1, 2, 3)) == 16


def test_cpu_list_and_format_bits() -> None:
    from bpfkit.host.tracefs import _parse_format_bit
    assert perf.parse_cpu_list("0-3,5,7-8\n") == [0, 1, 2, 3, 5, 7, 8]
    assert perf.parse_cpu_list("0") == [0]
    with pytest.raises(ParseError, match="malformed CPU list"):
        perf.parse_cpu_list("a-b")
    with pytest.raises(ParseError, match="not a range of CPU numbers"):
        perf.parse_cpu_list("0-99999999999")  # a range, not a 100-billion-entry list
    assert _parse_format_bit("config:0") == 0
    assert _parse_format_bit("config:32-63") == 32
    assert _parse_format_bit("bogus") is None
    assert perf.online_cpus() == perf.parse_cpu_list(open("/sys/devices/system/cpu/online").read())


def test_kernel_pattern_expansion() -> None:
    pool = ["tcp_sendmsg", "tcp_recvmsg", "udp_sendmsg", "vfs_read"]
    got = tracing.expand_kernel_patterns(["tcp_*", "vfs_read", "tcp_sendmsg"], lambda: pool)
    assert got == ["tcp_sendmsg", "tcp_recvmsg", "vfs_read"]


# --------------------------------------------------------------------------- unit: USDT / ld.so


def test_usdt_arg_spec_parsing() -> None:
    a = usdt.parse_arg_spec("-4@%edi")
    assert (a.size, a.signed, a.kind, a.reg_off, a.bitshift) == (4, True, usdt.ARG_REG, 112, 32)
    b = usdt.parse_arg_spec("8@-8(%rbp)")
    assert (b.kind, b.value, b.reg_off, b.signed) == (usdt.ARG_REG_DEREF, -8, 32, False)
    c = usdt.parse_arg_spec("2@(%rax)")
    assert (c.kind, c.value, c.reg_off, c.bitshift) == (usdt.ARG_REG_DEREF, 0, 80, 48)
    d = usdt.parse_arg_spec("-4@$-9")
    assert (d.kind, d.value) == (usdt.ARG_CONST, -9)
    assert usdt.parse_arg_spec("1@%r11b").reg_off == 48
    assert len(usdt.parse_usdt_args("-4@%edi 8@-8(%rbp) 8@%rax")) == 3
    for bad in ("", "4", "3@%rax", "8@%xmm0", "8@0x10(%rax,%rbx,2)", "8@junk", "x@%rax",
                " ".join(["8@%rax"] * 13)):
        with pytest.raises(ParseError):
            usdt.parse_usdt_args(bad) if " " in bad else usdt.parse_arg_spec(bad)


@given(st.text(max_size=40))
@settings(max_examples=300, deadline=None)
def test_usdt_arg_parser_never_crashes(s: str) -> None:
    try:
        usdt.parse_usdt_args(s)
    except ParseError:
        pass


def test_usdt_spec_encoding_layout() -> None:
    # struct __bpf_usdt_arg_spec {u64 val_off; enum arg_type; short reg_off; bool arg_signed;
    # char arg_bitshift;} = 16 bytes; spec = 12 args, u64 usdt_cookie, short arg_cnt -> 208
    args = usdt.parse_usdt_args("-4@%edi 8@-8(%rbp)")
    raw = usdt.encode_spec(args, cookie=0xabc)
    assert len(raw) == usdt.SPEC_SIZE == 208
    assert struct.unpack_from("<QIh?b", raw, 0) == (0, usdt.ARG_REG, 112, True, 32)
    assert struct.unpack_from("<QIh?b", raw, 16) == ((-8) & (2**64 - 1), usdt.ARG_REG_DEREF,
                                                     32, False, 0)
    assert struct.unpack_from("<Qh", raw, 192) == (0xabc, 2)


def test_usdt_notes_of_python() -> None:
    if not os.path.exists(PY311):
        pytest.skip(f"{PY311} is not installed")
    from bpfkit.elf import ElfFile
    with ElfFile.open(PY311) as elf:
        notes = {(n.provider, n.name): n for n in usdt.parse_usdt_notes(elf)}
    fe = notes[("python", "function__entry")]
    assert fe.semaphore and len(fe.args) == 3
    # same answer as readelf -n
    out = subprocess.run(["readelf", "-n", PY311], capture_output=True, text=True).stdout
    assert f"Location: 0x{fe.pc:016x}" in out and f"Semaphore: 0x{fe.semaphore:016x}" in out


def test_ld_so_cache() -> None:
    with open("/etc/ld.so.cache", "rb") as f:
        data = f.read()
    entries = uprobe.parse_ld_so_cache(data)
    assert any(s == "libc.so.6" for s, _, _ in entries)
    for n in ("c", "libc", "libc.so", "libc.so.6"):
        assert os.path.basename(uprobe.resolve_binary(n)) == "libc.so.6"
    assert uprobe.resolve_binary("c", pid=os.getpid()).endswith("libc.so.6")
    for bad in (b"", b"garbage", data[:30], data[:60] + b"\xff" * 4):
        with pytest.raises(ParseError):
            uprobe.parse_ld_so_cache(bad)
    with pytest.raises(AttachError):
        uprobe.resolve_binary("no_such_library_bpfkit")


@given(st.binary(max_size=200))
@settings(max_examples=200, deadline=None)
def test_ld_so_cache_fuzz(blob: bytes) -> None:
    for data in (blob, b"glibc-ld.so.cache1.1" + blob):
        try:
            uprobe.parse_ld_so_cache(data)
        except ParseError:
            pass


# --------------------------------------------------------------------------- tracepoints


@needs_root
@pytest.mark.parametrize("use_link", [True, False], ids=["bpf_link", "ioctl"])
def test_tracepoint_getpid_exact(use_link: bool) -> None:
    m = counter_map()
    cookie = 0x5EED if use_link else 0
    body = [A.mov64_reg(R6, R1)] + tgid_filter(os.getpid())
    if use_link:  # also sum the bpf cookie into slot 1
        body += [A.mov64_reg(R1, R6), A.call(174), A.mov64_reg(R7, R0)]
        body += bump(m.fd, slot=1, add_reg=R7)
    body += bump(m.fd, slot=0)
    prog = load(ProgramType.TRACEPOINT, body + finish())
    with prog, m, leak_check(prog):
        link = tracing.attach_tracepoint(prog, "syscalls", "sys_enter_getpid", cookie,
                                         use_link=use_link)
        assert link in prog.links
        if use_link:
            assert isinstance(link, tracing.PerfLink)
            assert link.info().type == LinkType.PERF_EVENT
        else:
            assert isinstance(link, tracing.PerfIoctlLink)
            assert link_ids_of({prog.id}) == []
        getpid_n(37)
        assert read_u64(m, 0) == 37
        if use_link:
            assert read_u64(m, 1) == 37 * cookie
        link.close()
        prog.links.remove(link)
        getpid_n(5)
        assert read_u64(m, 0) == 37  # detached


@needs_root
def test_tracepoint_errors() -> None:
    prog = load(ProgramType.TRACEPOINT, finish())
    with prog:
        with pytest.raises(Exception) as ei:
            tracing.attach_tracepoint(prog, "syscalls", "sys_enter_no_such_call")
        assert "sys_enter_no_such_call" in str(ei.value)
        with pytest.raises(AttachError):
            tracing.attach_tracepoint(prog, "../x", "y")
        assert prog.links == []


@needs_root
def test_raw_tracepoint_sys_enter() -> None:
    m = counter_map()
    body = [A.mov64_reg(R6, R1)] + tgid_filter(os.getpid()) + [
        A.ldx_mem(A.BPF_DW, R2, R6, 8), A.jmp_imm(A.BPF_JNE, R2, GETPID_NR, "out")] + \
        bump(m.fd) + finish()
    prog = load(ProgramType.RAW_TRACEPOINT, body)
    with prog, m, leak_check(prog):
        link = tracing.attach_raw_tracepoint(prog, "sys_enter")
        assert link.info().type == LinkType.RAW_TRACEPOINT
        assert link.info().target.get("tp_name") == "sys_enter"
        getpid_n(23)
        assert read_u64(m, 0) == 23
        link.close()


def _btf_id(name: str, kind: int) -> int:
    from bpfkit.btf import Spec
    ids = Spec.kernel().ids_by_name(name, kind)
    assert ids, name
    return ids[0]


@needs_root
def test_tp_btf_sys_enter() -> None:
    f = ft.has_attach_type(ProgramType.TRACING, AttachType.TRACE_RAW_TP)
    if not f:
        pytest.skip(f.reason)
    m = counter_map()
    body = [A.mov64_reg(R6, R1)] + tgid_filter(os.getpid()) + [
        A.ldx_mem(A.BPF_DW, R2, R6, 8), A.jmp_imm(A.BPF_JNE, R2, GETPID_NR, "out")] + \
        bump(m.fd) + finish()
    prog = load(ProgramType.TRACING, body, expected_attach_type=AttachType.TRACE_RAW_TP,
                attach_btf_id=_btf_id("btf_trace_sys_enter", 8))
    with prog, m, leak_check(prog):
        link = tracing.attach_raw_tracepoint(prog)  # BTF programs know their target
        info = link.info()
        # the kernel reports tp_btf links as raw tracepoint links
        assert info.type == LinkType.RAW_TRACEPOINT and info.target["tp_name"] == "sys_enter"
        getpid_n(19)
        assert read_u64(m, 0) == 19
        link.close()


def _iter_task_prog() -> Program:
    """bpf_seq_write(meta->seq, &meta->seq_num, 8) for each task."""
    body = [
        A.ldx_mem(A.BPF_DW, R6, R1, 0),  # meta
        A.ldx_mem(A.BPF_DW, R7, R1, 8),  # task
        A.jmp_imm(A.BPF_JEQ, R7, 0, "out"),
        A.ldx_mem(A.BPF_DW, R2, R6, 16),  # seq_num
        A.stx_mem(A.BPF_DW, R10, R2, -8),
        A.ldx_mem(A.BPF_DW, R1, R6, 0),  # seq
        A.mov64_reg(R2, R10), A.alu64_imm(A.BPF_ADD, R2, -8), A.mov64_imm(R3, 8),
        A.call(127),
    ] + finish()
    return load(ProgramType.TRACING, body, name="it", expected_attach_type=AttachType.TRACE_ITER,
                attach_btf_id=_btf_id("bpf_iter_task", 12))


def _seq(data: bytes) -> list[int]:
    assert len(data) % 8 == 0
    return [v for (v,) in struct.iter_unpack("<Q", data)]


@needs_root
def test_iter_task_read_and_pin() -> None:
    f = ft.has_attach_type(ProgramType.TRACING, AttachType.TRACE_ITER)
    if not f:
        pytest.skip(f.reason)
    prog = _iter_task_prog()
    pin = f"/sys/fs/bpf/bpfkit_test_iter_{os.getpid()}"
    with prog, leak_check(prog):
        link = tracing.attach_iter(prog)
        assert isinstance(link, tracing.IterLink) and link.info().type == LinkType.ITER
        vals = _seq(link.read_all())
        ntasks = sum(len(os.listdir(f"/proc/{p}/task")) for p in os.listdir("/proc")
                     if p.isdigit() and os.path.exists(f"/proc/{p}/task"))
        assert vals == list(range(len(vals)))
        assert abs(len(vals) - ntasks) < 50
        with link.open() as fh:  # a second pass starts again
            assert _seq(fh.read())[:1] == [0]
        link.pin(pin)
        try:
            out = subprocess.run(["cat", pin], capture_output=True, check=True).stdout
            assert _seq(out)[:3] == [0, 1, 2]
        finally:
            os.unlink(pin)
        one = tracing.attach_iter(prog, tid=os.getpid())
        assert _seq(one.read_all()) == [0]  # only our main thread
        one.close()
        link.close()
    assert not os.path.exists(pin)


# --------------------------------------------------------------------------- uprobes

C_SRC = r"""
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
__attribute__((noinline)) int target_fn(int x) { asm volatile(""); return x * 2; }
__attribute__((noinline)) int other_fn(int x) { asm volatile(""); return x + 1; }
int main(int argc, char **argv) {
    int n = atoi(argv[1]), m = argc > 2 ? atoi(argv[2]) : 0, s = 0;
    char c;
    if (read(0, &c, 1) < 0) return 2;
    for (int i = 0; i < n; i++) s += target_fn(i);
    for (int i = 0; i < m; i++) s += other_fn(i);
    printf("%d\n", s);
    return 0;
}
"""


@pytest.fixture(scope="module")
def tiny_binary() -> Iterator[str]:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    d = tempfile.mkdtemp(prefix="bpfkit_uprobe_")
    src = os.path.join(d, "t.c")
    with open(src, "w") as f:
        f.write(C_SRC)
    exe = os.path.join(d, "tiny")
    subprocess.run(["gcc", "-O1", "-o", exe, src], check=True)
    yield exe
    shutil.rmtree(d)


def _spawn_waiting(argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def _release(p: subprocess.Popen, data: bytes = b"x") -> bytes:
    out, err = p.communicate(data, timeout=60)
    assert p.returncode == 0, err
    return out


def _reap(p: subprocess.Popen) -> None:
    """Kill the child if it still runs and close its pipes."""
    if p.poll() is None:
        p.kill()
    p.communicate()


@needs_root
@pytest.mark.parametrize("legacy", [False, True], ids=["pmu", "uprobe_events"])
def test_uprobe_uretprobe_exact(tiny_binary: str, legacy: bool) -> None:
    m = counter_map()
    entry = load(ProgramType.KPROBE, [A.mov64_reg(R6, R1)] + bump(m.fd, slot=0) + finish())
    # uretprobe: count, and sum the return values (pt_regs->ax at offset 80)
    ret = load(ProgramType.KPROBE, [A.mov64_reg(R6, R1), A.ldx_mem(A.BPF_DW, R7, R6, 80)]
               + bump(m.fd, slot=2, add_reg=R7) + _bump_plain(m.fd, 1) + finish())
    n = 41
    with entry, ret, m, leak_check(entry, ret):
        child = _spawn_waiting([tiny_binary, str(n)])
        try:
            kw = {"use_pmu": False} if legacy else {}
            l1 = uprobe.attach_uprobe(entry, tiny_binary, "target_fn", pid=child.pid, **kw)
            l2 = uprobe.attach_uprobe(ret, tiny_binary, "target_fn", retprobe=True,
                                      pid=child.pid, **kw)
            if legacy:
                assert l1.event is not None and our_probe_events()
            out = _release(child)
        finally:
            _reap(child)
        assert read_u64(m, 0) == n
        assert read_u64(m, 1) == n
        assert read_u64(m, 2) == int(out) == sum(2 * i for i in range(n))
        # another process running the same binary is not counted (pid filter)
        other = _spawn_waiting([tiny_binary, "3"])
        _release(other)
        assert read_u64(m, 0) == n
        l1.close()
        l2.close()


def _bump_plain(map_fd: int, slot: int) -> list:
    return [A.st_mem(A.BPF_W, R10, -4, slot), A.mov64_reg(R2, R10),
            A.alu64_imm(A.BPF_ADD, R2, -4), A.ld_map_fd(R1, map_fd), A.call(1),
            A.jmp_imm(A.BPF_JEQ, R0, 0, "out"), A.mov64_imm(R1, 1),
            A.atomic_op(A.BPF_DW, A.BPF_ADD, R0, R1, 0)]


@needs_root
def test_uprobe_libc_getpid_by_library_name() -> None:
    m = counter_map()
    prog = load(ProgramType.KPROBE, bump(m.fd) + finish())
    with prog, m, leak_check(prog):
        link = uprobe.attach_uprobe(prog, "c", "getpid", pid=os.getpid())
        assert "libc.so.6" in link.hook
        getpid_n(29)
        # a child calling getpid is not us
        subprocess.run([sys.executable, "-c", "import os; [os.getpid() for _ in range(50)]"],
                       check=True)
        assert read_u64(m, 0) == 29
        link.close()


@needs_root
def test_uprobe_multi_with_cookies(tiny_binary: str) -> None:
    f = ft.has_uprobe_multi()
    if not f:
        pytest.skip(f"uprobe.multi: {f.reason}")
    m = counter_map(8)
    # array[cookie] += 1
    body = [A.mov64_reg(R6, R1), A.mov64_reg(R1, R6), A.call(174), A.mov64_reg(R8, R0)]
    body += bump(m.fd, key_reg_setup=[]) + finish()
    prog = load(ProgramType.KPROBE, body, expected_attach_type=AttachType.TRACE_UPROBE_MULTI)
    with prog, m, leak_check(prog):
        child = _spawn_waiting([tiny_binary, "7", "11"])
        try:
            link = uprobe.attach_uprobe_multi(prog, tiny_binary, ["target_fn", "other_fn"],
                                              pid=child.pid, cookies=[3, 5])
            assert link.info().type == LinkType.UPROBE_MULTI
            _release(child)
        finally:
            _reap(child)
        assert (read_u64(m, 3), read_u64(m, 5)) == (7, 11)
        link.close()


# --------------------------------------------------------------------------- USDT

# Python 3.11's function__entry never fires for Python-level calls (a 3.11 regression:
# calls are inlined in the eval loop), so the semaphore-gated probe we count exactly is
# gc__start, whose argument ("-4@112(%rsp)") is the generation, read through memory.
PY_CHILD = textwrap.dedent("""
    import sys, gc
    sys.stdin.read(1)
    for _ in range(int(sys.argv[1])):
        gc.collect(1)
""")
GEN = 1


def _usdt_asm_prog(specs: Map, m: Map) -> Program:
    """bpf_usdt_arg(ctx, 0) written by hand (register or register-relative memory argument),
    counting hits whose argument == GEN: checks the spec layout we write."""
    body = [
        A.mov64_reg(R6, R1),
        A.call(174),  # spec id = bpf cookie
        A.stx_mem(A.BPF_W, R10, R0, -4),
        A.mov64_reg(R2, R10), A.alu64_imm(A.BPF_ADD, R2, -4), A.ld_map_fd(R1, specs.fd),
        A.call(1), A.jmp_imm(A.BPF_JEQ, R0, 0, "out"), A.mov64_reg(R7, R0),
        A.ldx_mem(A.BPF_H, R2, R7, 200), A.jmp_imm(A.BPF_JNE, R2, 1, "out"),  # arg_cnt
        A.ldx_mem(A.BPF_H, R8, R7, 12),  # args[0].reg_off
        A.jmp_imm(A.BPF_JGT, R8, 160, "out"),
        A.mov64_reg(R3, R6), A.alu64_reg(A.BPF_ADD, R3, R8),
        A.mov64_reg(R1, R10), A.alu64_imm(A.BPF_ADD, R1, -16), A.mov64_imm(R2, 8),
        A.call(113),  # probe_read_kernel(&val, 8, ctx + reg_off)
        A.jmp_imm(A.BPF_JNE, R0, 0, "out"),
        A.ldx_mem(A.BPF_W, R2, R7, 8),  # arg_type
        A.jmp_imm(A.BPF_JEQ, R2, usdt.ARG_REG, "have"),
        A.jmp_imm(A.BPF_JNE, R2, usdt.ARG_REG_DEREF, "out"),
        A.ldx_mem(A.BPF_DW, R3, R10, -16), A.ldx_mem(A.BPF_DW, R2, R7, 0),
        A.alu64_reg(A.BPF_ADD, R3, R2),  # reg + val_off
        A.mov64_reg(R1, R10), A.alu64_imm(A.BPF_ADD, R1, -16), A.mov64_imm(R2, 8),
        A.call(112),  # probe_read_user
        A.jmp_imm(A.BPF_JNE, R0, 0, "out"),
        "have",
        A.ldx_mem(A.BPF_DW, R2, R10, -16),
        A.ldx_mem(A.BPF_B, R3, R7, 15),  # bitshift
        A.alu64_reg(A.BPF_LSH, R2, R3), A.alu64_reg(A.BPF_ARSH, R2, R3),
        A.jmp_imm(A.BPF_JNE, R2, GEN, "out"),
    ] + _bump_plain(m.fd, 0) + finish()
    return load(ProgramType.KPROBE, body, name="usdt")


@needs_root
def test_usdt_python_gc_start_asm() -> None:
    if not os.path.exists(PY311):
        pytest.skip(f"{PY311} is not installed")
    specs = Map.create(MapType.ARRAY, 4, usdt.SPEC_SIZE, 16, name="specs")
    ips = Map.create(MapType.HASH, 8, 4, 16, name="ips")
    m = counter_map()
    prog = _usdt_asm_prog(specs, m)
    n = 17
    with prog, specs, ips, m, leak_check(prog):
        child = _spawn_waiting([PY311, "-c", PY_CHILD, str(n)])
        try:
            link = usdt.attach_usdt(prog, PY311, "python", "gc__start", specs_map=specs,
                                    ip_map=ips, pid=child.pid, cookie=99)
            assert isinstance(link, usdt.UsdtLink) and link.spec_ids
            raw = specs[struct.pack("<i", link.spec_ids[0])]
            assert struct.unpack_from("<Qh", raw, 192) == (99, 1)
            # the kernel raised the semaphore in the child (ref_ctr_offset)
            note = usdt.find_usdt(PY311, "python", "gc__start")[0]
            with open(f"/proc/{child.pid}/mem", "rb") as mem:
                mem.seek(note.semaphore)
                assert int.from_bytes(mem.read(2), "little") >= 1
            _release(child)
        finally:
            _reap(child)
        assert read_u64(m, 0) == n
        link.close()
        assert len(list(ips.keys())) == 0


BPF_USDT_C = r"""
#include <stdbool.h>
#include <linux/types.h>
#include <linux/bpf.h>
#include <asm/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/usdt.bpf.h>

__u64 hits = 0;
__u64 cookie_seen = 0;
const volatile int target_line = 0;

SEC("usdt")
int BPF_USDT(on_gc, int gen)
{
    if (gen == target_line)
        __sync_fetch_and_add(&hits, 1);
    cookie_seen = bpf_usdt_cookie(ctx);
    return 0;
}
char LICENSE[] SEC("license") = "GPL";
"""


@needs_root
def test_usdt_with_libbpf_usdt_bpf_h(tmp_path) -> None:
    """A program written with BPF_USDT()/bpf_usdt_arg() from libbpf's usdt.bpf.h."""
    if not os.path.exists(PY311):
        pytest.skip(f"{PY311} is not installed")
    clang = shutil.which("clang-19") or shutil.which("clang")
    if clang is None or not os.path.exists("/usr/include/bpf/usdt.bpf.h"):
        pytest.skip("clang or libbpf headers are not installed")
    from bpfkit import loader
    src = tmp_path / "u.bpf.c"
    src.write_text(BPF_USDT_C)
    obj = tmp_path / "u.bpf.o"
    subprocess.run([clang, "-O2", "-g", "-target", "bpf", "-D__TARGET_ARCH_x86",
                    "-I/usr/include/x86_64-linux-gnu", "-c", str(src), "-o", str(obj)],
                   check=True)
    n = 13
    # usdt.bpf.h's __weak __hidden helpers must be verified as static functions (as libbpf
    # marks them), or the verifier rejects bpf_usdt_arg's *res = 0.
    coll = loader.load(str(obj), constants={"target_line": GEN})
    with coll:
        prog = coll.programs["on_gc"]
        # as libbpf: SEC("usdt") is loaded for uprobe-multi links when the kernel has them,
        # and the attachment is then one such link over every location
        multi = bool(ft.has_uprobe_multi())
        assert prog.expected_attach_type == (AttachType.TRACE_UPROBE_MULTI if multi else 0)
        with leak_check(prog):
            child = _spawn_waiting([PY311, "-c", PY_CHILD, str(n)])
            try:
                link = usdt.attach_usdt(prog, PY311, "python", "gc__start",
                                        specs_map=coll.maps["__bpf_usdt_specs"],
                                        ip_map=coll.maps["__bpf_usdt_ip_to_spec_id"],
                                        pid=child.pid, cookie=1234)
                assert [lk.info().type for lk in link.links] == (
                    [LinkType.UPROBE_MULTI] if multi else [LinkType.PERF_EVENT] * len(link.links))
                _release(child)
            finally:
                _reap(child)
            bss = coll.maps[[k for k in coll.maps if k.endswith(".bss")][0]]
            hits, cookie = struct.unpack_from("<QQ", bss[struct.pack("<I", 0)])
            assert hits == n
            assert cookie == 1234
            link.close()


# --------------------------------------------------------------------------- perf events


@needs_root
def test_perf_event_cpu_clock_per_cpu() -> None:
    cpus = perf.online_cpus()
    m = counter_map(max(cpus) + 1)
    body = [A.call(8), A.mov64_reg(R8, R0)] + bump(m.fd, key_reg_setup=[]) + finish()
    prog = load(ProgramType.PERF_EVENT, body)
    with prog, m, leak_check(prog):
        links = cg.attach_perf_event_all_cpus(prog, sample_period=1_000_000)  # 1 ms
        assert len(links) == len(cpus)
        assert all(lk.info().type == LinkType.PERF_EVENT for lk in links)
        saved = os.sched_getaffinity(0)
        try:
            for c in cpus:  # keep every CPU busy for a while
                os.sched_setaffinity(0, {c})
                end = time.monotonic() + 0.15
                while time.monotonic() < end:
                    pass
        finally:
            os.sched_setaffinity(0, saved)
        counts = {c: read_u64(m, c) for c in cpus}
        assert all(v >= 20 for v in counts.values()), counts
        for lk in links:
            lk.close()
        # an explicitly described single event, forced through the ioctl path
        one = cg.attach_perf_event(prog, cpu=cpus[0], sample_period=1_000_000, use_link=False)
        assert isinstance(one, CallbackLink)
        one.close()


@needs_root
def test_hardware_event_error_is_explained() -> None:
    attr = perf.perf_event_attr(perf.PERF_TYPE_HARDWARE, 0, sample_period=100000)
    try:
        fd = perf.perf_event_open(attr, -1, 0)
    except Exception as e:
        if getattr(e, "errno", None) == errno.ENOENT:
            assert "cpu-clock" in str(e)
    else:
        os.close(fd)


# --------------------------------------------------------------------------- cgroups


@pytest.fixture
def cgroup_dir() -> Iterator[str]:
    root = cg.cgroup2_mount()
    path = os.path.join(root, f"bpfkit_test_{os.getpid()}_{time.monotonic_ns()}")
    os.mkdir(path)
    yield path
    for _ in range(50):
        try:
            os.rmdir(path)
            break
        except OSError:
            time.sleep(0.05)
    assert not os.path.exists(path)


def _run_in_cgroup(cgdir: str, code: str, *args: str) -> subprocess.CompletedProcess:
    """Run python code in a child moved into ``cgdir`` before it does anything."""
    p = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read(1)\n" + code,
                          *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    with open(os.path.join(cgdir, "cgroup.procs"), "w") as f:
        f.write(str(p.pid))
    out, err = p.communicate("x", timeout=60)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def _count_prog(ptype: int, at: int, m: Map, ret: int = 1) -> Program:
    return load(ptype, bump(m.fd) + ["out", A.mov64_imm(R0, ret), A.exit()],
                expected_attach_type=at)


@needs_root
def test_cgroup_skb_egress_counts_child_packets(cgroup_dir: str) -> None:
    m = counter_map()
    prog = _count_prog(ProgramType.CGROUP_SKB, AttachType.CGROUP_INET_EGRESS, m)
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    port = rx.getsockname()[1]
    with prog, m, rx, leak_check(prog):
        link = cg.attach_cgroup(prog, cgroup_dir)
        assert link.info().type == LinkType.CGROUP
        r = _run_in_cgroup(cgroup_dir, textwrap.dedent("""
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            for i in range(9):
                s.sendto(b"x", ("127.0.0.1", int(sys.argv[1])))
            """), str(port))
        assert r.returncode == 0, r.stderr
        assert read_u64(m, 0) == 9
        link.close()


@needs_root
def test_cgroup_sock_create_count_and_deny(cgroup_dir: str) -> None:
    m = counter_map()
    allow = _count_prog(ProgramType.CGROUP_SOCK, AttachType.CGROUP_INET_SOCK_CREATE, m)
    deny = _count_prog(ProgramType.CGROUP_SOCK, AttachType.CGROUP_INET_SOCK_CREATE, m, ret=0)
    code = textwrap.dedent("""
        import socket
        for i in range(5):
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()
        """)
    with allow, deny, m, leak_check(allow, deny):
        link = cg.attach_cgroup(allow, cgroup_dir)
        assert _run_in_cgroup(cgroup_dir, code).returncode == 0
        assert read_u64(m, 0) == 5
        link2 = cg.attach_cgroup(deny, cgroup_dir)
        r = _run_in_cgroup(cgroup_dir, code)
        assert r.returncode != 0 and "PermissionError" in r.stderr
        link2.close()
        link.close()
        assert _run_in_cgroup(cgroup_dir, code).returncode == 0


@needs_root
@pytest.mark.parametrize("use_link", [True, False], ids=["bpf_link", "prog_attach"])
def test_cgroup_connect4(cgroup_dir: str, use_link: bool) -> None:
    m = counter_map()
    prog = _count_prog(ProgramType.CGROUP_SOCK_ADDR, AttachType.CGROUP_INET4_CONNECT, m)
    code = textwrap.dedent("""
        import socket
        for i in range(6):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.connect(("127.0.0.1", 9))
            s.close()
        """)
    with prog, m, leak_check(prog):
        link = cg.attach_cgroup(prog, cgroup_dir, use_link=use_link)
        fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            ids, _, _ = sc.prog_query(fd, AttachType.CGROUP_INET4_CONNECT)
            assert ids == [prog.id]
            if not use_link:
                assert isinstance(link, CallbackLink) and link_ids_of({prog.id}) == []
            assert _run_in_cgroup(cgroup_dir, code).returncode == 0
            assert read_u64(m, 0) == 6
            link.close()
            ids, _, _ = sc.prog_query(fd, AttachType.CGROUP_INET4_CONNECT)
            assert ids == []
        finally:
            os.close(fd)


@needs_root
def test_cgroup_sysctl(cgroup_dir: str) -> None:
    m = counter_map()
    prog = _count_prog(ProgramType.CGROUP_SYSCTL, AttachType.CGROUP_SYSCTL, m)
    code = textwrap.dedent("""
        import os
        for i in range(4):
            fd = os.open("/proc/sys/kernel/ostype", os.O_RDONLY)
            os.read(fd, 64)
            os.close(fd)
        """)
    with prog, m, leak_check(prog):
        link = cg.attach_cgroup(prog, cgroup_dir)
        assert _run_in_cgroup(cgroup_dir, code).returncode == 0
        assert read_u64(m, 0) == 4
        link.close()


@needs_root
def test_cgroup_dev_count_and_deny(cgroup_dir: str) -> None:
    m = counter_map()
    allow = _count_prog(ProgramType.CGROUP_DEVICE, AttachType.CGROUP_DEVICE, m)
    deny = _count_prog(ProgramType.CGROUP_DEVICE, AttachType.CGROUP_DEVICE, m, ret=0)
    code = textwrap.dedent("""
        import os
        for i in range(3):
            os.close(os.open("/dev/null", os.O_RDONLY))
        """)
    with allow, deny, m, leak_check(allow, deny):
        link = cg.attach_cgroup(allow, cgroup_dir)
        assert _run_in_cgroup(cgroup_dir, code).returncode == 0
        assert read_u64(m, 0) >= 3
        link.close()
        link = cg.attach_cgroup(deny, cgroup_dir, use_link=False)
        r = _run_in_cgroup(cgroup_dir, code)
        assert r.returncode != 0 and "PermissionError" in r.stderr
        link.close()


@needs_root
def test_cgroup_sockops(cgroup_dir: str) -> None:
    m = counter_map()
    prog = _count_prog(ProgramType.SOCK_OPS, AttachType.CGROUP_SOCK_OPS, m)
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    code = textwrap.dedent("""
        import socket
        for i in range(3):
            socket.create_connection(("127.0.0.1", int(sys.argv[1]))).close()
        """)
    with prog, m, srv, leak_check(prog):
        link = cg.attach_cgroup(prog, cgroup_dir)
        assert _run_in_cgroup(cgroup_dir, code, str(srv.getsockname()[1])).returncode == 0
        assert read_u64(m, 0) >= 3
        link.close()


def test_cgroup_path_resolution() -> None:
    root = cg.cgroup2_mount()
    assert cg.cgroup_path("x/y") == os.path.join(root, "x/y")
    assert cg.cgroup_path(root) == root
    with pytest.raises(AttachError):
        cg.open_cgroup("bpfkit_no_such_cgroup")


# --------------------------------------------------------------------------- missing hooks


@needs_root
def test_kprobe_missing_feature_messages() -> None:
    if ft.has_kprobes():
        pytest.skip("this kernel has kprobes; the messages are for kernels without")
    prog = load(ProgramType.KPROBE, finish())
    with prog:
        with pytest.raises(MissingFeature) as ei:
            tracing.attach_kprobe(prog, "do_sys_openat2")
        msg = str(ei.value)
        assert "kprobes are not available: this kernel was built without CONFIG_KPROBES" in msg
        assert "tracepoint" in msg
        with pytest.raises(MissingFeature) as ei:
            tracing.attach_ksyscall(prog, "openat")
        assert "CONFIG_KPROBES" in str(ei.value)
        assert "syscalls/sys_enter_openat" in str(ei.value)
        with pytest.raises(MissingFeature) as ei:
            tracing.attach_kprobe_multi(prog, ["tcp_*"])
        assert "CONFIG_FPROBE" in str(ei.value) or "CONFIG_KPROBES" in str(ei.value)
        assert prog.links == []


@needs_root
def test_fentry_missing_feature_message() -> None:
    f = ft.has_attach_type(ProgramType.TRACING, AttachType.TRACE_FENTRY)
    if f:
        pytest.skip("this kernel allows fentry")
    with pytest.raises(MissingFeature) as ei:
        ft.require(f)
    assert "trace_fentry" in str(ei.value) and "EPERM" in str(ei.value)
    # and the load itself says what happened
    with pytest.raises(PermissionDenied):
        load(ProgramType.TRACING, finish(), expected_attach_type=AttachType.TRACE_FENTRY,
             attach_btf_id=_btf_id("do_unlinkat", 12))


def test_link_classes_are_links() -> None:
    assert issubclass(tracing.PerfLink, Link) and issubclass(tracing.IterLink, Link)
    assert issubclass(tracing.PerfIoctlLink, CallbackLink)
    assert ctypes.sizeof(perf.PerfEventAttr) == 136


@needs_root
def test_stale_probe_event_is_cleaned(tiny_binary: str) -> None:
    """A process that dies with a tracefs uprobe event leaves a record the registry undoes."""
    from bpfkit import cleanup
    off = uprobe.resolve_symbol_offset(tiny_binary, "target_fn")
    code = ("import os, sys\nfrom bpfkit.attach import perf\n"
            f"ev = perf.add_probe_event('uprobe_events', 'p', '{tiny_binary}:0x{off:x}', "
            "group='uprobes')\nprint(ev.name)\nos._exit(0)\n")
    name = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip()
    with open(perf.tracefs_file("uprobe_events")) as f:
        assert name in f.read()
    done = cleanup.cleanup_stale({perf.PROBE_EVENT_KIND})
    assert any(r.data.get("name") == name for r in done)
    with open(perf.tracefs_file("uprobe_events")) as f:
        assert name not in f.read()
