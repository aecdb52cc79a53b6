"""`bpfkit export --config.dir/--config.names`: ebpf_exporter's config format, names,
labels, histogram semantics and health series, checked against a workload's own counts."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bpfkit.export.config import ConfigError
from bpfkit.export.ebpf_exporter import (
    EbpfExporter,
    go_float,
    load_configs,
    parse_config,
    render_go,
)

HERE = Path(__file__).resolve().parent
BPFKIT = shutil.which("bpfkit", path=str(Path(sys.executable).parent)) or "bpfkit"


def test_go_float_matches_client_golang() -> None:
    # strconv.FormatFloat(v, 'g', -1, 64), as the notes on ebpf_exporter's output record
    assert [go_float(v) for v in (1e-06, 0.000128, 1.048576, 524288, 1048576, 1e6, 2048,
                                  0.5, 3500, 12345678, 1.5e-05)] == \
        ["1e-06", "0.000128", "1.048576", "524288", "1.048576e+06", "1e+06", "2048", "0.5",
         "3500", "1.2345678e+07", "1.5e-05"]


def test_config_validation_is_pure_and_names_the_problem() -> None:
    ok = parse_config((HERE / "ee_configs" / "ee_demo.yaml").read_text(), "ee_demo",
                      "ee_demo.yaml", "ee_demo.bpf.o")
    assert [m.name for m in ok.counters] == ["ee_syscalls_total", "ee_writes_total",
                                             "ee_getppid_per_cpu"]
    assert ok.histograms[0].bucket_type == "exp2" and ok.histograms[0].bucket_max == 10
    bad = {
        "metrics: {counters: [{name: x}]}": "needs a name and a help",
        "metrics: {counters: [{name: x, help: y, labels: [{name: a, decoders: [{name: uint}]}]}]}":
            "size must be > 0",
        "metrics: {counters: [{name: x, help: y, labels: [{name: a, size: 4}]}]}":
            "at least one decoder",
        "metrics: {counters: [{name: x, help: y, labels: [{name: a, size: 4, decoders: [{name: nope}]}]}]}":
            "unknown decoder 'nope'",
        "metrics: {counters: [{name: x, help: y, labels: [{name: a, size: 2, decoders: [{name: pci_vendor}]}]}]}":
            "hwdata",
        "metrics: {histograms: [{name: x, help: y, bucket_type: exp2, bucket_min: 3, bucket_max: 3, labels: [{name: b, size: 8, decoders: [{name: uint}]}]}]}":
            "zero size",
        "metrics: {}": "no metrics.counters",
    }
    for text, why in bad.items():
        with pytest.raises(ConfigError, match=why):
            parse_config(text, "t", "t.yaml", "t.bpf.o")


@pytest.fixture
def ee_dir(tmp_path: Path) -> Path:
    from bpfkit.build import compile_bpf
    if not (shutil.which("clang-19") or shutil.which("clang")):
        pytest.skip("clang is not installed (make test installs clang-19)")
    shutil.copy(HERE / "ee_configs" / "ee_demo.yaml", tmp_path / "ee_demo.yaml")
    compile_bpf(HERE / "ee_configs" / "ee_demo.bpf.c", tmp_path / "ee_demo.bpf.o")
    return tmp_path


@pytest.mark.requires_root
def test_metrics_match_the_workload(ee_dir: Path) -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    r, w = os.pipe()
    try:
        with EbpfExporter(load_configs(str(ee_dir), "ee_demo"),
                          constants={"targ_tgid": os.getpid()}) as ex:
            for _ in range(11):
                libc.getppid()
            for _ in range(5):
                os.write(w, b"x" * 100)   # slot 7 (<= 128)
            for _ in range(3):
                os.write(w, b"y" * 1000)  # slot 10 (<= 1024)
            text = render_go(ex.collect())
    finally:
        os.close(r)
        os.close(w)
    lines = text.splitlines()
    assert 'ebpf_exporter_ee_syscalls_total{syscall="getppid"} 11' in lines
    assert f'ebpf_exporter_ee_writes_total{{fd="{w}",kind="small"}} 5' in lines
    assert f'ebpf_exporter_ee_writes_total{{fd="{w}",kind="big"}} 3' in lines
    per_cpu = [ln for ln in lines if ln.startswith("ebpf_exporter_ee_getppid_per_cpu{cpu=")]
    assert per_cpu and sum(int(ln.rsplit(" ", 1)[1]) for ln in per_cpu) == 11
    # exp2: le = 2^i for i in 0..10, cumulative; _sum from slot 11; _count = in-range total
    assert 'ebpf_exporter_ee_write_bytes_bucket{le="64"} 0' in lines
    assert 'ebpf_exporter_ee_write_bytes_bucket{le="128"} 5' in lines
    assert 'ebpf_exporter_ee_write_bytes_bucket{le="512"} 5' in lines
    assert 'ebpf_exporter_ee_write_bytes_bucket{le="1024"} 8' in lines
    assert 'ebpf_exporter_ee_write_bytes_bucket{le="+Inf"} 8' in lines
    assert "ebpf_exporter_ee_write_bytes_sum 3500" in lines
    assert "ebpf_exporter_ee_write_bytes_count 8" in lines
    assert sum(1 for ln in lines if ln.startswith("ebpf_exporter_ee_write_bytes_bucket")) == 12
    # client_golang orders label pairs by name, whatever the config's order
    assert not any("kind=" in ln and ln.index("kind=") < ln.index("fd=") for ln in lines
                   if ln.startswith("ebpf_exporter_ee_writes_total{"))
    # ebpf_exporter's own series
    assert 'ebpf_exporter_enabled_configs{name="ee_demo"} 1' in lines
    assert 'ebpf_exporter_decoder_errors_total{config="ee_demo"} 0' in lines
    info = [ln for ln in lines if ln.startswith("ebpf_exporter_ebpf_program_info{")]
    assert len(info) == 1 and 'program="count_syscalls"' in info[0] and 'config="ee_demo"' in info[0]
    pid = info[0].split('id="')[1].split('"')[0]
    assert f'ebpf_exporter_ebpf_program_attached{{id="{pid}"}} 1' in lines
    assert "# TYPE ebpf_exporter_ee_write_bytes histogram" in lines
    assert "# TYPE ebpf_exporter_ee_syscalls_total counter" in lines


@pytest.mark.requires_root
def test_cli_flags_like_ebpf_exporter(ee_dir: Path) -> None:
    r = subprocess.run([BPFKIT, "export", f"--config.dir={ee_dir}", "--config.names",
                        "ee_demo", "--once"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert 'ebpf_exporter_enabled_configs{name="ee_demo"} 1' in r.stdout
    assert "ebpf_exporter_ee_syscalls_total{syscall=" in r.stdout
    r = subprocess.run([BPFKIT, "export", "--config.dir", str(ee_dir), "--config.names",
                        "nope"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "nope" in r.stderr and "Traceback" not in r.stderr
