"""End to end: ``bpfkit export`` with the built-in configs, scraped by a real Prometheus.

A workload process (its pid is the exporter's ``target_tgid``) writes, fails stats, execs
a uniquely named binary and connects over TCP; the test sends UDP over a veth pair.  Then
Prometheus' HTTP API must show exactly what the BPF programs counted.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.requires_root, pytest.mark.allow_fd_leak]

WORKLOAD = r"""
import os, socket, subprocess, sys
exe = sys.argv[1]
out = sys.stdout.fileno()
for line in sys.stdin:
    cmd, *args = line.split()
    if cmd == "write":
        fd = os.open("/dev/null", os.O_WRONLY)
        for _ in range(7):
            os.write(fd, b"x" * 3000)
        os.close(fd)
        for _ in range(5):
            try:
                os.stat("/nonexistent/bpfkit-e2e")
            except FileNotFoundError:
                pass
    elif cmd == "connect":
        for _ in range(2):
            s = socket.create_connection(("127.0.0.1", int(args[0])))
            s.close()
    elif cmd == "exec":
        for _ in range(3):
            subprocess.run([exe], check=True)
    elif cmd == "quit":
        break
    os.write(out, b"ok\n")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, timeout: float = 2.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return bytes(r.read())


def _wait(what: str, fn, timeout: float = 20.0, interval: float = 0.25):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except OSError as e:
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


class Prom:
    def __init__(self, base: str) -> None:
        self.base = base

    def query(self, q: str) -> list[dict]:
        url = f"{self.base}/api/v1/query?" + urllib.parse.urlencode({"query": q})
        data = json.loads(_get(url))
        assert data["status"] == "success", data
        return list(data["data"]["result"])

    def value(self, q: str) -> float | None:
        res = self.query(q)
        if not res:
            return None
        assert len(res) == 1, res
        return float(res[0]["value"][1])


def _proc_uid(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    raise AssertionError("no Uid line")


def test_export_scraped_by_prometheus(tmp_path: Path) -> None:
    prom_bin = shutil.which("prometheus")
    if prom_bin is None:
        pytest.skip("the prometheus server is not installed (make test installs Debian's "
                    "prometheus package)")
    from bpfkit.testing.net import VethPair

    # A binary with a unique comm, so its exec count is exact.
    exe = tmp_path / "bpfkit_e2e_x"
    shutil.copy("/bin/true", exe)
    exe.chmod(0o755)
    workload = subprocess.Popen([sys.executable, "-c", WORKLOAD, str(exe)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    procs: list[subprocess.Popen] = [workload]
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    tcp_port = listener.getsockname()[1]
    exp_port, prom_port = _free_port(), _free_port()
    logs = [open(tmp_path / "exporter.log", "w+"), open(tmp_path / "prometheus.log", "w+")]
    exp_log = logs[0]
    try:
        with VethPair() as veth:
            env = dict(os.environ, IFACE=veth.host)
            exporter = subprocess.Popen(
                [sys.executable, "-c", "import sys; from bpfkit.cli import main; "
                 "sys.exit(main(sys.argv[1:]))", "export", "syscalls", "execs",
                 "tcp_connects", "write_sizes", "packets", "--listen",
                 f"127.0.0.1:{exp_port}", "--const", f"target_tgid={workload.pid}",
                 "--user", "nobody", "--bpf-stats", "--backend", "builtin"],
                env=env, stdout=exp_log, stderr=subprocess.STDOUT)
            procs.append(exporter)

            def exporter_up() -> bool:
                if exporter.poll() is not None:
                    exp_log.seek(0)
                    raise AssertionError(f"exporter exited {exporter.returncode}:\n"
                                         f"{exp_log.read()}")
                return b"bpfkit_export_programs_loaded" in _get(
                    f"http://127.0.0.1:{exp_port}/metrics")

            _wait("the exporter", exporter_up, timeout=60)
            assert _proc_uid(exporter.pid) == 65534, "--user nobody did not drop privileges"

            cfg = tmp_path / "prometheus.yml"
            cfg.write_text(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                "scrape_configs:\n  - job_name: bpfkit\n    scrape_interval: 1s\n"
                "    scrape_timeout: 900ms\n    static_configs:\n"
                f"      - targets: ['127.0.0.1:{exp_port}']\n")
            prom = subprocess.Popen(
                [prom_bin, f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
                stdout=subprocess.DEVNULL, stderr=logs[1])
            procs.append(prom)
            p = Prom(f"http://127.0.0.1:{prom_port}")
            _wait("prometheus to be ready",
                  lambda: _get(f"http://127.0.0.1:{prom_port}/-/ready").startswith(b"Prometheus"))

            # Events.
            assert workload.stdin is not None and workload.stdout is not None
            for cmd in ("write", f"connect {tcp_port}", "exec"):
                workload.stdin.write(cmd + "\n")
                workload.stdin.flush()
                assert workload.stdout.readline().strip() == "ok"
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                for _ in range(5):
                    u.sendto(b"hello", (veth.peer_ip, 9))

            # What Prometheus scraped.
            _wait("the exporter to be scraped", lambda: p.value('up{job="bpfkit"}') == 1)
            bucket = ('sum(bpf_write_size_bytes_bucket{le="4096"}) - '
                      'sum(bpf_write_size_bytes_bucket{le="2048"})')
            _wait("7 writes of 3000 bytes", lambda: p.value(bucket) == 7)
            assert p.value("bpf_write_size_bytes_sum") >= 7 * 3000
            assert p.value('bpf_syscalls_total{syscall="write"}') >= 7 + 3
            _wait("5 failed stats", lambda: (p.value(
                'bpf_syscall_errors_total{syscall="newfstatat",errno="ENOENT"}') or 0) >= 5)
            _wait("3 execs", lambda: p.value('bpf_execs_total{comm="bpfkit_e2e_x"}') == 3)
            res = p.query('bpf_execs_total{comm="bpfkit_e2e_x"}')
            assert res[0]["metric"]["uid"] == "0"
            with open("/proc/self/cgroup") as f:
                my_cgroup = f.read().strip().rpartition(":")[2]
            assert res[0]["metric"]["cgroup"] == my_cgroup
            _wait("2 TCP connects", lambda: p.value(
                f'bpf_tcp_connects_total{{daddr="127.0.0.1",dport="{tcp_port}",'
                'family="ipv4"}') == 2)
            _wait("TCP state names", lambda: p.value(
                'bpf_tcp_state_changes_total{state="TCP_SYN_SENT"}'))
            _wait("5 UDP packets", lambda: p.value(
                f'bpf_packets_total{{interface="{veth.host}",direction="egress",'
                'proto="udp"}') == 5)
            assert p.value(f'bpf_packet_bytes_total{{interface="{veth.host}",'
                           'direction="egress",proto="udp"}') == 5 * (14 + 20 + 8 + 5)
            assert p.value('sum(bpfkit_export_programs_loaded)') == 7
            assert p.value('sum(bpfkit_export_probe_attached)') == 7
            assert p.value('sum(bpfkit_export_decode_errors_total)') == 0
            assert p.value('bpfkit_export_bpf_stats_enabled') == 1
            assert (p.value('bpfkit_export_program_run_count_total{program="on_write"}')
                    or 0) >= 10
            assert p.value('bpfkit_export_scrape_duration_seconds') is not None

            exporter.send_signal(signal.SIGTERM)
            assert exporter.wait(10) == 0
    finally:
        listener.close()
        for log in logs:
            log.close()
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()
    # Nothing of the exporter stays attached after it stopped.
    out = subprocess.run(["bpftool", "prog", "show"], capture_output=True, text=True).stdout
    assert "on_write" not in out and "count_egress" not in out

