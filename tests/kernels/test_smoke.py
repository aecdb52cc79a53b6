"""Smoke tests of the kernel runner itself: are we in the kernel we asked for, with the
file systems BPF tools need, and does the kernel take a kprobe program?"""

from __future__ import annotations

import os
import platform

import pytest

import bpfkit
from bpfkit import asm


@pytest.mark.hook("smoke")
def test_running_the_expected_kernel() -> None:
    """tests/kernels/run.py tells each run which kernel it booted; a mismatch means the
    runner booted the wrong image (or ran the tests on the host)."""
    want = os.environ.get("BPFKIT_EXPECT_KERNEL")
    assert platform.release()
    if want:
        assert platform.release() == want


@pytest.mark.hook("smoke")
def test_bpf_file_systems_mounted() -> None:
    mounts = {(line.split()[1], line.split()[2]) for line in open("/proc/mounts")}
    assert ("/sys/fs/bpf", "bpf") in mounts
    assert ("/sys/kernel/tracing", "tracefs") in mounts or \
        ("/sys/kernel/debug/tracing", "tracefs") in mounts


@pytest.mark.requires_root
@pytest.mark.hook("smoke")
def test_kprobe_pmu_and_program_load() -> None:
    """A raw bpf(2) load of a KPROBE program, and the kprobe PMU to attach it through."""
    pmu = "/sys/bus/event_source/devices/kprobe"
    if not os.path.exists(pmu):
        pytest.skip(f"no {pmu}: this kernel was built without CONFIG_KPROBES")
    with open(f"{pmu}/type") as f:
        assert int(f.read()) > 0
    with bpfkit.Program.load(bpfkit.ProgramType.KPROBE,
                             [asm.mov64_imm(asm.R0, 0), asm.exit()], license="GPL") as prog:
        assert prog.fd >= 0
