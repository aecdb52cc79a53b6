"""The compatibility corpus: every object in tests/corpus/bpf loaded by bpfkit and by libbpf.

libbpf here is the system's libbpf-dev (Debian's 1.1), driven by tests/corpus/loader.c,
which this test builds with the system C compiler.  For each object (and each autoload
variant a source asks for with ``// corpus: autoload-off NAME...``) both loaders must give
the same verdict (loaded, or the same errno), the same program type and expected attach
type per program, and the same number of translated instructions in the kernel.

Where libbpf 1.1 is older than this kernel (``EXPECTED_DIFFERENCES``) the test asserts
the recorded difference instead, so it fails when either side changes;
docs/libbpf-compat.md explains each one.
"""

from __future__ import annotations

import errno
import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import BUILD_DIR

CORPUS = Path(__file__).resolve().parent / "corpus"
SOURCES = sorted((CORPUS / "bpf").glob("*.bpf.c"))
OUT = BUILD_DIR / "corpus"
PIN_ROOT = "/sys/fs/bpf"

#: object -> (why libbpf 1.1 differs, what libbpf 1.1 answers: the open/load errno)
EXPECTED_DIFFERENCES: dict[str, tuple[str, int]] = {
    "cil_tcx": ("libbpf 1.1 predates tcx (libbpf 1.3): SEC(\"tcx/ingress\") and "
                "SEC(\"tc/ingress\") are unknown sections to it", -errno.EINVAL),
    "uprobe_multi": ("libbpf 1.1 predates uprobe-multi links (libbpf 1.3): "
                     "SEC(\"uprobe.multi\") is an unknown section to it", -errno.EINVAL),
    "netfilter": ("libbpf 1.1 predates netfilter programs (libbpf 1.2): SEC(\"netfilter\") "
                  "is an unknown section to it", -errno.EINVAL),
}


def variants(src: Path) -> list[tuple[str, ...]]:
    """The full object, plus one run per ``// corpus: autoload-off A B`` line."""
    out: list[tuple[str, ...]] = [()]
    for m in re.finditer(r"^// corpus: autoload-off (.+)$", src.read_text(), re.M):
        out.append(tuple(m.group(1).split()))
    return out


CASES = [(src, off) for src in SOURCES for off in variants(src)]


def _case_id(case: tuple[Path, tuple[str, ...]]) -> str:
    src, off = case
    name = src.name.removesuffix(".bpf.c")
    return name + ("-without-" + "-".join(off) if off else "")


def build_object(src: Path) -> Path:
    from bpfkit.build import compile_bpf
    OUT.mkdir(parents=True, exist_ok=True)
    obj = OUT / (src.name.removesuffix(".c") + ".o")
    if not obj.exists() or obj.stat().st_mtime < src.stat().st_mtime:
        compile_bpf(src, obj)
    return obj


def build_loader() -> Path:
    """tests/corpus/loader.c against the system libbpf (cached by mtime)."""
    src = CORPUS / "loader.c"
    exe = OUT / "corpus-loader"
    if exe.exists() and exe.stat().st_mtime >= src.stat().st_mtime:
        return exe
    cc = shutil.which("gcc") or shutil.which("cc") or shutil.which("clang-19")
    if cc is None or not Path("/usr/include/bpf/libbpf.h").exists():
        pytest.skip("a C compiler and libbpf-dev are needed for the libbpf reference loader")
    OUT.mkdir(parents=True, exist_ok=True)
    subprocess.run([cc, "-O2", "-Wall", "-o", str(exe), str(src), "-lbpf"], check=True)
    return exe


@dataclass
class Outcome:
    err: int  # 0 or -errno
    what: str  # the error message, for the assertion text
    programs: dict[str, tuple[int, int, int]]  # name -> (type, expected attach type, xlated)
    #: kernel map name -> (type, key size, value size, max_entries, flags, BTF key and value
    #: type ids, map_extra), for a loaded object
    maps: dict[str, tuple[int, ...]] = field(default_factory=dict)


def load_libbpf(obj: Path, off: tuple[str, ...]) -> Outcome:
    cmd = [str(build_loader())]
    for name in off:
        cmd += ["-x", name]
    proc = subprocess.run(cmd + [str(obj)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    return Outcome(r["err"], r["warning"].strip(),
                   {p["name"]: (p["type"], p["expected_attach_type"], p["xlated"])
                    for p in r["programs"]},
                   {m["name"]: tuple(m[k] for k in MAP_FIELDS) for m in r["maps"]})


MAP_FIELDS = ("type", "key_size", "value_size", "max_entries", "flags", "btf_key_type_id",
              "btf_value_type_id", "map_extra")


def load_bpfkit(obj: Path, off: tuple[str, ...]) -> Outcome:
    import bpfkit
    from bpfkit.errors import BpfkitError, KernelError
    from bpfkit.spec import CollectionSpec
    spec = CollectionSpec.from_file(obj)
    for name in off:
        spec.programs[name].autoload = False
    types = {n: (int(p.prog_type), int(p.expected_attach_type))
             for n, p in spec.programs.items() if p.autoload}
    try:
        coll = bpfkit.load(spec)
    except KernelError as e:
        return Outcome(-e.errno, str(e), {n: (*t, -1) for n, t in types.items()})
    except BpfkitError as e:
        return Outcome(-1, f"{type(e).__name__}: {e}", {n: (*t, -1) for n, t in types.items()})
    with coll:
        progs = {n: (int(p.type), int(p.expected_attach_type), p.info().xlated_size // 8)
                 for n, p in coll.programs.items()}
        infos = [m.info() for m in coll.maps.values()]
        maps = {i.name: (int(i.type), i.key_size, i.value_size, i.max_entries, i.flags,
                         i.btf_key_type_id, i.btf_value_type_id, i.map_extra) for i in infos}
    return Outcome(0, "", progs, maps)


def as_libbpf_1_1(o: Outcome, sections: dict[str, str]) -> Outcome:
    """What Debian's libbpf 1.1 reports for what bpfkit did, where 1.1 predates a libbpf
    behaviour bpfkit follows (docs/libbpf-compat.md, "Debian's libbpf 1.1")."""
    from bpfkit._consts import AttachType
    progs = {}
    for n, (pt, eat, xl) in o.programs.items():
        # libbpf >= 1.5 loads SEC("usdt") for uprobe-multi links when the kernel has them
        if sections[n].split("/")[0] in ("usdt", "usdt.s") \
                and eat == AttachType.TRACE_UPROBE_MULTI:
            eat = 0
        progs[n] = (pt, eat, xl)
    return Outcome(o.err, o.what, progs, o.maps)


def _describe(o: Outcome) -> str:
    return f"err {o.err} {o.what!r}"


@pytest.mark.requires_root
@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_corpus_object_loads_as_libbpf_does(case: tuple[Path, tuple[str, ...]]) -> None:
    src, off = case
    obj = build_object(src)
    from bpfkit.spec import PIN_BY_NAME, CollectionSpec
    spec = CollectionSpec.from_file(obj)
    sections = {n: p.section for n, p in spec.programs.items()}
    # LIBBPF_PIN_BY_NAME maps land in the shared /sys/fs/bpf: corpus maps are named
    # corpus_*, and each loader starts without them so both create their own
    pins = [Path(PIN_ROOT) / n for n, m in spec.maps.items() if m.pinning == PIN_BY_NAME]
    assert all(p.name.startswith("corpus_") for p in pins), pins

    def unpin() -> None:
        for p in pins:
            p.unlink(missing_ok=True)

    try:
        unpin()
        ours = as_libbpf_1_1(load_bpfkit(obj, off), sections)
        unpin()
        ref = load_libbpf(obj, off)
    finally:
        unpin()
    key = src.name.removesuffix(".bpf.c")
    if key in EXPECTED_DIFFERENCES:
        why, ref_err = EXPECTED_DIFFERENCES[key]
        assert ref.err == ref_err, f"libbpf 1.1 changed ({why}): {_describe(ref)}"
        assert ours.err == 0, f"bpfkit: {_describe(ours)}"
        return
    if ours.err == -1:  # a bpfkit error without an errno: the verdicts must still agree
        assert ref.err != 0, f"bpfkit refused ({ours.what}) but libbpf loaded it"
    else:
        assert ours.err == ref.err, f"bpfkit {_describe(ours)} vs libbpf {_describe(ref)}"
    if ref.err:
        # types are still known from the open step (libbpf prints them after a failed load)
        ref_types = {n: v[:2] for n, v in ref.programs.items()}
        assert {n: v[:2] for n, v in ours.programs.items()} == ref_types
        return
    assert ours.programs == ref.programs
    assert ours.maps == ref.maps


def test_corpus_is_large_enough() -> None:
    assert len(SOURCES) >= 60, f"only {len(SOURCES)} corpus objects"


def corpus_objects() -> list[tuple[Path, tuple[str, ...]]]:
    """For bench/load.py: (object, autoload-off names) of every loadable case."""
    return [(build_object(src), off) for src, off in CASES]
