"""What every tool shares: options users know from BCC/libbpf-tools, hook fallbacks
through the Manager, the output loop, JSON output and clean exit.

A tool subclass declares its object, probes (with fallbacks best first) and how to
print a record or the maps at each interval; the base class does the rest.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from ..cleanup import interrupt_on_term
from ..errors import BpfkitError
from ..manager import Manager, OneOf, Probe

BPF_DIR = Path(__file__).resolve().parent / "bpf"


def object_path(name: str) -> Path:
    """The shipped object for a tool (``bpf/<name>.bpf.o``)."""
    p = BPF_DIR / f"{name}.bpf.o"
    if not p.exists():
        raise BpfkitError(f"the BPF object of tool {name!r} is missing ({p}): rebuild with "
                          "'python tools/build_objects.py'")
    return p


def plain(v: Any) -> Any:
    """A record or value turned into JSON-able data."""
    if hasattr(v, "_asdict"):
        return {k: plain(x) for k, x in v._asdict().items()}
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, bytes):
        return v.decode(errors="replace").rstrip("\0")
    if isinstance(v, int):
        return int(v)
    return v


class Tool:
    """Base of the ready tools.  Subclasses set the class attributes and override hooks."""

    name = ""
    help = ""
    obj = ""                    # object name in bpf/ (default: the tool name)
    events_map: str | None = None   # ring buffer streamed record by record
    record: str | None = None       # BTF type of those records
    interval_tool = False           # prints maps every interval instead of streaming events
    pid_const = "targ_pid"          # constant filtering by process (if the object has it)
    comm_const = "targ_comm"

    # ---------------------------------------------------------------- declaration

    def probes(self, args: argparse.Namespace) -> Sequence[Probe | OneOf]:
        raise NotImplementedError

    def add_args(self, p: argparse.ArgumentParser) -> None:
        """Tool-specific options."""

    def constants(self, args: argparse.Namespace) -> dict[str, Any]:
        return {}

    def header(self, args: argparse.Namespace) -> str | None:
        return None

    def format(self, rec: Any, args: argparse.Namespace) -> str:
        return str(rec)

    def to_json(self, rec: Any, args: argparse.Namespace) -> Any:
        return plain(rec)

    def keep(self, rec: Any, args: argparse.Namespace) -> bool:
        """User-space filtering of a record (after any in-kernel filter)."""
        comm = getattr(args, "comm", None)
        if comm and hasattr(rec, "comm") and plain(rec.comm) != comm:
            return False
        return True

    def report(self, m: Manager, args: argparse.Namespace, final: bool) -> None:
        """Interval tools: print (and usually clear) the maps."""

    def started(self, m: Manager, args: argparse.Namespace) -> None:
        """Called once everything is attached (e.g. to fill a filter map)."""

    # ---------------------------------------------------------------- machinery

    def build_parser(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("-p", "--pid", type=int, help="only this process id")
        p.add_argument("-c", "--comm", help="only commands with this name")
        p.add_argument("--cgroup", help="only tasks in this cgroup v2 path")
        p.add_argument("-T", "--timestamp", action="store_true", help="print a time column")
        p.add_argument("-v", "--verbose", action="store_true",
                       help="say which hook each probe used (and why others were skipped)")
        p.add_argument("--json", action="store_true", help="JSON output (one object a line)")
        p.add_argument("--duration", type=float, default=0.0,
                       help="stop after this many seconds")
        if self.interval_tool:
            p.add_argument("interval", nargs="?", type=float, default=1.0,
                           help="seconds between reports")
            p.add_argument("count", nargs="?", type=int, default=0,
                           help="number of reports (default: until Ctrl-C)")
        self.add_args(p)

    def all_constants(self, m_spec: Any, args: argparse.Namespace) -> dict[str, Any]:
        c = dict(self.constants(args))
        names = set(m_spec.variables)
        if getattr(args, "pid", None) and self.pid_const in names:
            c[self.pid_const] = args.pid
        if getattr(args, "comm", None) and self.comm_const in names:
            c[self.comm_const] = args.comm.encode()[:15]
        return c

    def manager(self, args: argparse.Namespace) -> Manager:
        from ..spec import CollectionSpec
        spec = CollectionSpec.from_file(object_path(self.obj or self.name))
        return Manager(spec, self.probes(args), constants=self.all_constants(spec, args))

    def verbose(self, m: Manager, args: argparse.Namespace) -> None:
        if not args.verbose:
            return
        for st in m.report():
            if st.attached:
                note = f" (fallback; {st.reason})" if st.reason else ""
                print(f"# {st.requested}: using {st.program} on {st.hook}{note}",
                      file=sys.stderr)
            else:
                print(f"# {st.requested}: not attached: {st.reason}", file=sys.stderr)

    def emit(self, rec: Any, args: argparse.Namespace) -> None:
        if not self.keep(rec, args):
            return
        if args.json:
            print(json.dumps(self.to_json(rec, args)), flush=True)
            return
        line = self.format(rec, args)
        if args.timestamp:
            line = datetime.now().strftime("%H:%M:%S") + " " + line
        print(line, flush=True)

    def run(self, args: argparse.Namespace) -> int:
        stop = {"now": False}
        try:
            with interrupt_on_term(), self.manager(args) as m:
                self.verbose(m, args)
                self.started(m, args)
                hdr = self.header(args)
                if hdr and not args.json:
                    if args.timestamp:
                        hdr = f"{'TIME':<8} {hdr}"
                    print(hdr, flush=True)
                if not args.json:
                    print("# attached; Ctrl-C to stop", file=sys.stderr, flush=True)
                return self.loop(m, args, stop)
        except KeyboardInterrupt:
            return 0

    def loop(self, m: Manager, args: argparse.Namespace, stop: dict[str, bool]) -> int:
        end = time.monotonic() + args.duration if args.duration else None
        if self.interval_tool:
            n = 0
            try:
                while not stop["now"]:
                    wait = args.interval
                    if end is not None:
                        wait = max(0.0, min(wait, end - time.monotonic()))
                    time.sleep(wait)
                    n += 1
                    last = bool((args.count and n >= args.count) or
                                (end is not None and time.monotonic() >= end))
                    self.report(m, args, final=last)
                    if last:
                        break
            except KeyboardInterrupt:
                self.report(m, args, final=True)
            return 0
        rb = m.ring_buffer(self.events_map or "events", record=self.record)
        try:
            while not stop["now"]:
                timeout = 0.2
                if end is not None:
                    left = end - time.monotonic()
                    if left <= 0:
                        break
                    timeout = min(timeout, left)
                rb.poll(lambda rec: self.emit(rec, args), timeout=timeout)
            rb.poll(lambda rec: self.emit(rec, args), timeout=0)
        except KeyboardInterrupt:
            pass
        lost = getattr(rb, "lost", 0)
        if lost:
            print(f"# {lost} events lost", file=sys.stderr)
        return 0


def comm_of(v: Any) -> str:
    return plain(v) if not isinstance(v, str) else v


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False
