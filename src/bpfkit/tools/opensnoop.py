"""opensnoop: trace open() calls: process, flags, file name, fd or error.

fentry/fexit on ``do_sys_openat2`` sees open, openat and openat2 at once; where the kernel
refuses fentry, the sys_enter/sys_exit tracepoints of the three syscalls take over.
Flags as BCC's opensnoop (``-x`` only failed opens, ``-n`` process name, ``-T`` TIME(s),
``-U`` UID column, ``-e`` extended); every process filter runs in the BPF code.
"""

from __future__ import annotations

import argparse
import errno
import os
from typing import Any

from ..manager import Probe
from .base import SNOOP_OPTIONS, Tool, companions, plain

HOOK_NAMES = {0: "tracepoint", 1: "raw_tp", 2: "tp_btf", 3: "kprobe", 4: "fentry", 5: "uprobe"}

_FLAG_NAMES = [(os.O_WRONLY, "O_WRONLY"), (os.O_RDWR, "O_RDWR"), (os.O_CREAT, "O_CREAT"),
               (os.O_EXCL, "O_EXCL"), (os.O_NOCTTY, "O_NOCTTY"), (os.O_TRUNC, "O_TRUNC"),
               (os.O_APPEND, "O_APPEND"), (os.O_NONBLOCK, "O_NONBLOCK"),
               (os.O_DSYNC, "O_DSYNC"), (os.O_DIRECTORY, "O_DIRECTORY"),
               (os.O_NOFOLLOW, "O_NOFOLLOW"), (os.O_CLOEXEC, "O_CLOEXEC"),
               (getattr(os, "O_DIRECT", 0), "O_DIRECT"), (getattr(os, "O_PATH", 0), "O_PATH"),
               (getattr(os, "O_TMPFILE", 0), "O_TMPFILE"),
               (getattr(os, "O_NOATIME", 0), "O_NOATIME")]


def flag_names(flags: int) -> list[str]:
    """Symbolic open flags (O_RDONLY when no access bit is set)."""
    out = [] if flags & 3 else ["O_RDONLY"]
    rest = flags
    for bit, name in _FLAG_NAMES:
        # O_TMPFILE includes O_DIRECTORY: name it only when all its bits are there
        if bit and flags & bit == bit and rest & bit:
            out.append(name)
            rest &= ~bit
    if rest & ~3:
        out.append(hex(rest & ~3))
    return out


class OpenSnoop(Tool):
    name = "opensnoop"
    help = "trace open() calls: process, flags, file, errors"
    events_map = "events"
    record = "event"
    bcc = "opensnoop"
    options = (*SNOOP_OPTIONS, "failed")
    flags = {"timestamp": ("-T", "--timestamp"), "time": ("--time",)}
    filters = {"pid": "targ_pid", "tid": "targ_tid", "uid": "targ_uid", "cgroup": "targ_cgid",
               "name": "targ_comm"}
    failed_help = "only failed opens (as BCC's opensnoop)"
    hook_families = ("fentry", "tracepoint")
    differs = ("-n NAME matches the whole process name in the kernel (BCC: a substring); "
               "--fname filters on the file name; -f, -F and -b are not implemented; "
               "-c PATH is a cgroup v2 path (BCC: --cgroupmap).")

    def add_args(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--fname", metavar="SUBSTR", help="only file names containing SUBSTR")
        p.add_argument("-e", "--extended-fields", dest="extended", action="store_true",
                       help="show flags symbolically and the mode")

    def constants(self, args: argparse.Namespace) -> dict[str, Any]:
        return {"targ_failed": True} if args.failed else {}

    def probes(self, args: argparse.Namespace) -> list[Probe]:
        enter = self.hook_probe(args, ["fentry_openat2", "tp_enter_openat"])
        exit_ = self.hook_probe(args, ["fexit_openat2", "tp_exit_openat"])
        return [enter, exit_,
                *companions(enter.program, ["tp_enter_openat2", "tp_enter_open"]),
                *companions(exit_.program, ["tp_exit_openat2", "tp_exit_open"])]

    def keep(self, rec: Any, args: argparse.Namespace) -> bool:
        return not args.fname or args.fname in plain(rec.fname)

    def header(self, args: argparse.Namespace) -> str:
        return f"{'PID':>7} {'COMM':<16} {'FD':>4} {'ERR':>3} {'FLAGS':>8} PATH"

    def format(self, rec: Any, args: argparse.Namespace) -> str:
        fd, err = (rec.ret, 0) if rec.ret >= 0 else (-1, -rec.ret)
        flags = ("|".join(flag_names(rec.flags)) + f" mode={rec.mode:o}" if args.extended
                 else f"{rec.flags:08o}")
        return f"{rec.pid:>7} {plain(rec.comm):<16} {fd:>4} {err:>3} {flags:>8} {plain(rec.fname)}"

    def to_json(self, rec: Any, args: argparse.Namespace) -> Any:
        err = -rec.ret if rec.ret < 0 else 0
        return {"pid": rec.pid, "tid": rec.tid, "uid": rec.uid, "comm": plain(rec.comm),
                "fd": rec.ret if rec.ret >= 0 else -1, "ret": rec.ret, "errno": err,
                "error": errno.errorcode.get(err, str(err)) if err else None,
                "flags": rec.flags, "flag_names": flag_names(rec.flags), "mode": rec.mode,
                "dfd": rec.dfd, "path": plain(rec.fname),
                "hook": HOOK_NAMES.get(rec.hook, str(rec.hook))}


TOOL = OpenSnoop()
