"""Enumerate what is loaded in the kernel: programs, maps, links and BTF objects by id.

This is the data behind ``bpfkit prog list`` and friends (what bpftool shows).
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from dataclasses import dataclass

from . import syscall as sc
from ._consts import Cmd
from .errors import KernelError, NotFound
from .link import Link, LinkInfo
from .maps import Map, MapInfo
from .program import Program, ProgramInfo

__all__ = ["prog_ids", "map_ids", "link_ids", "btf_ids", "programs", "maps", "links", "btfs",
           "BTFInfo", "open_program", "open_map", "open_link", "btf_raw"]


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


def _each(cmd_next: int, cmd_fd: int, fn):  # type: ignore[no-untyped-def]
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
