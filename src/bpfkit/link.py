"""Links: what keeps a program attached, and detaches it on close.

``Link`` wraps a kernel bpf_link fd.  Attachments that are not bpf links (legacy
``PERF_EVENT_IOC_SET_BPF``, ``BPF_PROG_ATTACH``, netlink tc/XDP, tracefs probe events)
are subclasses that know how to undo themselves, so every attachment closes the same way.
"""

from __future__ import annotations

import ctypes
import struct
from dataclasses import dataclass, field
from typing import Any

from . import syscall as sc
from ._consts import AttachType, Cmd, LinkType
from .errors import KernelError
from .fd import FDObject

__all__ = ["Link", "LinkInfo", "FDLink", "CallbackLink"]


@dataclass
class LinkInfo:
    """What the kernel reports about a bpf_link (BPF_OBJ_GET_INFO_BY_FD)."""

    id: int
    type: LinkType | int
    prog_id: int
    attach_type: AttachType | int | None = None
    target: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_fd(cls, fd: int) -> LinkInfo:
        i = sc.obj_info(fd, sc.LinkInfo())
        try:
            lt: LinkType | int = LinkType(i.type)
        except ValueError:
            lt = i.type
        raw = bytes(i.extra)
        target: dict[str, Any] = {}
        attach: int | None = None
        u32 = lambda off: struct.unpack_from("<I", raw, off)[0]  # noqa: E731
        if lt == LinkType.TRACING:
            attach, target["target_obj_id"], target["target_btf_id"] = struct.unpack_from("<III", raw)
        elif lt == LinkType.CGROUP:
            target["cgroup_id"], attach = struct.unpack_from("<QI", raw)
        elif lt == LinkType.NETNS:
            target["netns_ino"], attach = struct.unpack_from("<II", raw)
        elif lt == LinkType.XDP:
            target["ifindex"] = u32(0)
        elif lt in (LinkType.TCX, LinkType.NETKIT):
            target["ifindex"], attach = struct.unpack_from("<II", raw)
        elif lt == LinkType.STRUCT_OPS:
            target["map_id"] = u32(0)
        elif lt == LinkType.NETFILTER:
            target["pf"], target["hooknum"], target["priority"], target["flags"] = \
                struct.unpack_from("<IIiI", raw)
        elif lt == LinkType.SOCKMAP:
            target["map_id"], attach = struct.unpack_from("<II", raw)
        elif lt == LinkType.PERF_EVENT:
            target["perf_event_type"] = u32(0)
        elif lt == LinkType.RAW_TRACEPOINT:
            n = u32(8)
            if n:
                buf = ctypes.create_string_buffer(n)
                j = sc.LinkInfo()
                struct.pack_into("<QI", j.extra, 0, ctypes.addressof(buf), n)
                sc.obj_info(fd, j)
                target["tp_name"] = buf.value.decode(errors="replace")
        at: AttachType | int | None = attach
        if attach is not None:
            try:
                at = AttachType(attach)
            except ValueError:
                pass
        return cls(id=i.id, type=lt, prog_id=i.prog_id, attach_type=at, target=target)


class Link(FDObject):
    """An attachment of a program to a hook; ``close()`` detaches it (unless pinned)."""

    _kind = "link"

    def __init__(self, fd: int, name: str = "", *, program: Any = None, hook: str = "") -> None:
        super().__init__(fd, name)
        self.program = program
        self.hook = hook or name

    def info(self) -> LinkInfo:
        return LinkInfo.from_fd(self.fd)

    @property
    def id(self) -> int:
        return self.info().id

    def detach(self) -> None:
        """Detach from the hook now even if pinned elsewhere (BPF_LINK_DETACH), then close."""
        try:
            sc.link_detach(self.fd)
        finally:
            self.close()

    def update(self, program: Any, old_program: Any = None) -> None:
        """Swap the attached program atomically (BPF_LINK_UPDATE)."""
        sc.link_update(self.fd, program.fd,
                       old_prog_fd=old_program.fd if old_program is not None else 0,
                       flags=4 if old_program is not None else 0)

    @classmethod
    def from_pin(cls, path: str) -> Link:
        return cls(sc.obj_get(path), name=path)

    @classmethod
    def from_id(cls, link_id: int) -> Link:
        return cls(sc.get_fd_by_id(Cmd.LINK_GET_FD_BY_ID, link_id), name=f"link {link_id}")

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd={self._fd}"
        return f"<{type(self).__name__} {self.hook!r} {state}>"


FDLink = Link


class CallbackLink(Link):
    """An attachment undone by a callback (legacy attach APIs); may also own an fd."""

    def __init__(self, detach: Any, name: str = "", *, fd: int = -1, program: Any = None,
                 hook: str = "") -> None:
        super().__init__(fd, name, program=program, hook=hook)
        self._detach = detach

    @property
    def closed(self) -> bool:
        return self._detach is None and self._fd < 0

    def close(self) -> None:
        cb, self._detach = self._detach, None
        try:
            if cb is not None:
                try:
                    cb()
                except (KernelError, OSError):
                    pass
        finally:
            super().close()

    def detach(self) -> None:
        self.close()

    def pin(self, path: str) -> None:
        if self._fd < 0:
            raise KernelError("BPF_OBJ_PIN", 95, obj=self.hook,
                              hint="this attachment is not a bpf_link and cannot be pinned")
        super().pin(path)

    def __del__(self) -> None:
        if getattr(self, "_detach", None) is not None:
            self.close()
        super().__del__()
