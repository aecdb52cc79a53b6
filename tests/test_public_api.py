"""The public surface, pinned (as trio's test_exports): a name added to or dropped from
``bpfkit.__all__`` or a public package's ``__all__`` must be a decision, made here.
Pure: imports modules, touches no kernel object."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import bpfkit

BPFKIT_ALL = [
    "AttachError", "AttachType", "BTFError", "BpfkitError", "CallbackLink", "Collection",
    "CollectionSpec", "CoreRelocationError", "ElfError", "HelperId", "KernelError", "Link",
    "LinkInfo", "LinkType", "LoadError", "Manager", "Map", "MapInfo", "MapOptions", "MapSpec",
    "MapType", "MissingFeature", "NotFound", "NotSupported", "OneOf", "ParseError",
    "PerfBuffer", "PermissionDenied", "Probe", "Program", "ProgramInfo", "ProgramSpec",
    "ProgramType", "RingBuffer", "SpecError", "TestRunResult", "TracePipe", "UserRingBuffer",
    "Variable", "VerifierError", "asm", "introspect", "load",
]

PACKAGES = {
    "bpfkit.spec": [
        "CollectionSpec", "ConstText", "EM_BPF", "ExternSpec", "KCONFIG_MAP", "MapSpec",
        "PIN_BY_NAME", "PIN_NONE", "ProgramSpec", "StructOpsSpec", "VariableSpec",
        "decode_value", "encode_text", "encode_value", "is_data_section",
        "is_struct_ops_section"],
    "bpfkit.loader": [
        "BTFFeatures", "Collection", "DEFAULT_PIN_ROOT", "Variable", "load", "load_spec",
        "map_defaults", "probe_btf_features", "prog_target_attrs", "ringbuf_size",
        "sanitize_btf", "section_attach_type", "struct_ops_value"],
    "bpfkit.readers": [
        "BPF_RINGBUF_BUSY_BIT", "BPF_RINGBUF_DISCARD_BIT", "BPF_RINGBUF_HDR_SZ", "PerfBuffer",
        "RecordBatch", "RecordDecoder", "RingBuffer", "TraceLine", "TracePipe",
        "UserRingBuffer", "UserSample", "parse_line", "trace_print", "tracefs_dir"],
    "bpfkit.features": [
        "Feature", "clear_cache", "has_attach_type", "has_bpf_cookie",
        "has_expected_attach_type", "has_helper", "has_kprobe_multi", "has_kprobes",
        "has_link_type", "has_map_type", "has_program_type", "has_syscall_wrapper", "has_tcx",
        "has_uprobe_multi", "has_uprobes", "kernel_config", "kernel_version", "require"],
}


def test_bpfkit_all_is_pinned() -> None:
    assert sorted(bpfkit.__all__) == sorted(BPFKIT_ALL)
    assert len(set(bpfkit.__all__)) == len(bpfkit.__all__)


@pytest.mark.parametrize("name", BPFKIT_ALL)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(bpfkit, name) is not None


def test_type_checking_mirror_matches_the_lazy_table() -> None:
    """Type checkers see ``bpfkit.X`` through the ``if TYPE_CHECKING:`` imports; they must
    name exactly the lazily exported names, from the same modules."""
    src = Path(bpfkit.__file__).read_text()
    mirror: dict[str, str] = {}
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for imp in ast.walk(node):
                if isinstance(imp, ast.ImportFrom):
                    for a in imp.names:
                        mirror[a.asname or a.name] = f"bpfkit.{imp.module}" if imp.module \
                            else f"bpfkit.{a.name}"
    lazy = dict(bpfkit._LAZY)
    assert set(mirror) == set(lazy)
    for name, mod in lazy.items():
        assert mirror[name] == mod, name


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_package_all_is_pinned(package: str) -> None:
    mod = importlib.import_module(package)
    public = sorted(n for n in mod.__all__ if not n.startswith("_"))
    assert public == sorted(PACKAGES[package])
    for name in mod.__all__:
        assert hasattr(mod, name), f"{package}.__all__ names {name}, which it lacks"


def test_attach_features_is_the_features_package() -> None:
    import bpfkit.attach.features as old

    import bpfkit.features as new
    assert old is new
