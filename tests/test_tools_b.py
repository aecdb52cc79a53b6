"""The ready tools sockfilter, tcpstates, pktcount, profile, progtrace and hookcost, run as
a user runs them (``bpfkit <tool> ... --json`` in a subprocess) while the test causes what
they watch: packets through a veth pair into a fresh netns, TCP connections of a process
in a cgroup made for the test, a C program burning CPU in a named function, runs of a BPF
program the test loaded.  Other processes run on this machine, so every check filters on
the interface, port, pid or program id the test made.  Also the flame graph writer."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
import xml.dom.minidom
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bpfkit import Program, ProgramType, asm
from bpfkit.errors import ParseError
from bpfkit.flamegraph import build_tree, parse_folded, render_svg

BPFKIT = str(Path(sys.executable).parent / "bpfkit")
if not os.path.exists(BPFKIT):
    BPFKIT = shutil.which("bpfkit") or BPFKIT

root = pytest.mark.requires_root


class ToolRun:
    """``bpfkit <tool> -v ...`` in the background: waits for a stderr line saying it is
    attached (``ready``), then collects its output."""

    def __init__(self, *argv: str, ready: str = ": using ") -> None:
        self.argv = [BPFKIT, *argv, "-v"]
        self.marker = ready
        self.p = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        self.err: list[str] = []
        self.ready = threading.Event()
        self.t = threading.Thread(target=self._read_err, daemon=True)
        self.t.start()

    def _read_err(self) -> None:
        assert self.p.stderr is not None
        for line in self.p.stderr:
            self.err.append(line)
            if self.marker in line:
                self.ready.set()
        self.ready.set()

    def wait_attached(self, timeout: float = 8.0) -> None:
        if not self.ready.wait(timeout) or self.p.poll() not in (None, 0):
            self.finish(kill=True)
            pytest.fail(f"{' '.join(self.argv)} did not attach: {''.join(self.err)}")
        time.sleep(0.2)

    def finish(self, timeout: float = 20.0, kill: bool = False) -> str:
        assert self.p.stdout is not None
        if kill:
            self.p.kill()
        try:
            out = self.p.stdout.read()
            self.p.wait(timeout)
        finally:
            if self.p.poll() is None:
                self.p.kill()
                self.p.wait()
            self.t.join(5)
            self.p.stdout.close()
            if self.p.stderr is not None:
                self.p.stderr.close()
        if self.p.returncode != 0 and not kill:
            pytest.fail(f"{' '.join(self.argv)} exited {self.p.returncode}: {self.stderr}")
        return out

    @property
    def stderr(self) -> str:
        return "".join(self.err)


def _text(node: Any) -> str:
    return "".join(c.nodeValue or "" for c in node.childNodes)


def jsons(out: str) -> list[Any]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def run_tool(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([BPFKIT, *argv], capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, f"bpfkit {' '.join(argv)} failed: {p.stderr}"
    return p


@pytest.fixture
def veth() -> Iterator[Any]:
    from bpfkit.errors import NotSupported
    from bpfkit.testing.net import VethPair
    vp = VethPair()
    try:
        vp.open()
    except NotSupported as e:   # e.g. a guest kernel without the veth driver
        pytest.skip(f"this kernel cannot create veth pairs: {e}")
    try:
        yield vp
    finally:
        vp.close()


def send_udp(dst: str, n: int, port: int = 9, size: int = 64) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _ in range(n):
            s.sendto(b"u" * size, (dst, port))
            time.sleep(0.002)


def _tcx_and_tc_empty(ifname: str) -> None:
    from bpfkit.attach.net import query_tcx, tc_filters, xdp_state
    for d in ("ingress", "egress"):
        assert query_tcx(ifname, d).prog_ids == [], f"tcx {d} left on {ifname}"
        assert tc_filters(ifname, d) == [], f"tc {d} filter left on {ifname}"
    assert not xdp_state(ifname).prog_id, f"XDP left on {ifname}"


# --------------------------------------------------------------------------- sockfilter


@root
@pytest.mark.allow_fd_leak
def test_sockfilter_counts_udp_on_a_veth(veth: Any) -> None:
    t = ToolRun("sockfilter", "-i", veth.host, "--json", "--duration", "2.5", "--cumulative",
                "1", ready="# socket filter on")
    t.wait_attached()
    send_udp(veth.peer_ip, 30)
    reports = jsons(t.finish())
    assert "socket filter on fd" in t.stderr
    last = reports[-1]["protocols"]
    udp_out = [r for r in last if r["proto"] == "IPv4/UDP" and r["direction"] == "out"]
    assert udp_out and udp_out[0]["packets"] >= 30, last
    assert udp_out[0]["bytes"] >= 30 * (14 + 20 + 8 + 64)


@root
def test_sockfilter_demo_on_a_socket_pair() -> None:
    out = run_tool("sockfilter", "--demo", "--json", "--duration", "1", "1").stdout
    rows = {(r["proto"], r["direction"]): r for rep in jsons(out) for r in rep["protocols"]}
    for proto in ("IPv4/TCP", "IPv4/UDP", "IPv4/ICMP", "IPv6/ICMPv6", "ARP"):
        assert rows[(proto, "in")]["packets"] > 0, rows
    assert rows[("IPv4/TCP", "in")]["bytes"] == rows[("IPv4/TCP", "in")]["packets"] * 74


# --------------------------------------------------------------------------- tcpstates


@pytest.fixture
def cgroup() -> Iterator[str]:
    from bpfkit.attach.cgroup import cgroup2_mount
    path = os.path.join(cgroup2_mount(), f"bpfkit-test-{uuid.uuid4().hex[:8]}")
    os.mkdir(path)
    try:
        yield path
    finally:
        for _ in range(50):
            try:
                os.rmdir(path)
                break
            except OSError:
                time.sleep(0.1)


CONNECT_IN_CGROUP = textwrap.dedent("""
    import os, socket, sys
    with open(os.path.join(sys.argv[1], "cgroup.procs"), "w") as f:
        f.write(str(os.getpid()))
    srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen()
    print(srv.getsockname()[1], flush=True)
    c = socket.create_connection(srv.getsockname()); a, _ = srv.accept()
    c.sendall(b"x" * 1000); got = 0
    while got < 1000:
        got += len(a.recv(4096))
    c.close(); a.close(); srv.close()
""")


@root
@pytest.mark.allow_fd_leak
def test_tcpstates_follows_connections_of_a_cgroup(cgroup: str) -> None:
    t = ToolRun("tcpstates", "--cgroup", cgroup, "--json", "--duration", "2.5")
    t.wait_attached()
    # A connection from outside the cgroup: must not show.
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        outside = srv.getsockname()[1]
        with socket.create_connection(srv.getsockname()):
            srv.accept()[0].close()
    child = subprocess.run([sys.executable, "-c", CONNECT_IN_CGROUP, cgroup],
                           capture_output=True, text=True, timeout=10, check=True)
    port = int(child.stdout.split()[0])
    events = jsons(t.finish())
    assert not [e for e in events if outside in (e["sport"], e["dport"])], \
        "a connection made outside the cgroup was reported"
    mine = [e for e in events if port in (e["sport"], e["dport"])]
    kinds = {e["event"] for e in mine}
    assert {"listen", "connect", "established(active)", "established(passive)",
            "state"} <= kinds, kinds
    client = [e for e in mine if e["dport"] == port and e["sport"] != port]
    assert client and all(e["saddr"] == "127.0.0.1" == e["daddr"] for e in client)
    changes = [(e["old_state"], e["new_state"]) for e in client if e["event"] == "state"]
    assert ("SYN_SENT", "ESTABLISHED") in changes and ("ESTABLISHED", "FIN_WAIT1") in changes
    assert len({e["cookie"] for e in client}) == 1   # one connection, one socket cookie
    server_side = [e for e in mine if e["sport"] == port and e["event"] == "state"]
    assert any(e["bytes_received"] >= 1000 for e in server_side)
    assert any(e["srtt_us"] > 0 for e in client)


# --------------------------------------------------------------------------- pktcount


def _pkt_rows(out: str, ifname: str) -> dict[tuple[str, str], int]:
    got: dict[tuple[str, str], int] = {}
    for rep in jsons(out):
        for r in rep["counts"]:
            if r["interface"] == ifname:
                k = (r["direction"], r["proto"])
                got[k] = got.get(k, 0) + r["packets"]
    return got


@root
@pytest.mark.allow_fd_leak
@pytest.mark.parametrize("mode", ["tcx", "legacy"])
def test_pktcount_tc_both_directions(veth: Any, mode: str) -> None:
    extra = ["--legacy"] if mode == "legacy" else []
    t = ToolRun("pktcount", "-i", veth.host, *extra, "--json", "--duration", "2", "0.5")
    t.wait_attached()
    send_udp(veth.peer_ip, 25)
    from bpfkit import netns
    with netns.enter(veth.ns):
        send_udp(veth.host_ip, 15, port=10)
    rows = _pkt_rows(t.finish(), veth.host)
    want = "tcx/" if mode == "tcx" else "tc/"
    assert f"on {want}ingress:{veth.host}" in t.stderr and f"{want}egress" in t.stderr
    assert rows.get(("egress", "IPv4/UDP"), 0) >= 25, rows
    assert rows.get(("ingress", "IPv4/UDP"), 0) >= 15, rows
    _tcx_and_tc_empty(veth.host)


@root
@pytest.mark.allow_fd_leak
def test_pktcount_xdp_ingress(veth: Any) -> None:
    t = ToolRun("pktcount", "-i", veth.host, "--xdp", "--json", "--duration", "2", "1")
    t.wait_attached()
    from bpfkit import netns
    with netns.enter(veth.ns):
        send_udp(veth.host_ip, 20, port=10)
    rows = _pkt_rows(t.finish(), veth.host)
    assert "xdp" in t.stderr
    assert rows.get(("ingress", "IPv4/UDP"), 0) >= 20, rows
    assert not any(d == "egress" for d, _ in rows)
    _tcx_and_tc_empty(veth.host)


# --------------------------------------------------------------------------- profile

BURN_C = r"""
#include <stdlib.h>
#include <time.h>
volatile unsigned long sink;
__attribute__((noinline)) void bpfkit_burn_cpu(double secs)
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (;;) {
        for (int i = 0; i < 100000; i++)
            sink += i * 7;
        clock_gettime(CLOCK_MONOTONIC, &b);
        if ((b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9 > secs)
            break;
    }
}
int main(int argc, char **argv) { bpfkit_burn_cpu(argc > 1 ? atof(argv[1]) : 3); return 0; }
"""


@pytest.fixture(scope="module")
def burner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        pytest.skip("no C compiler (gcc) to build the CPU burner")
    d = tmp_path_factory.mktemp("burn")
    (d / "burn.c").write_text(BURN_C)
    subprocess.run([gcc, "-O1", "-g", "-fno-omit-frame-pointer", "-o", str(d / "burn"),
                    str(d / "burn.c")], check=True, capture_output=True)
    return d / "burn"


@root
@pytest.mark.allow_fd_leak
def test_profile_names_the_hot_function(burner: Path, tmp_path: Path) -> None:
    svg = tmp_path / "flame.svg"
    with subprocess.Popen([str(burner), "60"]) as b:
        try:
            time.sleep(0.2)
            out = run_tool("profile", "-p", str(b.pid), "-F", "199", "1.5",
                           "--json", "--svg", str(svg)).stdout
            folded = run_tool("profile", "-p", str(b.pid), "-F", "199", "1",
                              "--folded").stdout
        finally:
            b.kill()
    rep = jsons(out)[0]
    assert rep["samples"] > 20 and rep["event"] in ("cycles", "cpu-clock")
    assert rep["top"][0]["function"] == "bpfkit_burn_cpu", rep["top"][:3]
    assert rep["top"][0]["self_percent"] > 50
    assert all(s["pid"] == b.pid for s in rep["stacks"])
    assert any(s["user"][-2:] == ["main", "bpfkit_burn_cpu"] for s in rep["stacks"])
    lines = [ln for ln in folded.splitlines() if ln.strip()]
    assert lines and all(ln.startswith("burn;") for ln in lines)
    hot = sum(int(ln.rsplit(" ", 1)[1]) for ln in lines if "main;bpfkit_burn_cpu" in ln)
    assert hot > 0.5 * sum(int(ln.rsplit(" ", 1)[1]) for ln in lines)
    doc = xml.dom.minidom.parse(str(svg))
    titles = [_text(n) for n in doc.getElementsByTagName("title")]
    assert any(t.startswith("bpfkit_burn_cpu (") for t in titles)


# --------------------------------------------------------------------------- progtrace


@root
@pytest.mark.allow_fd_leak
def test_progtrace_counts_runs_of_a_program() -> None:
    insns = [asm.mov64_imm(asm.R0, 0), asm.exit()]
    with Program.load(ProgramType.SOCKET_FILTER, insns, name="bk_progtrace") as prog:
        pid = prog.info().id
        t = ToolRun("progtrace", "-i", str(pid), "--json", "--duration", "2", "1",
                    ready=f"# prog {pid} ")
        t.wait_attached()
        prog.test_run(bytes(64), repeat=500)
        out = t.finish()
    how = [ln for ln in t.err if ln.startswith(f"# prog {pid} ")][0]
    assert "fentry/fexit" in how or "BPF stats" in how
    rows = [r for rep in jsons(out) for r in rep["programs"] if r["id"] == pid]
    assert sum(r["runs"] for r in rows) == 500, rows
    assert rows[0]["name"] == "bk_progtrace" and rows[0]["type"] == "socket_filter"
    assert rows[0]["avg_ns"] > 0


# --------------------------------------------------------------------------- hookcost


@root
def test_hookcost_table() -> None:
    out = run_tool("hookcost", "--json", "-n", "5000", "-r", "3").stdout
    rep = jsons(out)[0]
    hooks = {h["hook"]: h for h in rep["hooks"]}
    assert set(hooks) == {"tracepoint", "raw_tracepoint", "tp_btf", "fentry", "kprobe",
                          "uprobe"}
    assert rep["baseline_ns"] > 0
    assert hooks["tracepoint"]["available"]   # tracepoints exist on every kernel
    for h in hooks.values():
        if h["available"]:
            assert h["hits"] >= h["calls"] > 0, h     # the program really fired each call
            assert h["ns_per_call"] > 0 and h["overhead_percent"] is not None
        else:
            assert h["reason"], h                      # why the kernel lacks it
    text = run_tool("hookcost", "-n", "3000", "-r", "2", "--hooks", "tracepoint,kprobe").stdout
    assert text.splitlines()[1].startswith("none")
    assert "tracepoint" in text and "kprobe" in text


# --------------------------------------------------------------------------- flame graphs


def test_flamegraph_folded_round_trip() -> None:
    stacks = parse_folded("main;work;hot 30\nmain;work;cold 10\n\nmain;idle 60\n")
    tree = build_tree(stacks)
    assert tree.count == 100 and tree.children["main"].count == 100
    assert tree.children["main"].children["work"].count == 40
    assert tree.depth() == 4
    svg = render_svg(stacks, title="t <&> test")
    doc = xml.dom.minidom.parseString(svg)
    titles = [_text(n) for n in doc.getElementsByTagName("title")]
    assert "hot (30 samples, 30.00%)" in titles and "all (100 samples, 100.00%)" in titles
    rects = doc.getElementsByTagName("rect")
    assert len(rects) == 1 + 6   # background + every frame


def test_flamegraph_escapes_names_and_accepts_a_mapping() -> None:
    svg = render_svg({"a<b>;c&d": 3, "a<b>;\"q\"": 1})
    xml.dom.minidom.parseString(svg)
    assert "a&lt;b&gt;" in svg and "c&amp;d" in svg


@pytest.mark.parametrize("bad", ["main;work", "main;work x", "main -3", " 5"])
def test_flamegraph_rejects_bad_folded_lines(bad: str) -> None:
    with pytest.raises(ParseError):
        parse_folded(bad)
