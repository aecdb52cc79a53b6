"""Programs built with the assembler, loaded, test-run and inspected in the real kernel."""

from __future__ import annotations

import os
import struct

import pytest

import bpfkit
from bpfkit import Map, MapType, Program, ProgramType, asm, introspect

pytestmark = pytest.mark.requires_root


def test_load_and_test_run_returns_value() -> None:
    with Program.load(ProgramType.SOCKET_FILTER, [asm.mov64_imm(asm.R0, 7), asm.exit()],
                      license="GPL", name="seven") as prog:
        res = prog.test_run(data=bytes(64))
        assert res.retval == 7
        assert res.duration_ns >= 0
        info = prog.info()
        assert info.name == "seven" and info.type == ProgramType.SOCKET_FILTER
        assert len(info.tag) == 16
        xl = asm.decode(prog.xlated())
        assert xl[0].imm == 7 and xl[-1].is_exit


def counter_prog(m: Map, ret: int = 0) -> list[asm.Instruction]:
    """key = 0; v = lookup(m, &key); if v: *v += 1; return ret."""
    return [
        asm.st_mem(asm.BPF_W, asm.R10, -4, 0),
        asm.mov64_reg(asm.R2, asm.R10),
        asm.alu64_imm(asm.BPF_ADD, asm.R2, -4),
        asm.ld_map_fd(asm.R1, m.fd),
        asm.call(bpfkit.HelperId.map_lookup_elem),
        asm.jmp_imm(asm.BPF_JEQ, asm.R0, 0, 2),
        asm.mov64_imm(asm.R1, 1),
        asm.atomic_op(asm.BPF_DW, asm.BPF_ADD, asm.R0, asm.R1, 0),
        asm.mov64_imm(asm.R0, ret),
        asm.exit(),
    ]


def test_program_updates_map_via_test_run() -> None:
    with Map.create(MapType.ARRAY, 4, 8, 1) as m, \
            Program.load(ProgramType.XDP, counter_prog(m, ret=2), name="cnt") as p:
        r = p.test_run(data=bytes(64), repeat=10)
        assert r.retval == 2  # XDP_PASS
        assert int.from_bytes(m[0], "little") == 10
        assert m.info().id in p.info().map_ids
        assert p.info().id in {i.id for i in introspect.programs()}


def test_raw_tp_context_test_run() -> None:
    # return ctx->args[0] (raw_tp context is an array of u64 args)
    insns = [asm.ldx_mem(asm.BPF_DW, asm.R0, asm.R1, 0), asm.exit()]
    with Program.load(ProgramType.RAW_TRACEPOINT, insns) as p:
        r = p.test_run(context=struct.pack("<QQ", 41, 0), cpu=0)
        assert r.retval == 41


def test_verifier_error_names_reason() -> None:
    bad = [asm.ldx_mem(asm.BPF_DW, asm.R0, asm.R2, 0), asm.exit()]  # r2 uninitialised
    with pytest.raises(bpfkit.VerifierError) as ei:
        Program.load(ProgramType.SOCKET_FILTER, bad, name="bad")
    err = ei.value
    assert "R2 !read_ok" in str(err)
    assert "'bad'" in str(err)
    assert "processed" in err.log or "R2" in err.log
    noexit = [asm.mov64_imm(asm.R0, 0)]
    with pytest.raises(bpfkit.VerifierError) as ei2:
        Program.load(ProgramType.SOCKET_FILTER, noexit)
    assert "jump out of range" in str(ei2.value) or "exit" in str(ei2.value)


def test_verifier_log_grows() -> None:
    # A long program that fails at the end produces a big log: the loader must grow its buffer.
    body = [asm.mov64_imm(asm.R0, i) for i in range(20000)]
    with pytest.raises(bpfkit.VerifierError) as ei:
        Program.load(ProgramType.SOCKET_FILTER, body + [asm.ldx_mem(asm.BPF_DW, asm.R0, asm.R3, 0),
                                                        asm.exit()],
                     log_level=2)
    assert "R3 !read_ok" in str(ei.value)


def test_gpl_only_helper_needs_gpl_license() -> None:
    insns = [asm.call(bpfkit.HelperId.ktime_get_ns), asm.mov64_imm(asm.R0, 0), asm.exit()]
    with Program.load(ProgramType.SOCKET_FILTER, insns, license="GPL"):
        pass
    # trace_printk is GPL-only
    pr = [asm.mov64_reg(asm.R1, asm.R10), asm.alu64_imm(asm.BPF_ADD, asm.R1, -8),
          asm.st_mem(asm.BPF_DW, asm.R10, -8, 0), asm.mov64_imm(asm.R2, 8),
          asm.call(bpfkit.HelperId.trace_printk), asm.mov64_imm(asm.R0, 0), asm.exit()]
    with pytest.raises(bpfkit.VerifierError) as ei:
        Program.load(ProgramType.KPROBE, pr, license="Proprietary")
    assert "GPL" in str(ei.value)


def test_pin_reopen_program() -> None:
    path = f"/sys/fs/bpf/bpfkit_prog_{os.getpid()}"
    with Program.load(ProgramType.SOCKET_FILTER, [asm.mov64_imm(asm.R0, 3), asm.exit()]) as p:
        p.pin(path)
        try:
            with Program.from_pin(path) as q:
                assert q.test_run(data=bytes(16)).retval == 3
                assert q.info().id == p.info().id
            with Program.from_id(p.info().id) as r:
                assert r.info().tag == p.info().tag
        finally:
            os.unlink(path)


def test_permission_error_hint_for_refused_type() -> None:
    # fentry with no attach target: the kernel rejects it; the error must be a bpfkit error
    with pytest.raises(bpfkit.KernelError) as ei:
        Program.load(ProgramType.TRACING, [asm.mov64_imm(asm.R0, 0), asm.exit()],
                     expected_attach_type=bpfkit.AttachType.TRACE_FENTRY, name="fe")
    assert "'fe'" in str(ei.value) or "fe" in str(ei.value)


def test_introspection_lists_btf_and_maps() -> None:
    assert any(b.name == "vmlinux" for b in introspect.btfs())
    with Map.create(MapType.HASH, 4, 4, 1, name="introspected") as m:
        names = {i.name for i in introspect.maps()}
        assert "introspected" in names
        with introspect.open_map(m.info().id) as again:
            assert again.name == "introspected"
