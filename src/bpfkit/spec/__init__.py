"""Collection specs: an ELF object parsed into maps, programs, globals and externs, no kernel.

``CollectionSpec.from_file`` is the pure half of loading (nothing here calls the kernel);
``CollectionSpec.load`` hands the spec to :mod:`bpfkit.loader`.
"""

from __future__ import annotations

from ..linker import _fix_calls
from ._elf_reader import CollectionSpec
from .model import (
    EM_BPF,
    KCONFIG_MAP,
    PIN_BY_NAME,
    PIN_NONE,
    ConstText,
    ExternSpec,
    MapSpec,
    ProgramSpec,
    StructOpsSpec,
    VariableSpec,
    _strip,
    decode_value,
    encode_text,
    encode_value,
    is_data_section,
    is_struct_ops_section,
)

__all__ = ["CollectionSpec", "ProgramSpec", "MapSpec", "VariableSpec", "ExternSpec",
           "StructOpsSpec", "PIN_NONE", "PIN_BY_NAME", "KCONFIG_MAP", "is_data_section",
           "is_struct_ops_section", "ConstText", "encode_text", "EM_BPF", "_fix_calls", "_strip", "decode_value",
           "encode_value"]
