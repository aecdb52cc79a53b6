"""Every ``bpf(2)`` command bpfkit issues, with the ``union bpf_attr`` layouts in one place.

Each command gets a ctypes structure mirroring its member of ``union bpf_attr``
(include/uapi/linux/bpf.h).  We pass ``sizeof`` of that structure, as libbpf does,
so that a kernel older than a trailing field never sees it.  Errors become
:mod:`bpfkit.errors` exceptions naming the command and the object.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import platform
from collections.abc import Callable
from typing import TypeVar

from ._consts import Cmd
from .errors import KernelError, kernel_error

__all__ = ["bpf", "libc", "SYS_BPF", "SYS_PERF_EVENT_OPEN"]

_SYSCALLS = {
    # machine: (bpf, perf_event_open)
    "x86_64": (321, 298),
    "aarch64": (280, 241),
    "arm64": (280, 241),
    "riscv64": (280, 241),
    "loongarch64": (280, 241),
    "s390x": (351, 331),
    "ppc64le": (361, 319),
    "ppc64": (361, 319),
    "i686": (357, 336),
    "i386": (357, 336),
    "armv7l": (386, 364),
}
SYS_BPF, SYS_PERF_EVENT_OPEN = _SYSCALLS.get(platform.machine(), (321, 298))

libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_syscall = libc.syscall
_syscall.restype = ctypes.c_long

u8, u32, s32, u64 = ctypes.c_uint8, ctypes.c_uint32, ctypes.c_int32, ctypes.c_uint64

T = TypeVar("T", bound=ctypes.Structure)

# Commands the kernel may interrupt and asks us to retry.
_RETRY = (errno.EINTR, errno.EAGAIN)
_RETRY_LIMIT = 5


def bpf(cmd: int, attr: ctypes.Structure | ctypes.Array, *, obj: str | None = None,
        hint: str | None = None, retry: bool = True, size: int | None = None) -> int:
    """Issue ``bpf(cmd, &attr, sizeof(attr))``; return the result or raise a KernelError."""
    ptr = ctypes.addressof(attr)
    n = ctypes.sizeof(attr) if size is None else size
    tries = 0
    while True:
        ret = _syscall(SYS_BPF, cmd, ctypes.c_void_p(ptr), n)
        if ret >= 0:
            return int(ret)
        err = ctypes.get_errno()
        if retry and err in _RETRY and tries < _RETRY_LIMIT:
            tries += 1
            continue
        raise kernel_error("BPF_" + Cmd(cmd).name, err, obj=obj, hint=hint)


def bpf_errno(cmd: int, attr: ctypes.Structure) -> int:
    """Issue a command and return 0 or the errno, for hot paths that treat ENOENT as data."""
    ret = _syscall(SYS_BPF, cmd, ctypes.c_void_p(ctypes.addressof(attr)), ctypes.sizeof(attr))
    if ret >= 0:
        return 0
    return ctypes.get_errno()


def raise_errno(cmd: int, err: int, obj: str | None = None, hint: str | None = None) -> KernelError:
    return kernel_error("BPF_" + Cmd(cmd).name, err, obj=obj, hint=hint)


def addr(buf: ctypes.Array | ctypes.Structure | bytes | None) -> int:
    """Address of a ctypes buffer (0 for None) for the u64 pointer fields of bpf_attr."""
    if buf is None:
        return 0
    if isinstance(buf, bytes):
        raise TypeError("pass a ctypes buffer, not bytes, so the memory stays alive")
    return ctypes.addressof(buf)


def cstr(s: str | bytes) -> ctypes.Array:
    return ctypes.create_string_buffer(s.encode() if isinstance(s, str) else s)


def name16(s: str) -> bytes:
    """Kernel object names: at most 15 chars of [A-Za-z0-9_.] plus NUL."""
    clean = "".join(c if (c.isalnum() or c in "_.") else "_" for c in s)
    return clean.encode()[:15]


# --------------------------------------------------------------------------- attr layouts


class MapCreateAttr(ctypes.Structure):
    _fields_ = [("map_type", u32), ("key_size", u32), ("value_size", u32), ("max_entries", u32),
                ("map_flags", u32), ("inner_map_fd", u32), ("numa_node", u32),
                ("map_name", ctypes.c_char * 16), ("map_ifindex", u32), ("btf_fd", u32),
                ("btf_key_type_id", u32), ("btf_value_type_id", u32),
                ("btf_vmlinux_value_type_id", u32), ("map_extra", u64),
                ("value_type_btf_obj_fd", s32), ("map_token_fd", s32)]


class MapElemAttr(ctypes.Structure):
    _fields_ = [("map_fd", u32), ("_pad", u32), ("key", u64), ("value", u64), ("flags", u64)]


class MapBatchAttr(ctypes.Structure):
    _fields_ = [("in_batch", u64), ("out_batch", u64), ("keys", u64), ("values", u64),
                ("count", u32), ("map_fd", u32), ("elem_flags", u64), ("flags", u64)]


class ProgLoadAttr(ctypes.Structure):
    _fields_ = [("prog_type", u32), ("insn_cnt", u32), ("insns", u64), ("license", u64),
                ("log_level", u32), ("log_size", u32), ("log_buf", u64), ("kern_version", u32),
                ("prog_flags", u32), ("prog_name", ctypes.c_char * 16), ("prog_ifindex", u32),
                ("expected_attach_type", u32), ("prog_btf_fd", u32), ("func_info_rec_size", u32),
                ("func_info", u64), ("func_info_cnt", u32), ("line_info_rec_size", u32),
                ("line_info", u64), ("line_info_cnt", u32), ("attach_btf_id", u32),
                ("attach_prog_fd", u32), ("core_relo_cnt", u32), ("fd_array", u64),
                ("core_relos", u64), ("core_relo_rec_size", u32), ("log_true_size", u32)]


class ObjAttr(ctypes.Structure):
    _fields_ = [("pathname", u64), ("bpf_fd", u32), ("file_flags", u32), ("path_fd", s32)]


class ProgAttachAttr(ctypes.Structure):
    _fields_ = [("target_fd", u32), ("attach_bpf_fd", u32), ("attach_type", u32),
                ("attach_flags", u32), ("replace_bpf_fd", u32), ("relative_fd", u32),
                ("expected_revision", u64)]


class TestRunAttr(ctypes.Structure):
    __test__ = False
    _fields_ = [("prog_fd", u32), ("retval", u32), ("data_size_in", u32), ("data_size_out", u32),
                ("data_in", u64), ("data_out", u64), ("repeat", u32), ("duration", u32),
                ("ctx_size_in", u32), ("ctx_size_out", u32), ("ctx_in", u64), ("ctx_out", u64),
                ("flags", u32), ("cpu", u32), ("batch_size", u32)]


class GetIdAttr(ctypes.Structure):
    _fields_ = [("start_id", u32), ("next_id", u32), ("open_flags", u32)]


class InfoAttr(ctypes.Structure):
    _fields_ = [("bpf_fd", u32), ("info_len", u32), ("info", u64)]


class ProgQueryAttr(ctypes.Structure):
    _fields_ = [("target_fd", u32), ("attach_type", u32), ("query_flags", u32),
                ("attach_flags", u32), ("prog_ids", u64), ("count", u32), ("_pad", u32),
                ("prog_attach_flags", u64), ("link_ids", u64), ("link_attach_flags", u64),
                ("revision", u64)]


class RawTpAttr(ctypes.Structure):
    _fields_ = [("name", u64), ("prog_fd", u32), ("_pad", u32), ("cookie", u64)]


class BtfLoadAttr(ctypes.Structure):
    _fields_ = [("btf", u64), ("btf_log_buf", u64), ("btf_size", u32), ("btf_log_size", u32),
                ("btf_log_level", u32), ("btf_log_true_size", u32)]


class LinkCreateAttr(ctypes.Structure):
    """LINK_CREATE: a fixed head and a 48-byte union filled per link type."""

    _fields_ = [("prog_fd", u32), ("target_fd", u32), ("attach_type", u32), ("flags", u32),
                ("extra", ctypes.c_uint8 * 48)]


class LinkUpdateAttr(ctypes.Structure):
    _fields_ = [("link_fd", u32), ("new_prog_fd", u32), ("flags", u32), ("old_prog_fd", u32)]


class U32Attr(ctypes.Structure):
    _fields_ = [("value", u32)]


class IterCreateAttr(ctypes.Structure):
    _fields_ = [("link_fd", u32), ("flags", u32)]


class ProgBindMapAttr(ctypes.Structure):
    _fields_ = [("prog_fd", u32), ("map_fd", u32), ("flags", u32)]


# --------------------------------------------------------------------------- info structures


class ProgInfo(ctypes.Structure):
    _fields_ = [("type", u32), ("id", u32), ("tag", u8 * 8), ("jited_prog_len", u32),
                ("xlated_prog_len", u32), ("jited_prog_insns", u64), ("xlated_prog_insns", u64),
                ("load_time", u64), ("created_by_uid", u32), ("nr_map_ids", u32),
                ("map_ids", u64), ("name", ctypes.c_char * 16), ("ifindex", u32),
                ("gpl_compatible", u32), ("netns_dev", u64), ("netns_ino", u64),
                ("nr_jited_ksyms", u32), ("nr_jited_func_lens", u32), ("jited_ksyms", u64),
                ("jited_func_lens", u64), ("btf_id", u32), ("func_info_rec_size", u32),
                ("func_info", u64), ("nr_func_info", u32), ("nr_line_info", u32),
                ("line_info", u64), ("jited_line_info", u64), ("nr_jited_line_info", u32),
                ("line_info_rec_size", u32), ("jited_line_info_rec_size", u32),
                ("nr_prog_tags", u32), ("prog_tags", u64), ("run_time_ns", u64),
                ("run_cnt", u64), ("recursion_misses", u64), ("verified_insns", u32),
                ("attach_btf_obj_id", u32), ("attach_btf_id", u32)]


class MapInfo(ctypes.Structure):
    _fields_ = [("type", u32), ("id", u32), ("key_size", u32), ("value_size", u32),
                ("max_entries", u32), ("map_flags", u32), ("name", ctypes.c_char * 16),
                ("ifindex", u32), ("btf_vmlinux_value_type_id", u32), ("netns_dev", u64),
                ("netns_ino", u64), ("btf_id", u32), ("btf_key_type_id", u32),
                ("btf_value_type_id", u32), ("btf_vmlinux_id", u32), ("map_extra", u64)]


class BtfInfo(ctypes.Structure):
    _fields_ = [("btf", u64), ("btf_size", u32), ("id", u32), ("name", u64), ("name_len", u32),
                ("kernel_btf", u32)]


class LinkInfo(ctypes.Structure):
    _fields_ = [("type", u32), ("id", u32), ("prog_id", u32), ("_pad", u32),
                ("extra", ctypes.c_uint8 * 64)]


# --------------------------------------------------------------------------- commands


_memlock_done = False


def ensure_memlock() -> None:
    """Raise RLIMIT_MEMLOCK on kernels that charge BPF memory to it (before 5.11; newer
    ones charge the memory cgroup).  Never fails: a refused setrlimit (no CAP_SYS_RESOURCE)
    is ignored, the load then says what the kernel refused."""
    global _memlock_done
    if _memlock_done:
        return
    _memlock_done = True
    from .host.version import kernel_version
    if kernel_version()[:2] >= (5, 11):
        return
    import resource
    try:
        resource.setrlimit(resource.RLIMIT_MEMLOCK,
                           (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    except (ValueError, OSError):
        pass


def map_create(map_type: int, key_size: int, value_size: int, max_entries: int, *,
               flags: int = 0, name: str = "", inner_map_fd: int = 0, numa_node: int = 0,
               ifindex: int = 0, btf_fd: int = 0, btf_key_type_id: int = 0,
               btf_value_type_id: int = 0, btf_vmlinux_value_type_id: int = 0,
               map_extra: int = 0, value_type_btf_obj_fd: int = 0) -> int:
    ensure_memlock()
    a = MapCreateAttr(map_type=map_type, key_size=key_size, value_size=value_size,
                      max_entries=max_entries, map_flags=flags, inner_map_fd=inner_map_fd,
                      numa_node=numa_node, map_name=name16(name), map_ifindex=ifindex,
                      btf_fd=btf_fd, btf_key_type_id=btf_key_type_id,
                      btf_value_type_id=btf_value_type_id,
                      btf_vmlinux_value_type_id=btf_vmlinux_value_type_id, map_extra=map_extra,
                      value_type_btf_obj_fd=value_type_btf_obj_fd)
    return bpf(Cmd.MAP_CREATE, a, obj=f"map {name!r}" if name else "map")


def obj_pin(fd: int, path: str) -> None:
    p = cstr(path)
    bpf(Cmd.OBJ_PIN, ObjAttr(pathname=addr(p), bpf_fd=fd), obj=path,
        hint="the directory must be on a mounted bpffs (mount -t bpf bpf /sys/fs/bpf) and "
             "the path must not exist yet")


def obj_get(path: str, flags: int = 0) -> int:
    p = cstr(path)
    return bpf(Cmd.OBJ_GET, ObjAttr(pathname=addr(p), file_flags=flags), obj=path,
               hint="no pinned BPF object there: is bpffs mounted and the path right?")


def get_next_id(cmd: int, start: int) -> int | None:
    """Next object id after ``start`` for a *_GET_NEXT_ID command, or None at the end."""
    a = GetIdAttr(start_id=start)
    err = bpf_errno(cmd, a)
    if err == errno.ENOENT:
        return None
    if err:
        raise raise_errno(cmd, err)
    return int(a.next_id)


def get_fd_by_id(cmd: int, obj_id: int, open_flags: int = 0) -> int:
    return bpf(cmd, GetIdAttr(start_id=obj_id, open_flags=open_flags), obj=f"id {obj_id}")


def obj_info(fd: int, info: T) -> T:
    """Fill an info structure (ProgInfo, MapInfo, BtfInfo, LinkInfo) for ``fd``."""
    a = InfoAttr(bpf_fd=fd, info_len=ctypes.sizeof(info), info=ctypes.addressof(info))
    bpf(Cmd.OBJ_GET_INFO_BY_FD, a, obj=f"fd {fd}")
    return info


def btf_load(data: bytes, *, log_level: int = 0, log_size: int = 0) -> tuple[int, str]:
    """Load raw BTF; returns (fd, log). On failure the KernelError detail holds the log."""
    buf = ctypes.create_string_buffer(data, len(data))
    log = ctypes.create_string_buffer(log_size) if log_size else None
    a = BtfLoadAttr(btf=addr(buf), btf_size=len(data), btf_log_buf=addr(log),
                    btf_log_size=log_size, btf_log_level=log_level)
    try:
        fd = bpf(Cmd.BTF_LOAD, a, obj="BTF")
    except KernelError as e:
        if log is not None:
            text = log.value.decode(errors="replace").strip()
            if text:
                e.detail = text.splitlines()[-1]
                e.args = (e._format(),)
                e.log = text  # type: ignore[attr-defined]
        raise
    return fd, (log.value.decode(errors="replace") if log is not None else "")


def link_create(prog_fd: int, target_fd: int, attach_type: int, *, flags: int = 0,
                extra: bytes = b"", obj: str | None = None, hint: str | None = None) -> int:
    a = LinkCreateAttr(prog_fd=prog_fd, target_fd=target_fd, attach_type=attach_type,
                       flags=flags)
    if extra:
        ctypes.memmove(a.extra, extra, min(len(extra), 48))
    return bpf(Cmd.LINK_CREATE, a, obj=obj, hint=hint)


def link_update(link_fd: int, new_prog_fd: int, *, old_prog_fd: int = 0, flags: int = 0) -> None:
    bpf(Cmd.LINK_UPDATE, LinkUpdateAttr(link_fd=link_fd, new_prog_fd=new_prog_fd,
                                        old_prog_fd=old_prog_fd, flags=flags), obj="link")


def link_detach(link_fd: int) -> None:
    bpf(Cmd.LINK_DETACH, U32Attr(value=link_fd), obj="link")


def raw_tracepoint_open(name: str | None, prog_fd: int, cookie: int = 0) -> int:
    n = cstr(name) if name else None
    a = RawTpAttr(name=addr(n), prog_fd=prog_fd, cookie=cookie)
    size = ctypes.sizeof(a) if cookie else 16
    return bpf(Cmd.RAW_TRACEPOINT_OPEN, a, obj=f"raw tracepoint {name!r}" if name else "program",
               size=size)


def prog_attach(target_fd: int, prog_fd: int, attach_type: int, *, flags: int = 0,
                replace_fd: int = 0, relative_fd: int = 0, expected_revision: int = 0,
                obj: str | None = None) -> None:
    a = ProgAttachAttr(target_fd=target_fd, attach_bpf_fd=prog_fd, attach_type=attach_type,
                       attach_flags=flags, replace_bpf_fd=replace_fd, relative_fd=relative_fd,
                       expected_revision=expected_revision)
    bpf(Cmd.PROG_ATTACH, a, obj=obj, size=20 if not (relative_fd or expected_revision) else None)


def prog_detach(target_fd: int, prog_fd: int, attach_type: int, *, flags: int = 0,
                obj: str | None = None) -> None:
    a = ProgAttachAttr(target_fd=target_fd, attach_bpf_fd=prog_fd, attach_type=attach_type,
                       attach_flags=flags)
    bpf(Cmd.PROG_DETACH, a, obj=obj, size=20)


def prog_query(target_fd: int, attach_type: int, *, query_flags: int = 0,
               max_progs: int = 64) -> tuple[list[int], int, int]:
    """Return (prog_ids, attach_flags, revision) attached at ``target_fd``/``attach_type``."""
    ids = (u32 * max_progs)()
    a = ProgQueryAttr(target_fd=target_fd, attach_type=attach_type, query_flags=query_flags,
                      prog_ids=addr(ids), count=max_progs)
    bpf(Cmd.PROG_QUERY, a, obj=f"target fd {target_fd}")
    return list(ids[: a.count]), int(a.attach_flags), int(a.revision)


def iter_create(link_fd: int) -> int:
    return bpf(Cmd.ITER_CREATE, IterCreateAttr(link_fd=link_fd), obj="iterator link")


def enable_stats(stats_type: int = 0) -> int:
    """Switch on run-time stats (BPF_STATS_RUN_TIME); stats stay on while the fd is open."""
    return bpf(Cmd.ENABLE_STATS, U32Attr(value=stats_type), obj="BPF stats")


def map_freeze(fd: int, obj: str | None = None) -> None:
    bpf(Cmd.MAP_FREEZE, U32Attr(value=fd), obj=obj)


def prog_bind_map(prog_fd: int, map_fd: int) -> None:
    bpf(Cmd.PROG_BIND_MAP, ProgBindMapAttr(prog_fd=prog_fd, map_fd=map_fd))


def close_fd(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def with_retry(fn: Callable[[], int], attempts: int = 5) -> int:
    """Run ``fn`` retrying KernelErrors with EAGAIN (e.g. PROG_LOAD under memory pressure)."""
    for i in range(attempts):
        try:
            return fn()
        except KernelError as e:
            if e.errno != errno.EAGAIN or i == attempts - 1:
                raise
    raise AssertionError("unreachable")
