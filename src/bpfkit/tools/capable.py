"""capable: trace security capability checks, with the capability name and the verdict.

BCC hooks ``cap_capable`` with a kprobe and shows an AUDIT column from its options; the
``capability:cap_capable`` tracepoint used here (tp_btf, else tracepoint) carries the
result instead, so the last column is VERDICT (allow/deny), as in libbpf-tools.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from ..manager import Probe
from .base import TRACE_OPTIONS, Tool, plain

CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
        "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
        "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
        "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
        "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
        "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"]
HOOK_NAMES = {0: "tracepoint", 2: "tp_btf"}


def cap_name(cap: int) -> str:
    return CAPS[cap] if 0 <= cap < len(CAPS) else f"CAP_{cap}"


class Capable(Tool):
    name = "capable"
    help = "trace security capability checks: capability, process, verdict"
    events_map = "events"
    record = "event"
    bcc = "capable"
    options = TRACE_OPTIONS
    filters = {"pid": "targ_pid", "tid": "targ_tid", "uid": "targ_uid", "cgroup": "targ_cgid",
               "name": "targ_comm"}
    hook_families = ("tp_btf", "tracepoint")
    differs = ("the tracepoint gives the verdict, not the audit flag: VERDICT replaces AUDIT, "
               "and every check is shown (BCC's -v); -K/-U stacks and -x are not implemented; "
               "-c PATH is a cgroup v2 path.")

    def add_args(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--unique", action="store_true",
                       help="show each capability once per thread")

    def constants(self, args: argparse.Namespace) -> dict[str, Any]:
        return {"targ_unique": bool(args.unique)}

    def probes(self, args: argparse.Namespace) -> list[Probe]:
        return [self.hook_probe(args, ["tp_btf_capable", "tp_capable"])]

    def header(self, args: argparse.Namespace) -> str:
        return (f"{'TIME':<9}{'UID':<6} {'PID':<7} {'COMM':<16} {'CAP':<4} {'NAME':<21} "
                "VERDICT")

    def format(self, rec: Any, args: argparse.Namespace) -> str:
        verdict = "allow" if rec.ret == 0 else "deny"
        return (f"{time.strftime('%H:%M:%S'):<9}{rec.uid:<6} {rec.pid:<7} "
                f"{plain(rec.comm):<16} {rec.cap:<4} {cap_name(rec.cap):<21} {verdict}")

    def to_json(self, rec: Any, args: argparse.Namespace) -> Any:
        return {"uid": rec.uid, "pid": rec.pid, "tid": rec.tid, "comm": plain(rec.comm),
                "cap": rec.cap, "name": cap_name(rec.cap), "ret": rec.ret,
                "verdict": "allow" if rec.ret == 0 else "deny",
                "hook": HOOK_NAMES.get(rec.hook, "?")}


TOOL = Capable()
