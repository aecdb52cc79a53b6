"""The installed ``bpfkit`` command, run as a user would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bpfkit import Map, MapType, Program, ProgramType, asm

pytestmark = pytest.mark.requires_root

BPFKIT = shutil.which("bpfkit", path=str(Path(sys.executable).parent)) or "bpfkit"


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([BPFKIT, *args], capture_output=True, text=True, timeout=60)
    if check and p.returncode != 0:
        raise AssertionError(f"bpfkit {' '.join(args)} failed ({p.returncode}): {p.stderr}")
    return p


def test_help_lists_commands() -> None:
    out = run("--help").stdout
    for c in ("prog", "map", "link", "btf", "top", "build"):
        assert c in out


def test_prog_list_show_dump() -> None:
    with Program.load(ProgramType.SOCKET_FILTER, [asm.mov64_imm(asm.R0, 5), asm.exit()],
                      name="clitest") as p:
        pid = p.info().id
        rows = json.loads(run("prog", "list", "--json").stdout)
        mine = [r for r in rows if r["id"] == pid]
        assert mine and mine[0]["name"] == "clitest" and mine[0]["type"] == "socket_filter"
        assert "clitest" in run("prog", "list").stdout
        show = json.loads(run("prog", "show", str(pid), "--json").stdout)
        assert show["tag"] == p.info().tag
        dump = run("prog", "dump", str(pid)).stdout
        assert "r0 = 5" in dump and "exit" in dump


def test_map_dump_json_matches_map() -> None:
    path = f"/sys/fs/bpf/bpfkit_cli_{os.getpid()}"
    with Map.create(MapType.HASH, 4, 8, 16, name="climap") as m:
        for i in range(5):
            m[i] = i * 100
        m.pin(path)
        try:
            dumped = json.loads(run("map", "dump", path, "--json").stdout)
            # bpftool's shape: byte lists, no "formatted" for a map without BTF
            got = {bytes(int(x, 16) for x in e["key"]): bytes(int(x, 16) for x in e["value"])
                   for e in dumped if "formatted" not in e}
            assert got == dict(m.items())
            run("map", "update", path, "7", "700")
            assert int.from_bytes(m[7], "little") == 700
            assert run("map", "lookup", path, "7").stdout.strip() == \
                "key: 07 00 00 00  value: bc 02 00 00 00 00 00 00"  # as bpftool prints it
            run("map", "delete", path, "7")
            assert 7 not in m
            miss = run("map", "lookup", path, "99", check=False)
            assert miss.returncode == 1 and "no such key" in miss.stderr
            info = json.loads(run("map", "show", str(m.info().id), "--json").stdout)
            assert info["name"] == "climap" and info["type"] == "hash"
            assert "climap" in run("map", "list").stdout
        finally:
            os.unlink(path)


def test_errors_are_one_sentence_with_exit_code() -> None:
    p = run("map", "show", "999999999", check=False)
    assert p.returncode == 1
    assert p.stderr.startswith("bpfkit: ") and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    assert run("prog", check=False).returncode in (0, 2)


def test_btf_and_link_list() -> None:
    assert "vmlinux" in run("btf", "list").stdout
    assert isinstance(json.loads(run("link", "list", "--json").stdout), list)


def test_top_once_json_sees_runs() -> None:
    with Program.load(ProgramType.SOCKET_FILTER, [asm.mov64_imm(asm.R0, 1), asm.exit()],
                      name="toptest") as p:
        stop = threading.Event()

        def spin() -> None:
            while not stop.is_set():
                p.test_run(data=bytes(32), repeat=1000)
                time.sleep(0.01)
        proc = subprocess.Popen([BPFKIT, "top", "--once", "--json", "-i", "1.5"],
                                stdout=subprocess.PIPE, text=True)
        time.sleep(0.3)  # let it switch stats on
        t = threading.Thread(target=spin)
        t.start()
        out, _ = proc.communicate(timeout=30)
        stop.set()
        t.join()
        stats = {s["id"]: s for s in json.loads(out)}
        mine = stats[p.info().id]
        assert mine["name"] == "toptest"
        assert mine["run_cnt"] > 0 and mine["events_per_s"] > 0 and mine["avg_ns"] > 0


def test_build_compiles_and_reports_compiler_errors(tmp_path: Path) -> None:
    src = tmp_path / "ok.bpf.c"
    src.write_text('#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n'
                   'SEC("xdp") int pass(struct xdp_md *ctx) { return XDP_PASS; }\n'
                   'char LICENSE[] SEC("license") = "GPL";\n')
    out = run("build", str(src), "-o", str(tmp_path / "ok.o")).stdout.strip()
    assert Path(out).read_bytes()[:4] == b"\x7fELF"
    bad = tmp_path / "bad.bpf.c"
    bad.write_text("int f( {\n")
    p = run("build", str(bad), check=False)
    assert p.returncode == 1 and "bad.bpf.c:1" in p.stderr and "error" in p.stderr


def test_feature_reports_per_attach_type_and_helpers() -> None:
    data = json.loads(run("feature", "--json", "--helpers", "kprobe").stdout)
    progs = {p["name"]: p for p in data["program_types"]}
    assert progs["tracepoint"]["supported"] and "tp+" in progs["tracepoint"]["sections"]
    attach = {a["name"]: a for a in data["attach_types"]}
    # probed per attach type: tp_btf works here even where fentry (same prog type) may not
    assert attach["trace_raw_tp"]["supported"]
    if not attach["trace_fentry"]["supported"]:
        assert attach["trace_fentry"]["reason"]
    assert "bpf_map_lookup_elem" in data["helpers"]["kprobe"]
    assert "bpf_probe_read_kernel" in data["helpers"]["kprobe"]
    assert data["isa"] in ("v1", "v2", "v3", "v4")
    text = run("feature").stdout
    assert "program types:" in text and "map types:" in text


def test_trace_pipe_and_cleanup_commands() -> None:
    out = run("cleanup", "--json").stdout
    assert "removed" in json.loads(out)
    p = run("trace-pipe", "--duration", "0.3")
    assert p.returncode == 0
