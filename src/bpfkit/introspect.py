"""Enumerate what is loaded in the kernel: programs, maps, links and BTF objects by id.

This is the data behind ``bpfkit prog list`` and friends (what bpftool shows).
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from . import syscall as sc
from ._consts import Cmd
from .btf import Spec
from .btf import types as bt
from .errors import BpfkitError, BTFError, KernelError, NotFound
from .link import Link, LinkInfo
from .maps import Map, MapInfo
from .program import Program, ProgramInfo

__all__ = ["prog_ids", "map_ids", "link_ids", "btf_ids", "programs", "maps", "links", "btfs",
           "BTFInfo", "open_program", "open_map", "open_link", "btf_raw", "btf_spec", "type_map",
           "MapTypes", "ProgramSource", "SourceLine", "program_source", "full_name",
           "call_names"]


def _ids(cmd: int) -> Iterator[int]:
    cur = 0
    while True:
        nxt = sc.get_next_id(cmd, cur)
        if nxt is None:
            return
        yield nxt
        cur = nxt


def prog_ids() -> list[int]:
    return list(_ids(Cmd.PROG_GET_NEXT_ID))


def map_ids() -> list[int]:
    return list(_ids(Cmd.MAP_GET_NEXT_ID))


def link_ids() -> list[int]:
    return list(_ids(Cmd.LINK_GET_NEXT_ID))


def btf_ids() -> list[int]:
    return list(_ids(Cmd.BTF_GET_NEXT_ID))


def _each(cmd_next: int, cmd_fd: int, fn):
    for i in _ids(cmd_next):
        try:
            fd = sc.get_fd_by_id(cmd_fd, i)
        except NotFound:
            continue  # unloaded between the two calls
        try:
            yield fn(fd)
        except KernelError:
            continue
        finally:
            sc.close_fd(fd)


def programs() -> list[ProgramInfo]:
    """Info of every loaded program."""
    return list(_each(Cmd.PROG_GET_NEXT_ID, Cmd.PROG_GET_FD_BY_ID, ProgramInfo.from_fd))


def maps() -> list[MapInfo]:
    """Info of every map."""
    return list(_each(Cmd.MAP_GET_NEXT_ID, Cmd.MAP_GET_FD_BY_ID, MapInfo.from_fd))


def links() -> list[LinkInfo]:
    """Info of every bpf_link."""
    return list(_each(Cmd.LINK_GET_NEXT_ID, Cmd.LINK_GET_FD_BY_ID, LinkInfo.from_fd))


@dataclass
class BTFInfo:
    id: int
    name: str
    size: int
    kernel_btf: bool

    @classmethod
    def from_fd(cls, fd: int) -> BTFInfo:
        name = ctypes.create_string_buffer(64)
        i = sc.obj_info(fd, sc.BtfInfo(name=ctypes.addressof(name), name_len=64))
        return cls(id=i.id, name=name.value.decode(errors="replace"), size=i.btf_size,
                   kernel_btf=bool(i.kernel_btf))


def btfs() -> list[BTFInfo]:
    """Info of every BTF object (vmlinux, modules, loaded programs' BTF)."""
    return list(_each(Cmd.BTF_GET_NEXT_ID, Cmd.BTF_GET_FD_BY_ID, BTFInfo.from_fd))


def btf_raw(btf_id: int) -> bytes:
    """The raw BTF blob of a loaded BTF object."""
    fd = sc.get_fd_by_id(Cmd.BTF_GET_FD_BY_ID, btf_id)
    try:
        i = sc.obj_info(fd, sc.BtfInfo())
        buf = ctypes.create_string_buffer(i.btf_size)
        sc.obj_info(fd, sc.BtfInfo(btf=ctypes.addressof(buf), btf_size=i.btf_size))
        return buf.raw
    finally:
        sc.close_fd(fd)


def open_program(prog_id: int) -> Program:
    return Program.from_id(prog_id)


def open_map(map_id: int) -> Map:
    return Map.from_id(map_id)


def open_link(link_id: int) -> Link:
    return Link.from_id(link_id)


# ----------------------------------------------------------------------------- typed views
# What bpftool shows through BTF, from the kernel's own copy of it: map keys and values
# decoded by the BTF the map was created with, program names, source lines and the
# helpers and kfuncs each call reaches.

_BTF_CACHE: dict[int, Spec] = {}


def btf_spec(btf_id: int) -> Spec:
    """The kernel-held BTF object ``btf_id`` as a Spec (split module BTF on vmlinux)."""
    spec = _BTF_CACHE.get(btf_id)
    if spec is None:
        raw = btf_raw(btf_id)
        try:
            spec = Spec.from_bytes(raw, lazy=True)
        except BTFError:
            spec = Spec.from_bytes(raw, Spec.kernel(), lazy=True)
        _BTF_CACHE[btf_id] = spec
    return spec


@dataclass
class MapTypes:
    """The BTF a map was created with and its key/value type ids (0: none)."""

    spec: Spec
    key_type_id: int
    value_type_id: int

    def name(self, tid: int) -> str:
        return self.spec.type_name(tid) if tid else ""


def type_map(m: Map) -> MapTypes | None:
    """Give ``m`` key/value codecs from its kernel-held BTF; None if it was created without.

    A type whose size does not match the map's key/value size is left as bytes.
    """
    info = m.info()
    if not info.btf_id or not (info.btf_key_type_id or info.btf_value_type_id):
        return None
    spec = btf_spec(info.btf_id)
    m.use_btf(spec, info.btf_key_type_id, info.btf_value_type_id)
    return MapTypes(spec, info.btf_key_type_id, info.btf_value_type_id)


@dataclass
class SourceLine:
    """One kernel line-info record: the instruction it starts at and its source line."""

    insn_off: int
    file: str
    line: int
    col: int
    text: str


@dataclass
class ProgramSource:
    """Function names (BTF, never truncated) and source lines of a loaded program."""

    funcs: list[tuple[int, str, str]]  # (insn offset, name, C prototype)
    lines: list[SourceLine]

    @property
    def name(self) -> str:
        return self.funcs[0][1] if self.funcs else ""


def _info_array(fd: int, count_field: str, size_field: str, ptr_field: str) -> bytes:
    i = sc.obj_info(fd, sc.ProgInfo())
    n, rec = getattr(i, count_field), getattr(i, size_field)
    if not n or not rec:
        return b""
    buf = ctypes.create_string_buffer(n * rec)
    sc.obj_info(fd, sc.ProgInfo(**{count_field: n, size_field: rec,
                                   ptr_field: ctypes.addressof(buf)}))
    return buf.raw


def _func_decl(spec: Spec, func: bt.BTFType) -> str:
    """``int on_exec(void * ctx)``, as bpftool prints a function header."""
    proto = spec.type(func.type) if isinstance(func, bt.Func) else None
    if not isinstance(proto, bt.FuncProto):
        return func.name
    params = ", ".join(f"{spec.type_name(p.type)} {p.name}".rstrip() if p.type else "..."
                       for p in proto.params)
    return f"{spec.type_name(proto.return_type)} {func.name}({params})"


def program_source(p: Program) -> ProgramSource | None:
    """Function names and source lines from the kernel's func/line info and the program's
    BTF; None for a program loaded without BTF."""
    info = sc.obj_info(p.fd, sc.ProgInfo())
    if not info.btf_id:
        return None
    spec = btf_spec(info.btf_id)
    funcs: list[tuple[int, str, str]] = []
    raw = _info_array(p.fd, "nr_func_info", "func_info_rec_size", "func_info")
    rec = info.func_info_rec_size or 8
    for off in range(0, len(raw) - rec + 1, rec):
        insn_off, tid = struct.unpack_from("<II", raw, off)
        try:
            f = spec.type(tid)
        except BTFError:
            continue
        funcs.append((insn_off, f.name, _func_decl(spec, f)))
    lines: list[SourceLine] = []
    raw = _info_array(p.fd, "nr_line_info", "line_info_rec_size", "line_info")
    rec = info.line_info_rec_size or 16
    for off in range(0, len(raw) - rec + 1, rec):
        insn_off, file_off, line_off, line_col = struct.unpack_from("<IIII", raw, off)
        try:
            fname, text = spec.string(file_off), spec.string(line_off)
        except BTFError:
            continue
        lines.append(SourceLine(insn_off, fname, line_col >> 10, line_col & 0x3FF,
                                text.strip()))
    return ProgramSource(funcs, lines)


def full_name(info: ProgramInfo, p: Program | None = None) -> str:
    """The program's name, from its BTF when the kernel truncated it (15 characters)."""
    if len(info.name) < 15 or not info.btf_id:
        return info.name
    try:
        with (Program.from_id(info.id) if p is None else _borrow(p)) as prog:
            src = program_source(prog)
    except (KernelError, BpfkitError):
        return info.name
    if src is not None and src.name.startswith(info.name):
        return src.name
    return info.name


class _borrow:
    """A ``with`` over a program someone else owns (does not close it)."""

    def __init__(self, p: Program) -> None:
        self.p = p

    def __enter__(self) -> Program:
        return self.p

    def __exit__(self, *exc: object) -> None:
        return None


def call_names(insns: list[Any]) -> dict[int, str]:
    """``bpf_get_current_pid_tgid#14``-style names for the calls of a translated program.

    The kernel rewrites a call's immediate to the callee's address minus
    ``__bpf_call_base``; kallsyms names the callee.  A helper is shown with its UAPI id,
    a kfunc or an inlined map function with the kernel symbol it reaches."""
    from . import asm
    from ._consts import HelperId
    from .host.kallsyms import kernel_symbols
    try:
        ks = kernel_symbols()
    except BpfkitError:
        return {}
    base = ks.address("__bpf_call_base")
    out: dict[int, str] = {}
    for idx, ins in enumerate(insns):
        if not ins.is_call or ins.src == asm.BPF_PSEUDO_CALL:
            continue
        sym = ks.resolve(base + ins.imm) if base is not None and ins.imm else None
        if sym is None or sym.offset:
            continue
        name = sym.name
        helper = name[4:] if name.startswith("bpf_") else None
        hid = getattr(HelperId, helper, None) if helper else None
        if hid is not None and ins.src == 0:
            out[idx] = f"{name}#{int(hid)}"
        elif ins.src == asm.BPF_PSEUDO_KFUNC_CALL and (kid := _kfunc_id(name)):
            out[idx] = f"{name}#{kid}"  # a kfunc: its id in the kernel's BTF
        else:
            out[idx] = f"{name}#{ins.imm}"
    return out


def _kfunc_id(name: str) -> int:
    """The BTF id of kernel function ``name`` in vmlinux BTF (0 if none there)."""
    try:
        ids = Spec.kernel().ids_by_name(name, bt.BTF_KIND_FUNC)
    except BpfkitError:
        return 0
    return ids[0] if ids else 0
