"""Session probes: one program at entry and return (uprobe.session, kprobe.session)."""

from __future__ import annotations

import ctypes
import os

import pytest
from conftest import build_bpf

import bpfkit
from bpfkit import AttachType, ProgramType
from bpfkit.attach import features

pytestmark = pytest.mark.requires_root


def test_uprobe_session_counts_entries_and_returns() -> None:
    f = features.has_attach_type(ProgramType.KPROBE, AttachType.TRACE_UPROBE_SESSION)
    if not f.supported:
        pytest.skip(f"uprobe.session: {f.reason}")
    if not os.path.exists("/lib/x86_64-linux-gnu/libc.so.6"):
        pytest.skip("test binds to the x86_64 Debian libc path")
    obj = build_bpf("session.bpf.c")
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    with bpfkit.load(obj, constants={"targ_pid": os.getpid()}) as coll:
        links = coll.attach_all()
        assert len(links) == 1
        for _ in range(7):
            libc.getpid()
        v = coll.variables
        assert v["entries"].value == 7
        assert v["returns"].value == 7
