"""mountsnoop: trace mount(2) and umount2(2): the call with its arguments and result, and
the caller's mount namespace (libbpf-tools' columns ``COMM PID TID MNT_NS CALL``).
"""

from __future__ import annotations

import argparse
import errno
from typing import Any

from ..manager import Probe
from .base import TRACE_OPTIONS, Tool, plain

MS_FLAGS = [(1, "MS_RDONLY"), (2, "MS_NOSUID"), (4, "MS_NODEV"), (8, "MS_NOEXEC"),
            (16, "MS_SYNCHRONOUS"), (32, "MS_REMOUNT"), (64, "MS_MANDLOCK"),
            (128, "MS_DIRSYNC"), (1024, "MS_NOATIME"), (2048, "MS_NODIRATIME"),
            (4096, "MS_BIND"), (8192, "MS_MOVE"), (16384, "MS_REC"), (32768, "MS_SILENT"),
            (1 << 18, "MS_PRIVATE"), (1 << 19, "MS_SLAVE"), (1 << 20, "MS_SHARED"),
            (1 << 21, "MS_RELATIME"), (1 << 24, "MS_STRICTATIME"), (1 << 25, "MS_LAZYTIME")]
UMOUNT_FLAGS = [(1, "MNT_FORCE"), (2, "MNT_DETACH"), (4, "MNT_EXPIRE"), (8, "UMOUNT_NOFOLLOW")]


def flag_names(flags: int, table: list[tuple[int, str]]) -> str:
    names = [n for bit, n in table if flags & bit]
    rest = flags & ~sum(bit for bit, _ in table)
    if rest:
        names.append(hex(rest))
    return "|".join(names) or "0"


class MountSnoop(Tool):
    name = "mountsnoop"
    help = "trace mount() and umount() calls with their arguments"
    bcc = "mountsnoop"
    events_map = "events"
    record = "event"
    options = TRACE_OPTIONS
    filters = {"pid": "targ_pid", "tid": "targ_tid", "uid": "targ_uid", "cgroup": "targ_cgid",
               "name": "targ_comm"}
    differs = ("the new mount API (fsopen/fsmount/move_mount) is not traced; -d is "
               "--duration (libbpf-tools: detailed output), -c PATH a cgroup v2 path.")

    def probes(self, args: argparse.Namespace) -> list[Probe]:
        return [Probe(p) for c in ("mount", "umount") for p in (f"tp_enter_{c}",
                                                                 f"tp_exit_{c}")]

    def header(self, args: argparse.Namespace) -> str:
        return f"{'COMM':<16} {'PID':>7} {'TID':>7} {'MNT_NS':>11} CALL"

    def call(self, rec: Any) -> str:
        ret = rec.ret if rec.ret >= 0 else f"-{errno.errorcode.get(-rec.ret, -rec.ret)}"
        if rec.call == 0:
            return (f'mount("{plain(rec.src)}", "{plain(rec.dest)}", "{plain(rec.fs)}", '
                    f'{flag_names(rec.flags, MS_FLAGS)}, "{plain(rec.data)}") = {ret}')
        return f'umount("{plain(rec.dest)}", {flag_names(rec.flags, UMOUNT_FLAGS)}) = {ret}'

    def format(self, rec: Any, args: argparse.Namespace) -> str:
        return (f"{plain(rec.comm):<16} {rec.pid:>7} {rec.tid:>7} {rec.mnt_ns:>11} "
                f"{self.call(rec)}")

    def to_json(self, rec: Any, args: argparse.Namespace) -> Any:
        err = -rec.ret if rec.ret < 0 else 0
        mount = rec.call == 0
        return {"comm": plain(rec.comm), "pid": rec.pid, "tid": rec.tid, "mnt_ns": rec.mnt_ns,
                "call": "mount" if mount else "umount", "source": plain(rec.src),
                "target": plain(rec.dest), "fstype": plain(rec.fs), "data": plain(rec.data),
                "flags": rec.flags,
                "flag_names": flag_names(rec.flags, MS_FLAGS if mount else UMOUNT_FLAGS),
                "ret": rec.ret, "error": errno.errorcode.get(err) if err else None}


TOOL = MountSnoop()
