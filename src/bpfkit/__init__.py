"""bpfkit: a pure-Python eBPF toolkit.

Build a BPF program in C, load it, attach it to any kernel hook and read what it
reports, with the standard library alone at run time.

Names are imported on first use (PEP 562), so ``import bpfkit`` and the ``bpfkit``
command start fast and load only the modules a task needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    AttachError,
    BpfkitError,
    BTFError,
    CoreRelocationError,
    ElfError,
    KernelError,
    LoadError,
    MissingFeature,
    NotFound,
    NotSupported,
    ParseError,
    PermissionDenied,
    SpecError,
    VerifierError,
)

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY: dict[str, str] = {
    "asm": "bpfkit.asm",
    "introspect": "bpfkit.introspect",
    "AttachType": "bpfkit._consts", "HelperId": "bpfkit._consts", "LinkType": "bpfkit._consts",
    "MapType": "bpfkit._consts", "ProgramType": "bpfkit._consts",
    "CallbackLink": "bpfkit.link", "Link": "bpfkit.link", "LinkInfo": "bpfkit.link",
    "Map": "bpfkit.maps", "MapInfo": "bpfkit.maps",
    "Program": "bpfkit.program", "ProgramInfo": "bpfkit.program",
    "TestRunResult": "bpfkit.program",
    "Collection": "bpfkit.loader", "Variable": "bpfkit.loader", "load": "bpfkit.loader",
    "CollectionSpec": "bpfkit.spec", "MapSpec": "bpfkit.spec", "ProgramSpec": "bpfkit.spec",
    "Manager": "bpfkit.manager", "Probe": "bpfkit.manager", "MapOptions": "bpfkit.manager",
    "OneOf": "bpfkit.manager",
    "RingBuffer": "bpfkit.readers", "PerfBuffer": "bpfkit.readers",
    "UserRingBuffer": "bpfkit.readers",
    "TracePipe": "bpfkit.readers",
}

__all__ = [
    "AttachError", "BpfkitError", "BTFError", "CoreRelocationError", "ElfError", "KernelError",
    "LoadError", "MissingFeature", "NotFound", "NotSupported", "ParseError", "PermissionDenied",
    "SpecError", "VerifierError", *_LAZY,
]


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'bpfkit' has no attribute {name!r}")
    m = importlib.import_module(mod)
    value = m if mod.endswith("." + name) else getattr(m, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:
    from . import asm, introspect
    from ._consts import AttachType, HelperId, LinkType, MapType, ProgramType
    from .link import CallbackLink, Link, LinkInfo
    from .loader import Collection, Variable, load
    from .manager import Manager, MapOptions, OneOf, Probe
    from .maps import Map, MapInfo
    from .program import Program, ProgramInfo, TestRunResult
    from .readers import PerfBuffer, RingBuffer, TracePipe, UserRingBuffer
    from .spec import CollectionSpec, MapSpec, ProgramSpec
