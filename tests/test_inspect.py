"""``bpfkit map dump/lookup/show`` and ``prog dump/list/show`` on loaded objects: keys and
values decoded through the kernel-held BTF, helpers named with their ids, source lines and
full program names, compared with bpftool where it applies."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import bpfkit
from bpfkit.build import compile_bpf

pytestmark = pytest.mark.requires_root

BPF = Path(__file__).resolve().parent / "bpf"
BPFKIT = shutil.which("bpfkit", path=str(Path(sys.executable).parent)) or "bpfkit"
BPFTOOL = shutil.which("bpftool")


def _bk(*args: str) -> str:
    p = subprocess.run([BPFKIT, *args], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


def _bpftool(*args: str) -> str:
    if BPFTOOL is None:
        pytest.skip("bpftool is not installed (Debian package bpftool)")
    p = subprocess.run([BPFTOOL, *args], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, str]]:
    obj = compile_bpf(BPF / "inspect_types.bpf.c", tmp_path_factory.mktemp("insp") / "i.o")
    pin = f"/sys/fs/bpf/bkinspect_{os.getpid()}"
    with bpfkit.load(obj, constants={"targ_pid": os.getpid()}) as coll:
        coll.programs["record_getppid_callers"].attach()
        for _ in range(3):
            os.getppid()
        coll.maps["inspect_vals"].pin(pin)
        try:
            yield coll, pin
        finally:
            os.unlink(pin)


def test_map_dump_decodes_through_kernel_btf_like_bpftool(loaded: tuple[object, str]) -> None:
    _coll, pin = loaded
    ours = json.loads(_bk("map", "dump", pin, "--json"))
    comm = Path("/proc/self/comm").read_text().strip()
    assert [e["formatted"] for e in ours] == [
        {"key": os.getpid(), "value": {"pid": os.getpid(), "st": "ST_RUN", "comm": comm,
                                       "count": 1}}]
    theirs = json.loads(_bpftool("-j", "map", "dump", "pinned", pin))
    assert ours == theirs
    text = _bk("map", "dump", pin)
    assert f"{os.getpid()}: {{pid: {os.getpid()}, st: ST_RUN, comm: '" in text
    got = _bk("map", "lookup", pin, str(os.getpid()))
    assert "st: ST_RUN" in got
    assert json.loads(_bk("map", "lookup", pin, str(os.getpid()), "--json")) == theirs[0]


def test_percpu_map_dump_matches_bpftool(loaded: tuple[object, str]) -> None:
    coll, _pin = loaded
    mid = coll.maps["inspect_pcpu"].info().id  # type: ignore[attr-defined]
    ours = json.loads(_bk("map", "dump", str(mid), "--json"))
    theirs = json.loads(_bpftool("-j", "map", "dump", "id", str(mid)))
    assert ours == theirs
    assert sum(c["value"] for c in ours[0]["formatted"]["values"]) == 3


def test_map_show_names_the_btf_types(loaded: tuple[object, str]) -> None:
    _coll, pin = loaded
    info = json.loads(_bk("map", "show", pin, "--json"))
    assert info["key_type"] == "__u32" and info["value_type"] == "struct val"


def test_prog_dump_names_helpers_and_shows_source(loaded: tuple[object, str]) -> None:
    coll, _pin = loaded
    pid = coll.programs["record_getppid_callers"].info().id  # type: ignore[attr-defined]
    ours = _bk("prog", "dump", str(pid)).splitlines()
    theirs = _bpftool("prog", "dump", "xlated", "id", str(pid)).splitlines()
    assert "int record_getppid_callers(void * ctx):" == ours[0] == theirs[0]
    assert "   0: (85) call bpf_get_current_pid_tgid#14" in ours
    assert any(x.endswith("call bpf_get_current_comm#16") for x in ours)
    # everything else is bpftool's text; calls differ only in the number after '#'
    strip = re.compile(r"(call \S+)#\d+$")
    assert [strip.sub(r"\1", x) for x in ours] == [strip.sub(r"\1", x) for x in theirs]
    assert "; bpf_get_current_comm(v.comm, sizeof(v.comm));" in ours
    rows = json.loads(_bk("prog", "dump", str(pid), "--json"))
    assert rows[0]["proto"] == "int record_getppid_callers(void * ctx)"
    assert rows[0]["file"].endswith("inspect_types.bpf.c") and rows[0]["line"] > 0
    linum = _bk("prog", "dump", str(pid), "--linum")
    assert re.search(r"; __u32 pid = .* \[inspect_types\.bpf\.c:\d+\]", linum)


def test_full_program_names(loaded: tuple[object, str]) -> None:
    coll, _pin = loaded
    info = coll.programs["record_getppid_callers"].info()  # type: ignore[attr-defined]
    assert info.name == "record_getppid_"  # what the kernel keeps
    listed = {p["id"]: p for p in json.loads(_bk("prog", "list", "--json"))}
    assert listed[info.id]["name"] == "record_getppid_callers"
    assert json.loads(_bk("prog", "show", str(info.id), "--json"))["name"] == \
        "record_getppid_callers"
    assert any("record_getppid_callers" in x for x in _bk("prog", "list").splitlines())


def test_prog_dump_names_kfuncs_with_their_btf_ids(tmp_path: Path) -> None:
    from bpfkit.btf import BTF_KIND_FUNC, Spec
    obj = compile_bpf(BPF / "inspect_kfunc.bpf.c", tmp_path / "kf.o")
    try:
        coll = bpfkit.load(obj)
    except bpfkit.BpfkitError as e:
        pytest.skip(f"this kernel refuses a tp_btf program calling bpf_task_acquire: {e}")
    with coll:
        pid = coll.programs["on_switch_kfunc"].info().id
        out = _bk("prog", "dump", str(pid))
    kid = Spec.kernel().ids_by_name("bpf_task_acquire", BTF_KIND_FUNC)[0]
    assert f"call bpf_task_acquire#{kid}" in out
    assert "call bpf_task_release#" in out and "; bpf_task_release(t);" in out
