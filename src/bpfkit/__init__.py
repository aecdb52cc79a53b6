"""bpfkit: a pure-Python eBPF toolkit.

Build a BPF program in C, load it, attach it to any kernel hook and read what it
reports, with the standard library alone at run time.
"""

from __future__ import annotations

from . import asm
from ._consts import AttachType, HelperId, LinkType, MapType, ProgramType
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
from .link import CallbackLink, Link, LinkInfo
from .loader import Collection, Variable, load
from .maps import Map, MapInfo
from .program import Program, ProgramInfo, TestRunResult
from .spec import CollectionSpec, MapSpec, ProgramSpec

__version__ = "0.1.0"

__all__ = [
    "AttachError", "BpfkitError", "BTFError", "CoreRelocationError", "ElfError", "KernelError",
    "LoadError", "MissingFeature", "NotFound", "NotSupported", "ParseError", "PermissionDenied",
    "SpecError", "VerifierError",
    "asm", "AttachType", "HelperId", "LinkType", "MapType", "ProgramType",
    "CallbackLink", "Link", "LinkInfo", "Map", "MapInfo", "Program", "ProgramInfo",
    "TestRunResult",
    "Collection", "CollectionSpec", "MapSpec", "ProgramSpec", "Variable", "load",
]
