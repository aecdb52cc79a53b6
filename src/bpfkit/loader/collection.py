"""A loaded collection: the maps, programs and global variables one object created, owned
and closed together."""

from __future__ import annotations

from typing import Any

from .. import syscall as sc
from .._consts import BPF_F_MMAPABLE, AttachType
from ..btf import Spec
from ..errors import (
    LoadError,
)
from ..link import CallbackLink, Link
from ..maps import Map
from ..program import Program
from ..spec import (
    CollectionSpec,
    decode_value,
    encode_value,
)


class Variable:
    """A global variable read and written through its map's mmap."""

    def __init__(self, name: str, map_: Map, offset: int, size: int, type_id: int,
                 btf: Spec | None, readonly: bool) -> None:
        self.name = name
        self.map = map_
        self.offset = offset
        self.size = size
        self.type_id = type_id
        self.btf = btf
        self.readonly = readonly

    @property
    def raw(self) -> bytes:
        if not self.map.flags & BPF_F_MMAPABLE:
            # sections with only static variables are not mmap-able (as with libbpf)
            value = bytes(self.map[0])
            return value[self.offset:self.offset + self.size]
        mm = self.map.mmap()
        return bytes(mm[self.offset:self.offset + self.size])

    @raw.setter
    def raw(self, data: bytes) -> None:
        if self.readonly:
            raise LoadError(f"variable {self.name!r} lives in frozen {self.map.name!r}: it is "
                            "read-only after load (set constants before load)")
        if len(data) != self.size:
            raise LoadError(f"variable {self.name!r} is {self.size} bytes, got {len(data)}")
        if not self.map.flags & BPF_F_MMAPABLE:
            value = bytearray(self.map[0])
            value[self.offset:self.offset + self.size] = data
            self.map.update(0, bytes(value))
            return
        mm = self.map.mmap()
        mm[self.offset:self.offset + self.size] = data

    @property
    def value(self) -> Any:
        return self._decode(self.raw)

    @value.setter
    def value(self, v: Any) -> None:
        self.raw = encode_value(self.btf, self.type_id, self.size, v, f"variable {self.name!r}")

    def _decode(self, raw: bytes) -> Any:
        """BTF-typed decoding; the single place a fuller codec will plug in."""
        return decode_value(self.btf, self.type_id, raw)

    def __repr__(self) -> str:
        return f"<Variable {self.name} in {self.map.name} @{self.offset}>"


# ----------------------------------------------------------------------------- collection

class Collection:
    """Everything one object created in the kernel; closing it closes them all."""

    def __init__(self, spec: CollectionSpec) -> None:
        self.spec = spec
        self.programs: dict[str, Program] = {}
        self.maps: dict[str, Map] = {}
        self.variables: dict[str, Variable] = {}
        self.btf_fd = -1
        #: kernel-layout values of the struct_ops maps (what key 0 is set to)
        self.struct_ops_values: dict[str, bytes] = {}
        self._struct_ops_links: list[Link] = []

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getitem__(self, name: str) -> Program | Map:
        if name in self.programs:
            return self.programs[name]
        return self.maps[name]

    def close(self) -> None:
        links, self._struct_ops_links = self._struct_ops_links, []
        for lk in links:
            lk.close()
        for p in self.programs.values():
            p.close()
        for m in self.maps.values():
            m.close()
        if self.btf_fd >= 0:
            sc.close_fd(self.btf_fd)
            self.btf_fd = -1

    def attach_struct_ops(self, name: str) -> Link:
        """Register struct_ops map ``name`` with the kernel; closing the link unregisters.

        ``.struct_ops.link`` maps get a bpf_link (BPF_LINK_CREATE on the map); plain
        ``.struct_ops`` maps are registered by setting key 0 and unregistered by deleting it.
        """
        m = self.spec.maps.get(name)
        so = m.struct_ops if m is not None else None
        if so is None or name not in self.maps:
            have = ", ".join(n for n, x in self.spec.maps.items() if x.struct_ops) or "none"
            raise LoadError(f"no struct_ops map {name!r} in {self.spec.name} (have: {have})")
        mp = self.maps[name]
        hook = f"struct_ops {so.type_name} {name}"
        lk: Link
        if so.link:
            fd = sc.link_create(mp.fd, 0, AttachType.STRUCT_OPS, obj=f"struct_ops map {name!r}")
            lk = Link(fd, hook, hook=hook)
        else:
            mp.update(0, self.struct_ops_values[name])

            def unregister() -> None:
                if not mp.closed:
                    mp.delete(0)
            lk = CallbackLink(unregister, hook, hook=hook)
        self._struct_ops_links.append(lk)
        return lk

    def attach_all(self) -> list[Any]:
        """Attach every program whose section names its hook (needs ``Program.attach``),
        then register every struct_ops map."""
        links: list[Any] = []
        for p in self.programs.values():
            attach = getattr(p, "attach", None)
            if attach is None:
                raise LoadError("program attachment is not available (bpfkit.attach missing)")
            from ..attach.auto import auto_attachable
            if not auto_attachable(p):
                continue
            links.append(attach())
        for name, m in self.spec.maps.items():
            if m.struct_ops is not None and name in self.maps:
                links.append(self.attach_struct_ops(name))
        return links

    def __repr__(self) -> str:
        return (f"<Collection {self.spec.name}: programs={list(self.programs)} "
                f"maps={list(self.maps)}>")
