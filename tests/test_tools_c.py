"""The tools added for BCC parity (exitsnoop, killsnoop, statsnoop, ...), run as a user
runs them (``bpfkit <tool> ... --json`` in a subprocess) while the test causes known
events, compared with an independent oracle: the workload's own results (wait statuses,
syscall return values), kernel counters, or bpftrace 0.17 run at the same time.  Other
processes run on this machine, so every check filters on what the test made."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from test_tools_a import BPFKIT, run_tool

pytestmark = pytest.mark.requires_root


class Bpftrace:
    """bpftrace 0.17 running a one-liner beside the tool: the independent oracle.  Waits
    for "Attaching N probes..." before the workload starts; ``stop()`` ends it (SIGINT,
    so END blocks and maps print) and returns its stdout (stderr has a harmless
    RLIMIT_MEMLOCK warning here)."""

    def __init__(self, script: str) -> None:
        exe = shutil.which("bpftrace")
        if exe is None:
            pytest.skip("bpftrace is not installed (the oracle of this test)")
        env = dict(os.environ, BPFTRACE_STRLEN="200")  # 64 truncates pytest's tmp paths
        self.p = subprocess.Popen([exe, "-e", script], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env)
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()
        if not self.ready.wait(20):
            self.p.kill()
            pytest.fail("bpftrace did not attach: " + (self.p.stderr.read() if self.p.stderr
                                                        else ""))

    def _read(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            if line.startswith("Attaching"):
                self.ready.set()
                continue
            self.lines.append(line.rstrip("\n"))
        self.ready.set()

    def stop(self) -> list[str]:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
        try:
            self.p.wait(20)
        finally:
            if self.p.poll() is None:
                self.p.kill()
                self.p.wait()
            self.t.join(5)
            for f in (self.p.stdout, self.p.stderr):
                if f is not None:
                    f.close()
        return [ln for ln in self.lines if ln.strip()]


def with_oracle(script: str, argv: list[str], trigger: Callable[[], None]) -> tuple[Any, list[str]]:
    """Run the tool and bpftrace at the same time around ``trigger``."""
    bt = Bpftrace(script)
    try:
        r = run_tool(argv, trigger)
    finally:
        lines = bt.stop()
    return r, lines


def _uniq(prefix: str) -> str:
    """A command name (at most 15 characters) no other process on the machine has."""
    return f"{prefix}{os.getpid() % 100000}"[:15]


def _renamed(name: str, body: str) -> list[str]:
    """argv of a python child that renames itself (PR_SET_NAME) then runs ``body``."""
    return [sys.executable, "-c",
            f"import ctypes, os, sys, time\nctypes.CDLL(None).prctl(15, {name.encode()!r}, 0, 0, 0)\n"
            + body]


# --------------------------------------------------------------------------- exitsnoop


def test_exitsnoop_codes_and_signals_match_wait_status() -> None:
    comm = _uniq("bkexit")
    statuses: dict[int, int] = {}

    def trigger() -> None:
        kids = [subprocess.Popen(_renamed(comm, f"sys.exit({c})")) for c in (0, 3, 7)]
        killed = subprocess.Popen(_renamed(comm, "time.sleep(30)"))
        time.sleep(0.5)
        killed.send_signal(signal.SIGKILL)
        for k in [*kids, killed]:
            _, st = os.waitpid(k.pid, 0)
            k.returncode = 0  # reaped here: keep Popen from waiting again
            statuses[k.pid] = st
        time.sleep(0.3)

    r = run_tool(["exitsnoop", "--json", "--duration", "4", "-n", comm], trigger)
    recs = {x["pid"]: x for x in r.records() if x["comm"] == comm}
    assert set(recs) == set(statuses), (recs, statuses, r.stderr)
    for pid, st in statuses.items():
        x = recs[pid]
        assert x["raw_exit_code"] == st
        if os.WIFSIGNALED(st):
            assert x["signal"] == os.WTERMSIG(st) == signal.SIGKILL and x["exit_code"] is None
        else:
            assert x["exit_code"] == os.WEXITSTATUS(st) and x["signal"] is None
        assert x["ppid"] == os.getpid() and x["age_s"] >= 0


def test_exitsnoop_failed_only_text() -> None:
    comm = _uniq("bkexitx")

    def trigger() -> None:
        for c in (0, 5):
            subprocess.run(_renamed(comm, f"sys.exit({c})"))
        time.sleep(0.3)

    r = run_tool(["exitsnoop", "-x", "--duration", "3", "-n", comm], trigger)
    lines = [ln for ln in r.out.splitlines() if ln.startswith(comm)]
    assert r.out.splitlines()[0].split() == ["PCOMM", "PID", "PPID", "TID", "AGE(s)",
                                             "EXIT_CODE"]
    assert len(lines) == 1 and lines[0].endswith("code 5"), r.out




# --------------------------------------------------------------------------- killsnoop


def test_killsnoop_matches_bpftrace_and_return_values() -> None:
    comm = _uniq("bkkill")
    script = (f'tracepoint:syscalls:sys_enter_kill,tracepoint:syscalls:sys_enter_tgkill '
              f'/comm == "{comm}"/ {{ printf("%d %d\\n", tid, args->sig); }}')
    body = ("import signal, threading\n"
            "signal.signal(signal.SIGUSR1, lambda *a: None)\n"
            "res = []\n"
            "for sig in (0, signal.SIGUSR1, 0):\n"
            "    os.kill(os.getpid(), sig); res.append(0)\n"
            "try:\n    os.kill(999999, 0)\nexcept ProcessLookupError:\n    res.append(-3)\n"
            "signal.pthread_kill(threading.get_ident(), signal.SIGUSR1); res.append(0)\n"
            "print(os.getpid(), res)\n")
    out: list[str] = []

    def trigger() -> None:
        out.append(subprocess.run(_renamed(comm, body), capture_output=True, text=True,
                                  check=True).stdout)
        time.sleep(0.3)

    r, oracle = with_oracle(script, ["killsnoop", "--json", "--duration", "3", "-n", comm],
                            trigger)
    pid_s, res = out[0].split(" ", 1)
    recs = [x for x in r.records() if x["comm"] == comm]
    assert [x["result"] for x in recs] == eval(res), recs
    assert [x["signal"] for x in recs] == [0, signal.SIGUSR1, 0, 0, signal.SIGUSR1]
    assert [x["call"] for x in recs] == ["kill"] * 4 + ["tgkill"]
    assert recs[3]["target"] == 999999 and recs[3]["error"] == "ESRCH"
    assert all(x["pid"] == int(pid_s) for x in recs)
    assert [int(ln.split()[1]) for ln in oracle] == [x["signal"] for x in recs], oracle


# --------------------------------------------------------------------------- statsnoop


def test_statsnoop_paths_and_errors_match_bpftrace(tmp_path: Any) -> None:
    tag = f"bkstat_{os.getpid()}"
    exists = tmp_path / f"{tag}_yes"
    exists.write_text("x")
    missing = tmp_path / f"{tag}_no"
    script = ('tracepoint:syscalls:sys_enter_newfstatat,tracepoint:syscalls:sys_enter_statx '
              f'/pid == {os.getpid()}/ {{ printf("%s\\n", str(args->filename)); }} '
              f'tracepoint:syscalls:sys_enter_statfs /pid == {os.getpid()}/ '
              '{ printf("%s\\n", str(args->pathname)); }')

    def trigger() -> None:
        os.stat(exists)
        with pytest.raises(FileNotFoundError):
            os.stat(missing)
        os.lstat(exists)
        os.statvfs(tmp_path)
        time.sleep(0.3)

    r, oracle = with_oracle(script, ["statsnoop", "--json", "--duration", "3", "-p",
                                     str(os.getpid())], trigger)
    recs = [x for x in r.records() if tag in x["path"] or x["path"] == str(tmp_path)]
    assert [(x["path"], x["errno"]) for x in recs] == [
        (str(exists), 0), (str(missing), 2), (str(exists), 0), (str(tmp_path), 0)], r.out
    assert recs[1]["error"] == "ENOENT" and recs[-1]["call"] == "statfs"
    seen = [ln for ln in oracle if tag in ln or ln == str(tmp_path)]
    assert seen == [x["path"] for x in recs], oracle


# --------------------------------------------------------------------------- syncsnoop


def test_syncsnoop_calls_match_bpftrace(tmp_path: Any) -> None:
    import mmap
    me = os.getpid()
    script = (f'tracepoint:syscalls:sys_enter_sync*,tracepoint:syscalls:sys_enter_fsync,'
              f'tracepoint:syscalls:sys_enter_fdatasync,tracepoint:syscalls:sys_enter_msync '
              f'/pid == {me}/ {{ printf("%s\\n", probe); }}')

    def trigger() -> None:
        with open(tmp_path / "f", "wb+") as f:
            f.write(b"x" * 4096)
            f.flush()
            os.fsync(f.fileno())
            os.fdatasync(f.fileno())
            os.sync()
            m = mmap.mmap(f.fileno(), 4096)
            m[0:1] = b"y"
            m.flush()  # msync
            m.close()
            fd = f.fileno()
        time.sleep(0.3)
        calls.append(fd)

    calls: list[int] = []
    r, oracle = with_oracle(script, ["syncsnoop", "--json", "--duration", "3", "-p", str(me)],
                            trigger)
    recs = r.records()
    assert [x["call"] for x in recs] == ["fsync", "fdatasync", "sync", "msync"], r.out
    assert recs[0]["fd"] == calls[0] and recs[2]["fd"] is None
    assert [ln.rsplit("sys_enter_", 1)[1] for ln in oracle] == [x["call"] for x in recs]


# --------------------------------------------------------------------------- capable


def test_capable_allow_and_deny_match_bpftrace() -> None:
    comm = _uniq("bkcap")
    f = f"/dev/shm/{comm}"  # reachable by uid 65534 (pytest's tmp_path is not)
    with open(f, "w"):
        pass
    body = (f"os.chown({str(f)!r}, 65534, -1)\n"   # root: CAP_CHOWN allowed
            "os.setresuid(65534, 65534, 65534)\n"
            f"try:\n    os.chown({str(f)!r}, 0, -1)\nexcept PermissionError:\n"
            "    print('denied')\n")
    script = (f'tracepoint:capability:cap_capable /comm == "{comm}"/ '
              '{ printf("%d %d\\n", args->cap, args->ret); }')
    out: list[str] = []

    def trigger() -> None:
        out.append(subprocess.run(_renamed(comm, body), capture_output=True, text=True,
                                  check=True).stdout)
        time.sleep(0.3)

    r, oracle = with_oracle(script, ["capable", "--json", "--duration", "3", "-n", comm],
                            trigger)
    os.unlink(f)
    assert out == ["denied\n"]
    recs = [x for x in r.records() if x["comm"] == comm]
    chown = [x for x in recs if x["name"] == "CAP_CHOWN"]
    assert [x["verdict"] for x in chown] == ["allow", "deny"], recs
    assert chown[0]["uid"] == 0 and chown[1]["uid"] == 65534
    assert [(x["cap"], x["ret"]) for x in recs] == [
        tuple(int(v) for v in ln.split()) for ln in oracle], oracle


# --------------------------------------------------------------------------- scheduler

SLEEPER = """
import json, sys, time
def switches():
    with open('/proc/self/status') as f:
        d = dict(l.split(':', 1) for l in f)
    return int(d['voluntary_ctxt_switches']) + int(d['nonvoluntary_ctxt_switches'])
sys.stdin.readline()
before = switches()
t0 = time.monotonic()
for _ in range(N):
    time.sleep(0.002)
t1 = time.monotonic()
after = switches()
print(json.dumps({"switches": after - before, "slept": t1 - t0}), flush=True)
sys.stdin.readline()
"""


class Sleeper:
    """A process that, once told, sleeps ``n`` times 2 ms and reports how many times the
    kernel switched it out meanwhile (/proc/PID/status context switch counters: the
    oracle of the scheduler tools)."""

    def __init__(self, comm: str, n: int = 100) -> None:
        self.p = subprocess.Popen(_renamed(comm, SLEEPER.replace("N", str(n))),
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.result: dict[str, Any] = {}

    def go(self) -> None:
        import json
        assert self.p.stdin is not None and self.p.stdout is not None
        self.p.stdin.write("go\n")
        self.p.stdin.flush()
        self.result = json.loads(self.p.stdout.readline())
        time.sleep(0.3)

    def close(self) -> None:
        if self.p.stdin is not None:
            self.p.stdin.close()
        self.p.wait(10)
        if self.p.stdout is not None:
            self.p.stdout.close()


def _hist_total(recs: list[dict[str, Any]]) -> int:
    return sum(b["count"] for r in recs for b in r["buckets"])


@pytest.mark.parametrize("hook", ["tp_btf", "raw_tp"])
def test_runqlat_counts_every_switch_in_of_the_task(hook: str) -> None:
    s = Sleeper(_uniq("bkrq"))
    try:
        r = run_tool(["runqlat", "--json", "-p", str(s.p.pid), "--hook", hook,
                      "--duration", "3", "3"], s.go)
    finally:
        s.close()
    recs = r.records()
    total = _hist_total(recs)
    # the wake-up by "go" adds one switch-in before the counters are first read
    assert abs(total - (s.result["switches"] + 1)) <= 2, (total, s.result, recs)
    assert all(r["unit"] == "usecs" for r in recs)
    assert f"using {hook}_switch" in r.stderr


@pytest.mark.parametrize("offcpu", [False, True])
def test_cpudist_counts_match_context_switches(offcpu: bool) -> None:
    s = Sleeper(_uniq("bkcd"))
    try:
        r = run_tool(["cpudist", "--json", "-p", str(s.p.pid), *(["-O"] if offcpu else []),
                      "--duration", "3", "3"], s.go)
    finally:
        s.close()
    recs = r.records()
    total = _hist_total(recs)
    # on-CPU: each switch-out while traced, plus the final block on stdin; off-CPU: each
    # switch-in after a traced switch-out
    want = s.result["switches"] + (0 if offcpu else 1)
    assert abs(total - want) <= max(3, want // 20), (total, s.result, recs)
    if offcpu:  # 2 ms sleeps: off-CPU runs of 2-4 ms dominate
        in_2ms = sum(b["count"] for x in recs for b in x["buckets"] if b["low"] == 2048)
        assert in_2ms >= 0.6 * total, recs


def test_offcputime_sleep_stacks_sum_to_the_time_slept() -> None:
    s = Sleeper(_uniq("bkoff"))
    try:
        r = run_tool(["offcputime", "--json", "-p", str(s.p.pid), "3"], s.go)
    finally:
        s.close()
    recs = r.records()
    sleeps = [x for x in recs if "do_nanosleep" in x["kernel_stack"]]
    assert sleeps, recs
    total_s = sum(x["usecs"] for x in sleeps) / 1e6
    assert 0.8 * s.result["slept"] <= total_s <= 1.05 * s.result["slept"], (total_s, s.result)
    assert not sleeps[0]["kernel_stack"][0].startswith("bpf_prog_")
    assert any("nanosleep" in f for x in sleeps for f in x["user_stack"]), sleeps
    assert all(x["tgid"] == s.p.pid for x in recs)


# --------------------------------------------------------------------------- block I/O


@pytest.fixture
def loopdev(tmp_path: Any) -> Any:
    """A loop device of our own over a file in /dev/shm: block I/O nobody else does, and
    its /sys/block/loopN/stat counters as the oracle."""
    losetup = shutil.which("losetup")
    if losetup is None:
        pytest.skip("losetup (util-linux) is not installed")
    backing = f"/dev/shm/bk_loop_{os.getpid()}"
    with open(backing, "wb") as f:
        f.truncate(16 << 20)
    p = subprocess.run([losetup, "-f", "--show", backing], capture_output=True, text=True)
    if p.returncode != 0:
        os.unlink(backing)
        pytest.skip(f"no loop device for block I/O tests: losetup: {p.stderr.strip()}")
    dev = p.stdout.strip()
    try:
        yield dev
    finally:
        subprocess.run([losetup, "-d", dev], capture_output=True)
        os.unlink(backing)


def _disk_stat(dev: str) -> list[int]:
    with open(f"/sys/block/{os.path.basename(dev)}/stat") as f:
        return [int(x) for x in f.read().split()]


def _direct_io(dev: str, sizes: list[int], reads: int = 0) -> None:
    """O_DIRECT writes of these sizes (then ``reads`` 4 KiB reads) on the block device."""
    import mmap
    buf = mmap.mmap(-1, 1 << 20)
    buf.write(b"b" * (1 << 20))
    fd = os.open(dev, os.O_RDWR | os.O_DIRECT)
    try:
        off = 0
        for n in sizes:
            assert os.pwrite(fd, memoryview(buf)[:n], off) == n
            off += n
        for i in range(reads):
            os.preadv(fd, [memoryview(buf)[:4096]], i * 4096)
    finally:
        os.close(fd)


IO_SIZES = [4096] * 5 + [65536] * 3


@pytest.mark.parametrize("hook", ["tp_btf", "tracepoint"])
def test_biolatency_counts_the_disk_stat_completions(loopdev: str, hook: str) -> None:
    stat: list[list[int]] = []

    def trigger() -> None:
        stat.append(_disk_stat(loopdev))
        _direct_io(loopdev, IO_SIZES, reads=2)
        time.sleep(0.3)
        stat.append(_disk_stat(loopdev))

    r = run_tool(["biolatency", "--json", "-F", "-d", loopdev, "--hook", hook,
                  "--duration", "3", "3"], trigger)
    by_op = {x["flags"]: sum(b["count"] for b in x["buckets"]) for x in r.records()}
    reads, writes = (stat[1][i] - stat[0][i] for i in (0, 4))
    assert (by_op.get("Read", 0), by_op.get("Write", 0)) == (reads, writes), (by_op, stat)
    assert writes >= len(IO_SIZES) and reads >= 2


@pytest.mark.parametrize("hook", ["tp_btf", "tracepoint"])
def test_biosnoop_each_request_with_its_process(loopdev: str, hook: str) -> None:
    stat: list[list[int]] = []

    def trigger() -> None:
        stat.append(_disk_stat(loopdev))
        _direct_io(loopdev, IO_SIZES)
        time.sleep(0.3)
        stat.append(_disk_stat(loopdev))

    r = run_tool(["biosnoop", "--json", "-d", loopdev, "--hook", hook, "--duration", "3"],
                 trigger)
    recs = r.records()
    writes = stat[1][4] - stat[0][4]
    sectors = stat[1][6] - stat[0][6]
    assert [x["op"] for x in recs] == ["Write"] * writes, recs
    assert sum(x["bytes"] for x in recs) == sectors * 512 == sum(IO_SIZES)
    assert all(x["disk"] == os.path.basename(loopdev) and x["lat_ms"] >= 0 for x in recs)
    mine = [x for x in recs if x["pid"] == os.getpid()]
    assert len(mine) >= len(recs) - 1, recs  # submitted by this process
    assert sorted({x["hook"] for x in recs}) == [hook]


def test_bitesize_matches_bpftrace(loopdev: str) -> None:
    dev = os.stat(loopdev).st_rdev
    kdev = (os.major(dev) << 20) | os.minor(dev)
    script = (f'tracepoint:block:block_rq_issue /args->dev == {kdev}/ '
              '{ printf("%s %d\\n", comm, args->bytes); }')
    r, oracle = with_oracle(script, ["bitesize", "--json", "-d", loopdev, "--duration", "3",
                                     "3"], lambda: (_direct_io(loopdev, IO_SIZES),
                                                    time.sleep(0.3)))
    got = {(x["comm"], b["low"]): b["count"] for x in r.records() for b in x["buckets"]
           if b["count"]}
    want: dict[tuple[str, int], int] = {}
    for ln in oracle:
        comm, nbytes = ln.rsplit(" ", 1)
        kb = int(nbytes) // 1024
        low = 0 if kb < 2 else 1 << (kb.bit_length() - 1)
        want[(comm, low)] = want.get((comm, low), 0) + 1
    assert got == want, (got, oracle)
    assert sum(want.values()) >= len(IO_SIZES)


# --------------------------------------------------------------------------- irqs


def _proc_softirqs() -> dict[str, int]:
    with open("/proc/softirqs") as f:
        lines = f.read().splitlines()[1:]
    return {ln.split(":")[0].strip().lower(): sum(int(x) for x in ln.split(":")[1].split())
            for ln in lines}


def _proc_irqs() -> dict[str, int]:
    """Handler name -> interrupts, from the numbered lines of /proc/interrupts."""
    ncpu = len(open("/proc/interrupts").readline().split())
    out: dict[str, int] = {}
    for ln in open("/proc/interrupts").read().splitlines()[1:]:
        head, _, rest = ln.partition(":")
        if not head.strip().isdigit():
            continue
        parts = rest.split()
        name = " ".join(parts[ncpu + 2:])
        if name and "," not in name:
            out[name] = out.get(name, 0) + sum(int(x) for x in parts[:ncpu])
    return out


def _udp_burst(n: int) -> None:
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        rx.bind(("127.0.0.1", 0))
        for _ in range(n):
            tx.sendto(b"x" * 64, rx.getsockname())
            rx.recv(100)


def _sandwiched(tool: dict[str, int], outer: tuple[dict[str, int], dict[str, int]],
                inner: tuple[dict[str, int], dict[str, int]], names: Any) -> None:
    """Each count the tool saw lies between the kernel counter's growth inside the tool's
    window (``inner``) and around it (``outer``)."""
    for name in names:
        lo = inner[1].get(name, 0) - inner[0].get(name, 0)
        hi = outer[1].get(name, 0) - outer[0].get(name, 0)
        assert lo <= tool.get(name, 0) <= hi, (name, lo, tool.get(name), hi)


@pytest.mark.parametrize("hook", ["tp_btf", "raw_tp", "tracepoint"])
def test_softirqs_counts_between_proc_softirqs_readings(hook: str) -> None:
    inner: list[dict[str, int]] = []
    a = _proc_softirqs()

    def trigger() -> None:
        inner.append(_proc_softirqs())
        _udp_burst(300)
        time.sleep(0.2)
        inner.append(_proc_softirqs())

    r = run_tool(["softirqs", "-C", "--json", "--hook", hook, "--duration", "3", "3"],
                 trigger)
    b = _proc_softirqs()
    got = {x["softirq"]: x["count"] for x in r.records()}
    assert got.get("net_rx", 0) >= 300 * 0.5, got  # our packets
    _sandwiched(got, (a, b), (inner[0], inner[1]), a)


@pytest.mark.parametrize("hook", ["tp_btf", "tracepoint"])
def test_hardirqs_counts_between_proc_interrupts_readings(hook: str) -> None:
    inner: list[dict[str, int]] = []
    a = _proc_irqs()

    def trigger() -> None:
        inner.append(_proc_irqs())
        with open(f"/var/tmp/bk_irq_{os.getpid()}", "wb") as f:  # disk interrupts
            for _ in range(5):
                f.write(os.urandom(65536))
                f.flush()
                os.fsync(f.fileno())
        os.unlink(f"/var/tmp/bk_irq_{os.getpid()}")
        time.sleep(0.2)
        inner.append(_proc_irqs())

    r = run_tool(["hardirqs", "-C", "--json", "--hook", hook, "--duration", "3", "3"],
                 trigger)
    b = _proc_irqs()
    got = {x["hardirq"]: x["count"] for x in r.records()}
    assert got, r.out
    _sandwiched(got, (a, b), (inner[0], inner[1]), [n for n in a if len(n) < 32])


# --------------------------------------------------------------------------- gethostlatency


def test_gethostlatency_lookups_match_bpftrace_and_their_own_timing() -> None:
    comm = _uniq("bkdns")
    script = (f'uprobe:/lib/x86_64-linux-gnu/libc.so.6:getaddrinfo,'
              f'uprobe:/lib/x86_64-linux-gnu/libc.so.6:gethostbyname /comm == "{comm}"/ '
              '{ printf("%s\\n", str(arg0)); }')
    if not os.path.exists("/lib/x86_64-linux-gnu/libc.so.6"):
        pytest.skip("the bpftrace oracle names Debian's x86_64 libc path")
    body = ("import json, socket\n"
            "t = []\n"
            "for h in ('localhost', '127.0.0.1', 'localhost'):\n"
            "    t0 = time.monotonic(); socket.getaddrinfo(h, 80); t.append(time.monotonic() - t0)\n"
            "t0 = time.monotonic(); socket.gethostbyname('localhost'); t.append(time.monotonic() - t0)\n"
            "print(json.dumps(t))\n")
    out: list[str] = []

    def trigger() -> None:
        out.append(subprocess.run(_renamed(comm, body), capture_output=True, text=True,
                                  check=True).stdout)
        time.sleep(0.3)

    r, oracle = with_oracle(script, ["gethostlatency", "--json", "--duration", "3", "-n",
                                     comm], trigger)
    import json
    own = json.loads(out[0])
    recs = [x for x in r.records() if x["comm"] == comm]
    assert [x["host"] for x in recs] == ["localhost", "127.0.0.1", "localhost",
                                         "localhost"] == oracle, (recs, oracle)
    for x, t in zip(recs, own, strict=True):
        assert 0 < x["lat_ms"] <= t * 1000 + 1, (x, t)


# --------------------------------------------------------------------------- TCP


def test_tcplife_bytes_and_ports_match_the_workload() -> None:
    import socket
    ports: list[int] = []

    def trigger() -> None:
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        ports.append(srv.getsockname()[1])

        def serve() -> None:
            c, _ = srv.accept()
            n = 0
            while n < 100000:
                n += len(c.recv(65536))
            c.sendall(b"y" * 50000)
            c.close()

        t = threading.Thread(target=serve)
        t.start()
        cli = socket.create_connection(srv.getsockname())
        ports.append(cli.getsockname()[1])
        cli.sendall(b"x" * 100000)
        got = 0
        while d := cli.recv(65536):
            got += len(d)
        cli.close()
        t.join()
        srv.close()
        assert got == 50000
        time.sleep(0.3)

    r = run_tool(["tcplife", "--json", "-p", str(os.getpid()), "--duration", "3"], trigger)
    lport, cport = ports
    recs = {x["lport"]: x for x in r.records() if {x["lport"], x["rport"]} == {lport, cport}}
    assert set(recs) == {lport, cport}, r.out
    cli, srv = recs[cport], recs[lport]
    # the kernel's counters include the SYN's and the FIN's sequence numbers
    assert 100000 <= cli["tx_bytes"] <= 100002 and 50000 <= cli["rx_bytes"] <= 50002, cli
    assert 50000 <= srv["tx_bytes"] <= 50002 and 100000 <= srv["rx_bytes"] <= 100002, srv
    assert cli["raddr"] == "127.0.0.1" and cli["pid"] == os.getpid() and cli["ms"] > 0


def test_tcpretrans_syn_retransmits_match_bpftrace() -> None:
    import socket
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    port = srv.getsockname()[1]
    script = (f'tracepoint:tcp:tcp_retransmit_skb /args->dport == {port}/ '
              '{ printf("%d\\n", args->state); }')
    socks: list[socket.socket] = []

    def trigger() -> None:
        # the first connection fills the accept queue: the next one's SYNs are dropped
        # and retransmitted (after 1 s, then 3 s)
        socks.append(socket.create_connection(("127.0.0.1", port)))
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        socks.append(s)
        time.sleep(2.5)

    try:
        r, oracle = with_oracle(script, ["tcpretrans", "--json", "--duration", "4"], trigger)
    finally:
        for s in [*socks, srv]:
            s.close()
    recs = [x for x in r.records() if x["rport"] == port]
    assert recs and [x["state"] for x in recs] == ["SYN_SENT"] * len(recs), r.out
    assert len(recs) == len(oracle) and set(oracle) == {"2"}, (recs, oracle)


# --------------------------------------------------------------------------- mountsnoop


def test_mountsnoop_mount_and_umount_match_bpftrace(tmp_path: Any) -> None:
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    target = str(tmp_path / "mnt")
    os.mkdir(target)
    me = os.getpid()
    script = (f'tracepoint:syscalls:sys_exit_mount,tracepoint:syscalls:sys_exit_umount '
              f'/pid == {me}/ {{ printf("%s %d\\n", probe, args->ret); }}')
    rets: list[int] = []

    def trigger() -> None:
        rets.append(libc.mount(b"bkfs", target.encode(), b"tmpfs", 2 | 4, b"size=1m"))
        rets.append(libc.mount(b"none", target.encode(), b"nosuchfs", 0, None))
        rets.append(libc.umount2(target.encode(), 2))
        time.sleep(0.3)

    r, oracle = with_oracle(script, ["mountsnoop", "--json", "-p", str(me), "--duration", "3"],
                            trigger)
    recs = r.records()
    assert rets[0] == 0 and rets[2] == 0
    assert [(x["call"], x["ret"]) for x in recs] == [("mount", 0), ("mount", -19),
                                                     ("umount", 0)], recs
    m = recs[0]
    assert (m["source"], m["target"], m["fstype"], m["data"]) == ("bkfs", target, "tmpfs",
                                                                  "size=1m")
    assert m["flag_names"] == "MS_NOSUID|MS_NODEV" and recs[1]["error"] == "ENODEV"
    assert recs[2]["flag_names"] == "MNT_DETACH"
    assert m["mnt_ns"] == os.stat(f"/proc/{me}/ns/mnt").st_ino
    assert [ln.split()[1] for ln in oracle] == [str(x["ret"]) for x in recs], oracle


# --------------------------------------------------------------------------- oomkill

OOM_CHILD = """
import os, sys
open(sys.argv[1] + '/cgroup.procs', 'w').write(str(os.getpid()))
b = bytearray(256 << 20)
for i in range(0, len(b), 4096):
    b[i] = 1
"""


@pytest.mark.parametrize("hook", ["tp_btf", "tracepoint"])
def test_oomkill_reports_a_memcg_oom_kill(hook: str) -> None:
    base = "/sys/fs/cgroup/memory"
    if not os.path.exists(f"{base}/cgroup.procs"):
        pytest.skip("no cgroup v1 memory controller at /sys/fs/cgroup/memory to confine an OOM")
    cg = f"{base}/bk_oom_{os.getpid()}_{hook}"
    os.mkdir(cg)
    statuses: list[int] = []
    pids: list[int] = []
    try:
        with open(f"{cg}/memory.limit_in_bytes", "w") as f:
            f.write(str(32 << 20))

        def trigger() -> None:
            p = subprocess.Popen([sys.executable, "-c", OOM_CHILD, cg])
            pids.append(p.pid)
            statuses.append(p.wait(60))
            time.sleep(0.3)

        r = run_tool(["oomkill", "--json", "--hook", hook, "--duration", "4"], trigger)
        with open(f"{cg}/memory.oom_control") as f:
            kills = int(dict(ln.split() for ln in f)["oom_kill"])
    finally:
        os.rmdir(cg)
    assert statuses == [-signal.SIGKILL]
    recs = [x for x in r.records() if x["victim_pid"] == pids[0]]
    assert len(recs) == kills == 1, (r.out, kills)
    assert recs[0]["trigger_pid"] == pids[0]  # its own allocation ran out
    assert recs[0]["pages"] > (32 << 20) // 4096 and recs[0]["hook"] == hook


# --------------------------------------------------------------------------- sslsniff

TLS_PAIR = """
import socket, ssl, threading, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen()
def serve():
    c, _ = srv.accept()
    with ctx.wrap_socket(c, server_side=True) as s:
        d = s.recv(100); s.sendall(b"pong:" + d)
t = threading.Thread(target=serve); t.start()
cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
cctx.check_hostname = False; cctx.verify_mode = ssl.CERT_NONE
with cctx.wrap_socket(socket.create_connection(srv.getsockname())) as s:
    s.sendall(sys.argv[3].encode()); print(s.recv(100).decode())
t.join()
"""


def test_sslsniff_shows_the_plaintext_of_a_tls_exchange(tmp_path: Any) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed (it makes the test's certificate)")
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj",
                    "/CN=localhost", "-days", "1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    secret = f"bk-secret-{os.getpid()}"
    out: list[str] = []

    def trigger() -> None:
        p = subprocess.run([sys.executable, "-c", TLS_PAIR, str(cert), str(key), secret],
                           capture_output=True, text=True, check=True)
        out.append(p.stdout)
        time.sleep(0.3)

    r = run_tool(["sslsniff", "--json", "--duration", "4"], trigger)
    assert out == [f"pong:{secret}\n"]
    recs = [x for x in r.records() if secret in x["data"]]
    got = [(x["func"], x["data"], x["len"]) for x in recs]
    assert got == [("SSL_write", secret, len(secret)), ("SSL_read", secret, len(secret)),
                   ("SSL_write", f"pong:{secret}", len(secret) + 5),
                   ("SSL_read", f"pong:{secret}", len(secret) + 5)], got
    assert len({x["pid"] for x in recs}) == 1 and not any(x["truncated"] for x in recs)


# --------------------------------------------------------------------------- funccount


def test_funccount_user_functions_match_bpftrace() -> None:
    comm = _uniq("bkfc")
    libc = "/lib/x86_64-linux-gnu/libc.so.6"
    if not os.path.exists(libc):
        pytest.skip("the bpftrace oracle names Debian's x86_64 libc path")
    script = (f'uprobe:{libc}:getppid /comm == "{comm}"/ '
              '{ @[probe] = count(); } END { print(@); clear(@); }')
    body = "for _ in range(7):\n    os.getppid()\n"

    def trigger() -> None:
        subprocess.run(_renamed(comm, body), check=True)
        time.sleep(0.3)

    r, oracle = with_oracle(script, ["funccount", "--json", "-n", comm, "--duration", "3",
                                     "c:getp*"], trigger)
    got = {x["func"]: x["count"] for x in r.records()}
    assert got.get("getppid") == 7, got
    want = {ln[2:ln.index("]")].rsplit(":", 1)[1]: int(ln.rsplit(" ", 1)[1])
            for ln in oracle if ln.startswith("@[")}
    assert {k: got.get(k) for k in want} == want, (got, oracle)


def test_funccount_refuses_kernel_functions_without_kprobes() -> None:
    from bpfkit.attach import features
    k = features.has_kprobes()
    if k:
        pytest.skip("this kernel has kprobes: the refusal is for kernels without them")
    p = subprocess.run([BPFKIT, "funccount", "vfs_read"],
                       capture_output=True, text=True)
    assert p.returncode == 1 and k.reason in p.stderr and "LIB:FUNC" in p.stderr, p.stderr
