"""Record types of ring and perf buffers found from the object alone (sizes at the call
sites, matched to BTF/DWARF types), ``--record`` choices, and ``bpfkit run`` showing them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bpfkit.build import compile_bpf
from bpfkit.errors import BpfkitError
from bpfkit.records import (
    RecordChoice,
    call_sites,
    choose_records,
    parse_record_options,
    safe_decoder,
)
from bpfkit.spec import CollectionSpec

BPF = Path(__file__).resolve().parent / "bpf"
BPFKIT = shutil.which("bpfkit", path=str(Path(sys.executable).parent)) or "bpfkit"


@pytest.fixture(scope="module")
def objs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("records")
    return {
        "events": compile_bpf(BPF / "dwarf_events.bpf.c", d / "events.o"),
        "events-O0": compile_bpf(BPF / "dwarf_events.bpf.c", d / "events-O0.o",
                                 extra_flags=["-O0"]),
        "ambiguous": compile_bpf(BPF / "records_ambiguous.bpf.c", d / "amb.o"),
        "anchored": compile_bpf(BPF / "ringbuf_event.bpf.c", d / "anchored.o"),
    }


@pytest.mark.parametrize("which", ["events", "events-O0"])
def test_sizes_found_at_each_call_site(objs: dict[str, Path], which: str) -> None:
    spec = CollectionSpec.from_file(objs[which])
    sites = {(s.program, s.helper, s.map, s.size) for s in call_sites(spec)}
    assert sites == {("on_exec_rb", "ringbuf_reserve", "rb_events", 72),
                     ("on_exec_perf", "perf_event_output", "perf_events", 72)}
    got = choose_records(spec)
    for m in ("rb_events", "perf_events"):
        assert got[m].chosen and got[m].name == "struct event" and got[m].source == "dwarf"
        assert got[m].warning is None and got[m].size == 72


def test_prefers_the_pointer_the_program_writes_through(objs: dict[str, Path]) -> None:
    # BTF has struct event (a dummy global) and struct xdp_md, both 24 bytes; the program
    # writes through its struct event * local, not through its ctx
    ch = choose_records(CollectionSpec.from_file(objs["anchored"]))["events"]
    assert ch.name == "struct event" and ch.source == "btf", ch.warning


def test_ambiguous_and_computed_sizes_warn_and_say_how_to_choose(objs: dict[str, Path]
                                                                  ) -> None:
    spec = CollectionSpec.from_file(objs["ambiguous"])
    got = choose_records(spec)
    amb, var = got["amb"], got["varsize"]
    assert not amb.chosen and amb.candidates == ["struct pair64", "struct quad32"]
    assert amb.warning is not None and "'amb'" in amb.warning
    assert "--record amb=TYPE" in amb.warning and "record=" in amb.warning
    assert not var.chosen and var.sizes == [None]
    assert var.warning is not None and "computed at run time" in var.warning
    # MAP=TYPE decides for that map; a bare TYPE only for maps whose records fit it
    got = choose_records(spec, options={"amb": "quad32"})
    assert got["amb"].name == "quad32" and got["amb"].size == 16
    got = choose_records(spec, bare=["pair64"])
    assert got["amb"].chosen and got["amb"].name == "pair64"
    assert not got["varsize"].chosen
    got = choose_records(CollectionSpec.from_file(objs["events"]), bare=["pair64", "event"])
    assert got["rb_events"].name == "event"  # pair64 is not in this object; event fits
    got = choose_records(spec, options={"amb": "nosuch"})
    assert got["amb"].warning is not None and "no type named 'nosuch'" in got["amb"].warning


def test_record_option_parsing() -> None:
    assert parse_record_options(["rb=event", "perf=struct x,u64_t", "bare"]) == (
        {"rb": "event", "perf": "struct x"}, ["u64_t", "bare"])
    with pytest.raises(BpfkitError, match="MAP=TYPE"):
        parse_record_options(["=event"])


def test_wrong_size_record_is_hex_with_one_warning(objs: dict[str, Path]) -> None:
    ch = choose_records(CollectionSpec.from_file(objs["events"]))["perf_events"]
    warnings: list[str] = []
    dec = safe_decoder(ch, perf=True, warn=warnings.append)
    ok = dec(bytes(72) + bytes(4))  # a perf sample padded to 8 bytes decodes
    assert ok.pid == 0 and ok.kind == 0
    assert dec(b"\x01\x02") == b"\x01\x02" and dec(bytes(80)) == bytes(80)
    assert len(warnings) == 1 and "'perf_events'" in warnings[0] and "2 bytes" in warnings[0]
    ring = safe_decoder(ch, perf=False, warn=warnings.append)
    assert ring(bytes(76)) == bytes(76)  # a ring buffer record must be exact
    assert isinstance(RecordChoice("x"), RecordChoice)


# --------------------------------------------------------------------------- bpfkit run

def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BPFKIT, "run", *args], capture_output=True, text=True, timeout=90,
                          env={**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "")})


@pytest.mark.requires_root
def test_run_shows_fields_and_enum_names_without_dummy_globals(objs: dict[str, Path],
                                                               tmp_path: Path) -> None:
    exe = tmp_path / "bkrec_true"
    shutil.copy("/bin/true", exe)
    p = _run(str(objs["events"]), "--", str(exe))
    assert p.returncode == 0, p.stderr
    assert "warning" not in p.stderr, p.stderr
    rb = [x for x in p.stdout.splitlines() if x.startswith("rb_events:") and "bkrec_true" in x]
    pf = [x for x in p.stdout.splitlines() if x.startswith("perf_events:") and "bkrec_true" in x]
    assert rb and pf, p.stdout
    assert "kind: EV_EXEC" in rb[0] and "comm: 'bkrec_true'" in rb[0] and "prio: 17" in rb[0]
    assert "kind: EV_EXIT" in pf[0] and "grid: [[0, 0, 0], [0, 0, -7]]" in pf[0]
    p = _run(str(objs["events"]), "--json", "--", str(exe))
    assert p.returncode == 0, p.stderr
    events = [json.loads(x) for x in p.stdout.splitlines()]
    mine = [e for e in events if e["type"] == "event" and e["data"]["comm"] == "bkrec_true"]
    assert {e["map"]: e["data"]["kind"] for e in mine} == {"rb_events": "EV_EXEC",
                                                           "perf_events": "EV_EXIT"}
    assert all(e["data"]["flags"] == 5 and e["data"]["u"]["as_u32"] == 0x01020304
               for e in mine)


@pytest.mark.requires_root
def test_run_stripped_object_is_hex_with_a_warning(objs: dict[str, Path],
                                                   tmp_path: Path) -> None:
    strip = shutil.which("llvm-strip-19") or shutil.which("llvm-strip")
    if strip is None:
        pytest.skip("llvm-strip is not installed (the llvm-19 package has it)")
    out = tmp_path / "stripped.o"
    subprocess.run([strip, "--strip-debug", str(objs["events"]), "-o", str(out)], check=True)
    exe = tmp_path / "bkrec_strip"
    shutil.copy("/bin/true", exe)
    p = _run(str(out), "--", str(exe))
    assert p.returncode == 0, p.stderr
    warns = [x for x in p.stderr.splitlines() if x.startswith("warning:")]
    assert len(warns) == 2 and all("no DWARF" in w and "--record" in w for w in warns), warns
    rb = [x for x in p.stdout.splitlines() if x.startswith("rb_events: ")]
    assert rb and all(len(x.split(": ", 1)[1]) == 144 for x in rb)  # 72 bytes of hex
    # --record names a map the object lacks: a usage error naming the maps it has
    p = _run(str(out), "--record", "nosuch=event", "--duration", "0.1")
    assert p.returncode == 1 and "rb_events" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.requires_root
def test_python_record_name_falls_back_to_dwarf(objs: dict[str, Path], tmp_path: Path) -> None:
    import bpfkit
    exe = tmp_path / "bkrec_py"
    shutil.copy("/bin/true", exe)
    with bpfkit.load(objs["events"]) as coll:
        coll.programs["on_exec_rb"].attach()
        with bpfkit.RingBuffer(coll.maps["rb_events"], record="event") as rb:
            subprocess.run([str(exe)], check=True)
            got = None
            deadline = time.monotonic() + 10
            for e in rb.read(timeout=2.0):
                if e.comm == "bkrec_py":
                    got = e
                    break
                if time.monotonic() > deadline:
                    break
        assert got is not None and got.kind.name == "EV_EXEC" and got.prio == 17
        with pytest.raises(BpfkitError, match="'nosuch'.*DWARF"):
            bpfkit.RingBuffer(coll.maps["rb_events"], record="nosuch")


def test_histogram_value_types_are_recognised(tmp_path: Path) -> None:
    from bpfkit.run import hist_slots
    spec = CollectionSpec.from_file(compile_bpf(BPF / "run_types.bpf.c", tmp_path / "rt.o"))
    assert spec.btf is not None
    assert hist_slots(spec.btf, spec.maps["write_sizes"].value_type_id) == "slots"
    assert hist_slots(spec.btf, spec.maps["last_op"].value_type_id) is None  # an enum
    demo = CollectionSpec.from_file(compile_bpf(
        Path(__file__).resolve().parent.parent / "src" / "bpfkit" / "examples" / "demo.bpf.c",
        tmp_path / "demo.o"))
    assert demo.btf is not None
    assert hist_slots(demo.btf, demo.maps["read_size_hist"].value_type_id) == "slots"
    assert hist_slots(demo.btf, demo.maps["opens_by_comm"].value_type_id) is None  # a u64


CHILD = """
import ctypes, os
ctypes.CDLL(None).prctl(15, b"bkrun_types", 0, 0, 0)
fd = os.open("/dev/null", os.O_WRONLY)
for n in (3, 5, 100, 5000, 5000):
    os.write(fd, b"x" * n)
"""


@pytest.mark.requires_root
def test_run_prints_histograms_per_key_enums_and_struct_globals() -> None:
    src = str(BPF / "run_types.bpf.c")
    p = _run(src, "--", sys.executable, "-c", CHILD)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "totals = {writes: 5, bytes: 10108, last: OP_BIG}" in out
    assert "on_write.zero" not in out  # a function's static scratch is not a result
    sections = {s.split(":", 1)[0]: s for s in out.split("\n@")}
    small, big = sections["write_sizes[OP_SMALL]"], sections["write_sizes[OP_BIG]"]
    assert "2 -> 3          : 1" in small and "4 -> 7          : 1" in small
    assert "4096 -> 8191       : 2" in big and "4096" not in small
    assert ": OP_BIG" in out[out.index("@last_op"):]
    p = _run(src, "--json", "--", sys.executable, "-c", CHILD)
    assert p.returncode == 0, p.stderr
    maps = json.loads(p.stdout.splitlines()[-1])["maps"]
    assert maps["globals"]["totals"] == {"writes": 5, "bytes": 10108, "last": "OP_BIG"}
    per_key = {h["key"]: h["buckets"] for h in maps["write_sizes"]["per_key"]}
    assert per_key["OP_SMALL"]["1"] == 1 and per_key["OP_BIG"]["12"] == 2
    assert maps["write_sizes"]["type"] == "log2_histogram"
    assert [e["value"] for e in maps["last_op"]] == ["OP_BIG"]
