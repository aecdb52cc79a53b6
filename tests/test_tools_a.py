"""The ready tools opensnoop, writesize, netrx, syscount, mkdirsnoop, tcpconnect and
bashreadline, run as a user runs them (``bpfkit <tool> ... --json`` in a subprocess) while
the test causes the events they watch.  Other processes run on this machine, so every
check filters on the pid, command name, file name, port or device the test made."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import pty
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.requires_root

# Scale the tools' --duration (slow emulated kernels under QEMU: BPFKIT_TEST_SLOW=5).
SLOW = float(os.environ.get("BPFKIT_TEST_SLOW", "1"))
BPFKIT = str(Path(sys.executable).parent / "bpfkit")
if not os.path.exists(BPFKIT):
    BPFKIT = shutil.which("bpfkit") or BPFKIT


class ToolRun:
    """``bpfkit <tool> -v ...`` in the background: waits until it has attached (the -v
    report comes after every probe is attached), then collects its output."""

    def __init__(self, *argv: str) -> None:
        args = list(argv)
        for i, a in enumerate(args[:-1]):
            if a == "--duration":
                args[i + 1] = str(float(args[i + 1]) * SLOW)
        self.argv = [BPFKIT, *args, "-v"]
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
            if ": using " in line or line.startswith("# attached"):
                self.ready.set()
        self.ready.set()

    def wait_attached(self, timeout: float = 8.0 * SLOW) -> None:
        if not self.ready.wait(timeout) or self.p.poll() not in (None, 0):
            self.finish(kill=True)
            pytest.fail(f"{' '.join(self.argv)} did not attach: {''.join(self.err)}")
        time.sleep(0.2)  # the remaining -v lines and the start of the loop

    def finish(self, timeout: float = 15.0 * SLOW, kill: bool = False) -> str:
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
        self.out = out
        return out

    @property
    def stderr(self) -> str:
        return "".join(self.err)

    def records(self) -> list[dict[str, Any]]:
        recs = []
        for line in self.out.splitlines():
            line = line.strip()
            if line.startswith("{"):
                recs.append(json.loads(line))
        return recs


def run_tool(argv: list[str], trigger: Any) -> ToolRun:
    r = ToolRun(*argv)
    try:
        r.wait_attached()
        trigger()
    finally:
        out_err = None
        try:
            r.finish()
        except Exception as e:  # pragma: no cover - reported below
            out_err = e
    assert r.p.returncode == 0, f"{' '.join(r.argv)} failed ({r.p.returncode}): {r.stderr}"
    if out_err:
        raise out_err
    return r


def require_hook(hook: str) -> None:
    """Skip when a feature probe shows this kernel lacks the hook family ``--hook`` forces."""
    from bpfkit._consts import AttachType, ProgramType
    from bpfkit.attach import features
    if hook == "kprobe":
        feat = features.has_kprobes()
    elif hook == "fentry":
        feat = features.has_attach_type(ProgramType.TRACING, AttachType.TRACE_FENTRY)
    elif hook == "tp_btf":
        feat = features.has_attach_type(ProgramType.TRACING, AttachType.TRACE_RAW_TP)
    else:
        return
    if not feat:
        pytest.skip(f"--hook {hook}: {feat.reason}")


def set_comm(name: str) -> str:
    """Python for a child that renames itself (PR_SET_NAME) first."""
    return f"import ctypes; ctypes.CDLL(None).prctl(15, {name.encode()!r}, 0, 0, 0)\n"


# --------------------------------------------------------------------------- opensnoop


@pytest.mark.parametrize("hook", ["auto", "fentry"])
def test_opensnoop_opens_errors_and_openat2(tmp_path: Path, hook: str) -> None:
    require_hook(hook)
    tag = f"bkA_open_{os.getpid()}"
    exists = tmp_path / f"{tag}_exists"
    missing = tmp_path / f"{tag}_missing"
    via2 = tmp_path / f"{tag}_openat2"
    exists.write_text("x")
    via2.write_text("y")
    openat2_ok: list[bool] = []

    def trigger() -> None:
        fd = os.open(exists, os.O_RDONLY | os.O_CLOEXEC)
        os.close(fd)
        with pytest.raises(FileNotFoundError):
            os.open(missing, os.O_RDONLY)
        fd = os.open(tmp_path / f"{tag}_created", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        os.close(fd)
        # openat2(2): syscall 437 on x86_64 and arm64, with struct open_how
        how = (ctypes.c_uint64 * 3)(os.O_RDONLY, 0, 0)
        libc = ctypes.CDLL(None, use_errno=True)
        ret = libc.syscall(437, -100, str(via2).encode(), ctypes.byref(how), 24)
        if ret >= 0:
            os.close(ret)
            openat2_ok.append(True)
        time.sleep(0.3)

    r = run_tool(["opensnoop", "--json", "--duration", "2.5", "-p", str(os.getpid()),
                  "--fname", tag, "--hook", hook], trigger)
    recs = r.records()
    assert recs and all(x["pid"] == os.getpid() for x in recs), r.out
    by_path = {x["path"]: x for x in recs}
    ok = by_path[str(exists)]
    assert ok["fd"] >= 0 and ok["errno"] == 0 and "O_CLOEXEC" in ok["flag_names"]
    bad = by_path[str(missing)]
    assert bad["fd"] == -1 and bad["errno"] == errno.ENOENT and bad["error"] == "ENOENT"
    created = by_path[str(tmp_path / f"{tag}_created")]
    assert {"O_WRONLY", "O_CREAT", "O_TRUNC"} <= set(created["flag_names"])
    assert created["mode"] == 0o640
    if openat2_ok:
        assert by_path[str(via2)]["fd"] >= 0
    assert all(x["hook"] in ("fentry", "tracepoint") for x in recs)
    if hook != "auto":
        assert all(x["hook"] == hook for x in recs)
    assert "using" in r.stderr


def test_opensnoop_failed_only_text(tmp_path: Path) -> None:
    tag = f"bkA_fail_{os.getpid()}"
    good = tmp_path / f"{tag}_good"
    good.write_text("x")

    def trigger() -> None:
        os.close(os.open(good, os.O_RDONLY))
        for _ in range(2):
            try:
                os.open(tmp_path / f"{tag}_nope", os.O_RDONLY)
            except FileNotFoundError:
                pass
        time.sleep(0.3)

    r = run_tool(["opensnoop", "-x", "--duration", "2", "--fname", tag], trigger)
    lines = [ln for ln in r.out.splitlines() if tag in ln]
    assert r.out.splitlines()[0].split()[:4] == ["PID", "COMM", "FD", "ERR"]
    assert len(lines) == 2 and all(f"{tag}_nope" in ln for ln in lines), r.out
    assert all(ln.split()[2:4] == ["-1", str(errno.ENOENT)] for ln in lines)


# --------------------------------------------------------------------------- writesize


@pytest.mark.parametrize("hook", ["auto", "fentry", "kprobe"])
def test_writesize_histogram_per_process(hook: str) -> None:
    require_hook(hook)
    sizes = [1, 100, 100, 5000, 70000]

    def trigger() -> None:
        fd = os.open(os.devnull, os.O_WRONLY)
        try:
            for n in sizes:
                os.write(fd, b"x" * n)
        finally:
            os.close(fd)
        time.sleep(0.2)

    r = run_tool(["writesize", "--json", "-p", str(os.getpid()), "--hook", hook,
                  "--duration", "2.5", "1"], trigger)
    recs = [x for x in r.records() if x["pid"] == os.getpid()]
    assert recs, r.out + r.stderr
    counts: dict[tuple[int, int], int] = {}
    for x in recs:
        assert x["uid"] == os.getuid() and x["comm"]
        for b in x["buckets"]:
            counts[(b["low"], b["high"])] = counts.get((b["low"], b["high"]), 0) + b["count"]
    assert counts.get((0, 1), 0) >= 1
    assert counts.get((64, 127), 0) >= 2
    assert counts.get((4096, 8191), 0) >= 1
    assert counts.get((65536, 131071), 0) >= 1


def test_writesize_text_sections() -> None:
    code = set_comm("bkA_wsize") + (
        "import os, time\nfd = os.open(os.devnull, os.O_WRONLY)\n"
        "for _ in range(30): os.write(fd, b'y' * 300)\n")

    def trigger() -> None:
        subprocess.run([sys.executable, "-c", code], check=True)
        time.sleep(0.2)

    r = run_tool(["writesize", "-n", "bkA_wsize", "--duration", "2", "1"], trigger)
    assert ", comm = bkA_wsize" in r.out, r.out
    sections = [ln for ln in r.out.splitlines() if ln.startswith("pid = ")]
    assert sections and all(ln.endswith("comm = bkA_wsize") for ln in sections)
    assert "bytes" in r.out and "distribution" in r.out
    row = [ln for ln in r.out.splitlines() if ln.strip().startswith("256 -> 511")]
    assert row and int(row[0].split(":")[1].split()[0]) >= 30


# --------------------------------------------------------------------------- netrx


def test_netrx_veth_peer_in_netns() -> None:
    from bpfkit.errors import NotSupported
    from bpfkit.testing.net import VethPair
    n, size = 25, 200
    pair = VethPair()
    try:
        pair.open()
    except NotSupported as e:
        pytest.skip(f"this kernel cannot make a veth pair: {e}")
    try:
        def trigger() -> None:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(b"w", (pair.peer_ip, 9))  # resolves ARP first
                time.sleep(0.3)
                for _ in range(n):
                    s.sendto(b"z" * size, (pair.peer_ip, 9))
            time.sleep(0.3)

        r = run_tool(["netrx", "--json", "--duration", "2", "1"], trigger)
        peer = [x for x in r.records() if x["device"] == pair.peer]
    finally:
        pair.close()
    assert peer, r.out + r.stderr
    packets = sum(x["packets"] for x in peer)
    nbytes = sum(x["bytes"] for x in peer)
    assert packets >= n + 1, peer
    assert nbytes >= n * (size + 28)


@pytest.mark.parametrize("hook", ["auto", "kprobe", "tp_btf", "tracepoint"])
def test_netrx_loopback(hook: str) -> None:
    require_hook(hook)

    def trigger() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            rx.bind(("127.0.0.1", 0))
            for _ in range(40):
                tx.sendto(b"q" * 1000, rx.getsockname())
        time.sleep(0.2)

    r = run_tool(["netrx", "--hook", hook, "-i", "lo", "--duration", "1.5", "5"], trigger)
    rows = [ln.split() for ln in r.out.splitlines() if ln.startswith("lo ")]
    assert rows and int(rows[0][1]) >= 40 and int(rows[0][2]) >= 40 * 1028, r.out
    prog = {"kprobe": "kprobe_netif_rx", "tp_btf": "tp_btf_netif_rx",
            "tracepoint": "tp_netif_rx"}.get(hook, "")
    assert f"{prog} on " in r.stderr and "not attached" not in r.stderr


# --------------------------------------------------------------------------- syscount


def _syscalls_child(comm: str, n: int) -> None:
    code = set_comm(comm) + f"import os\nfor _ in range({n}): os.getppid()\n"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("hook", ["raw_tp", "tracepoint"])
def test_syscount_comm_filter_map(hook: str) -> None:
    comm = "bkA_sysc"

    def trigger() -> None:
        _syscalls_child(comm, 500)
        time.sleep(0.2)

    r = run_tool(["syscount", "--json", "-P", "-n", comm, "--hook", hook, "--duration", "2"],
                 trigger)
    assert f"using {'raw_tp_sys_exit' if hook == 'raw_tp' else 'tp_sys_exit'}" in r.stderr
    recs = r.records()
    assert recs, r.out + r.stderr
    assert {x["comm"] for x in recs} == {comm}, recs
    assert sum(x["count"] for x in recs) >= 500


def _bpffs(path: str) -> bool:
    with open("/proc/mounts") as f:
        return any(ln.split()[1] == path and ln.split()[2] == "bpf" for ln in f)


def test_syscount_pin_then_read_from_pin() -> None:
    if not _bpffs("/sys/fs/bpf"):
        pytest.skip("bpffs is not mounted at /sys/fs/bpf")
    from bpfkit.tools.syscount import unpin
    pin = f"/sys/fs/bpf/bkA_syscount_{os.getpid()}"
    comm = "bkA_pinned"
    try:
        first = run_tool(["syscount", "--pin", pin, "-P", "-n", comm, "--json", "--duration",
                          "0.5"], lambda: None)
        assert "pinned under" in first.stderr
        assert sorted(os.listdir(pin)) == ["comm_filter", "counts", "filter_cfg", "link",
                                           "prog"]
        # the first bpfkit has exited: the pinned link keeps counting
        _syscalls_child(comm, 400)
        # any loader can read the pinned map (here: bpfkit's Map, raw bytes)
        from bpfkit.maps import Map
        with Map.from_pin(os.path.join(pin, "counts")) as m:
            raw = dict(m.items())
        # struct data {u64 count; u64 total_ns; char comm[16];}
        assert any(int.from_bytes(v[:8], "little") >= 400
                   and v[16:16 + len(comm)] == comm.encode() for v in raw.values()), raw
        second = run_tool(["syscount", "--from-pin", pin, "--unpin", "--json",
                           "--duration", "0.5"], lambda: None)
        recs = second.records()
        assert {x["comm"] for x in recs} == {comm} and sum(x["count"] for x in recs) >= 400
        assert not os.path.exists(pin)
    finally:
        if os.path.exists(pin):
            unpin(pin)


def test_syscount_pin_refuses_occupied_dir() -> None:
    if not _bpffs("/sys/fs/bpf"):
        pytest.skip("bpffs is not mounted at /sys/fs/bpf")
    from bpfkit.tools.syscount import unpin
    pin = f"/sys/fs/bpf/bkA_syscount_busy_{os.getpid()}"
    try:
        run_tool(["syscount", "--pin", pin, "--duration", "0.3"], lambda: None)
        p = subprocess.run([BPFKIT, "syscount", "--pin", pin, "--duration", "0.3"],
                           capture_output=True, text=True, timeout=15)
        assert p.returncode != 0 and "already pinned" in p.stderr
        p = subprocess.run([BPFKIT, "syscount", "--unpin"], capture_output=True, text=True,
                           timeout=15)
        assert p.returncode != 0 and "--from-pin" in p.stderr
    finally:
        unpin(pin)
    assert not os.path.exists(pin)


# --------------------------------------------------------------------------- mkdirsnoop


def _tmpfs_dir(tmp_path: Path) -> Path:
    """A directory on tmpfs when there is one: on overlayfs vfs_mkdir runs twice a mkdir
    (overlay, then the upper file system), which kernel-function hooks rightly report."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        import tempfile
        return Path(tempfile.mkdtemp(prefix="bkA_", dir=shm))
    return tmp_path


@pytest.mark.parametrize("hook", ["auto", "fentry", "kprobe"])
def test_mkdirsnoop_results(tmp_path: Path, hook: str) -> None:
    require_hook(hook)
    base = _tmpfs_dir(tmp_path)
    try:
        _mkdirsnoop_results(base, hook)
    finally:
        if base != tmp_path:
            shutil.rmtree(base, ignore_errors=True)


def _mkdirsnoop_results(tmp_path: Path, hook: str) -> None:
    a = tmp_path / "bkA_dir_a"

    def trigger() -> None:
        os.mkdir(a, 0o750)
        with pytest.raises(FileExistsError):
            os.mkdir(a)
        dfd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.mkdir("bkA_dir_at", 0o700, dir_fd=dfd)
        finally:
            os.close(dfd)
        time.sleep(0.2)

    r = run_tool(["mkdirsnoop", "--json", "-p", str(os.getpid()), "--hook", hook,
                  "--duration", "2"], trigger)
    recs = [x for x in r.records() if "bkA_dir_" in x["name"]]
    if hook != "auto":
        assert recs and all(x["hook"] == hook for x in recs), r.out
    if recs and recs[0]["hook"] != "tracepoint":
        # vfs_mkdir is not reached when the name exists (the lookup fails first)
        ok = [x for x in recs if x["ret"] == 0]
        assert [x["name"] for x in ok] == ["bkA_dir_a", "bkA_dir_at"], r.out
        assert ok[0]["mode"] & 0o777 == 0o750
        return
    assert len(recs) == 3, r.out
    assert recs[0]["ret"] == 0 and recs[0]["mode"] == 0o750 and recs[0]["name"].endswith(
        "bkA_dir_a")
    assert recs[1]["ret"] == -errno.EEXIST and recs[1]["error"] == "EEXIST"
    assert recs[2]["ret"] == 0 and recs[2]["name"].endswith("bkA_dir_at")
    assert all(x["pid"] == os.getpid() and x["comm"] for x in recs)


# --------------------------------------------------------------------------- tcpconnect


@pytest.mark.parametrize("hook", ["auto", "fentry", "kprobe", "tracepoint"])
def test_tcpconnect_loopback(hook: str) -> None:
    require_hook(hook)
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        port = srv.getsockname()[1]
        client_ports: list[int] = []

        def trigger() -> None:
            with socket.create_connection(("127.0.0.1", port)) as c:
                client_ports.append(c.getsockname()[1])
                a, _ = srv.accept()
                a.close()
            time.sleep(0.3)

        r = run_tool(["tcpconnect", "--json", "-a", "-P", str(port), "--hook", hook,
                      "--duration", "2"], trigger)
    recs = r.records()
    conn = [x for x in recs if x["direction"] == "connect"]
    acc = [x for x in recs if x["direction"] == "accept"]
    assert len(conn) == 1, r.out + r.stderr
    c = conn[0]
    assert c["pid"] == os.getpid() and c["dport"] == port and c["sport"] == client_ports[0]
    assert c["saddr"] == "127.0.0.1" and c["daddr"] == "127.0.0.1" and c["family"] == "ipv4"
    if hook != "auto":
        assert c["hook"] == hook and all(x["hook"] == hook for x in recs)
    assert acc and acc[0]["sport"] == port and acc[0]["dport"] == client_ports[0]


def test_tcpconnect_ipv6_text() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        srv = socket.socket(socket.AF_INET6)
        srv.bind(("::1", 0))
    except OSError as e:
        pytest.skip(f"no IPv6 loopback: {e}")
    with srv:
        srv.listen()
        port = srv.getsockname()[1]

        def trigger() -> None:
            with socket.create_connection(("::1", port)):
                srv.accept()[0].close()
            time.sleep(0.3)

        r = run_tool(["tcpconnect", "-P", str(port), "--duration", "2"], trigger)
    lines = [ln for ln in r.out.splitlines() if f"[::1]:{port}" in ln]
    assert len(lines) == 1 and str(os.getpid()) in lines[0] and " connect " in lines[0], r.out


# --------------------------------------------------------------------------- bashreadline


def _type_into_bash(commands: list[str]) -> int:
    """Run an interactive bash on a pty and type ``commands``; returns its pid."""
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - child
        os.execve("/usr/bin/bash", ["bash", "--norc", "--noprofile", "-i"],
                  {"PATH": "/usr/bin:/bin", "TERM": "dumb", "PS1": "$ "})

    def drain(t: float) -> None:
        end = time.time() + t
        while time.time() < end:
            r, _, _ = select.select([fd], [], [], 0.05)
            if r:
                try:
                    os.read(fd, 4096)
                except OSError:
                    return

    try:
        drain(0.4)
        for cmd in commands:
            os.write(fd, (cmd + "\n").encode())
            drain(0.25)
    finally:
        try:
            os.waitpid(pid, 0)
        finally:
            os.close(fd)
    return pid


@pytest.mark.parametrize("binary", [None, "/usr/bin/bash"])
def test_bashreadline_pty(binary: str | None) -> None:
    if not os.path.exists("/usr/bin/bash"):
        pytest.skip("no /usr/bin/bash")
    tag = f"bkA_typed_{os.getpid()}"
    cmds = [f"echo {tag}_one", f"true {tag}_two", "exit"]
    bash_pid: list[int] = []
    argv = ["bashreadline", "--json", "--duration", "3"]
    if binary:
        argv += ["--binary", binary]
    r = run_tool(argv, lambda: bash_pid.append(_type_into_bash(cmds)))
    mine = [x for x in r.records() if x["pid"] == bash_pid[0]]
    assert [x["command"] for x in mine] == cmds, r.out + r.stderr
    assert all(x["comm"] == "bash" for x in mine)


def test_mkdirsnoop_cgroup_filter(tmp_path: Path) -> None:
    from bpfkit.attach.cgroup import cgroup2_mount
    try:
        root = cgroup2_mount()
    except Exception as e:
        pytest.skip(f"no cgroup2 mount: {e}")
    cg = os.path.join(root, f"bkA_cg_{os.getpid()}")
    os.mkdir(cg)
    try:
        inside = tmp_path / "bkA_cg_inside"
        outside = tmp_path / "bkA_cg_outside"
        code = (f"import os\nopen({os.path.join(cg, 'cgroup.procs')!r}, 'w').write(str(os.getpid()))\n"
                f"os.mkdir({str(inside)!r})\n")

        def trigger() -> None:
            os.mkdir(outside)
            subprocess.run([sys.executable, "-c", code], check=True)
            time.sleep(0.2)

        r = run_tool(["mkdirsnoop", "--json", "--cgroup", cg, "--duration", "2"], trigger)
    finally:
        os.rmdir(cg)
    names = [x["name"] for x in r.records()]
    assert any(n.endswith("bkA_cg_inside") for n in names), r.out + r.stderr
    assert not any(n.endswith("bkA_cg_outside") for n in names)
