"""The shared argument and output layer of the ready tools (one place, not one copy per tool).

A tool is a :class:`Tool` subclass in its own module (``TOOL = MyTool()``), listed in
``bpfkit.tools.TOOL_MODULES``, with its BPF C in ``bpf/<name>.bpf.c`` (built into the
committed ``.bpf.o`` by ``tools/build_objects.py``).  It declares; this module does the rest.

Options (BCC's letters and meanings)
------------------------------------
``options`` names the common options the tool offers (a tuple of keys of :data:`OPTIONS`);
``flags`` overrides their letters where BCC's tool of the same name uses others (e.g.
execsnoop's ``-t`` is a timestamp, so ``flags = {"tid": ("--tid",)}``).  The keys, with
their default flags and the ``args`` attribute they set:

==============  ===================  ===========  ===========================================
key             flags                dest         meaning
==============  ===================  ===========  ===========================================
``pid``         ``-p/--pid PID``     pid          only this process (tgid)
``tid``         ``-t/--tid TID``     tid          only this thread
``uid``         ``-u/--uid UID``     uid          only this user id
``cgroup``      ``-c/--cgroup PATH`` cgroup       only tasks in this cgroup v2 directory
                                                  (absolute, or relative to the cgroup2 mount)
``name``        ``-n/--name NAME``   name         only processes whose comm is NAME
``failed``      ``-x/--failed``      failed       include failed calls (BCC's ``-x``); the
                                                  tool sets ``failed_help`` if it means more
``time``        ``-T/--time``        time         a TIME column, wall clock HH:MM:SS
``timestamp``   ``--timestamp``      timestamp    a TIME(s) column, seconds since tracing began
``print_uid``   ``-U/--print-uid``   print_uid    a UID column (BCC's ``-U``)
``duration``    ``-d/--duration S``  duration     stop after S seconds (0: until Ctrl-C)
``duration_pos``positional           duration     ``[duration]`` as a positional (profile)
``interval``    positionals          interval,    ``[interval] [count]``: report every
                                     count        interval seconds, count times (0: forever)
==============  ===================  ===========  ===========================================

Always there: ``--json``, ``-v/--verbose`` (which hook each probe used, and why the better
ones were skipped) and, when ``hook_families`` is set, ``--hook FAMILY``.  Numbers are
validated (a pid must be > 0, a duration >= 0...): a bad one is a usage error.

Filters: declared, applied, or refused
--------------------------------------
``filters`` maps each filter key (``pid``, ``tid``, ``uid``, ``cgroup``, ``name``) the tool
applies to HOW it applies it:

- the name of a ``const volatile`` in the object (``"targ_pid"``): set before load.  The
  value is the pid/tid/uid as an int, the comm as bytes (15 chars max), and for ``cgroup``
  the cgroup id (directory inode, what ``bpf_get_current_cgroup_id()`` returns).  The BPF
  code must test it (``tools.h`` has ``pid_allowed()``, ``tid_allowed()``,
  ``uid_allowed()``, ``cgroup_allowed()``, ``comm_allowed()`` and ``task_allowed()``
  for all of them; ``targ_uid`` means "any" at ``(u32)-1``).  A declared constant missing
  from the object is refused at load (a test checks every tool).
- ``"user:FIELD"``: applied in user space on each record's ``FIELD`` (streaming tools).
- ``"tool"``: the tool applies it itself (e.g. a filter map it fills in ``started``).

A filter option the user gives that is not in ``filters`` is refused with one sentence
(``opensnoop: cannot filter by cgroup (-c/--cgroup): its BPF code has no such filter``);
nothing is ever silently ignored.  So a tool may offer ``-u`` only to refuse it clearly.

Hooks: the best one this kernel has
-----------------------------------
Name programs by hook family prefix: ``fentry_``/``fexit_``, ``kprobe_``/``kretprobe_``,
``tp_btf_``, ``raw_tp_``, ``tp_`` (tracepoint).  ``self.hook_probe(args, [candidates best
first], **probe_kw)`` returns a :class:`Probe` whose fallbacks the Manager tries in order
(fentry, else kprobe, else tp_btf/raw_tp/tracepoint), restricted to one family by
``--hook``.  :func:`companions` adds probes that only attach when the lead landed on a given
family (e.g. the other syscall tracepoints a kernel-function hook makes unnecessary).
``tail_calls`` fills prog arrays.  ``-v`` prints the choice; ``--json`` puts it in the
"attached" object.

Output
------
Streaming tools set ``events_map`` (a ring buffer) and ``record`` (its BTF struct), and
implement ``header``/``format`` (text) and ``to_json`` (dict).  The base adds the TIME /
TIME(s) / UID columns, user-space filters, and in JSON a ``"time"`` (epoch seconds) on every
record: the record's own ``ts_ns`` (``bpf_ktime_get_ns()``) when it has one, else when it was
read.  When tracing starts it prints ``# attached; Ctrl-C to stop`` (text) or one JSON object
``{"attached": true, "tool": ..., "time": ..., "probes": [...]}`` on stderr.

Interval tools set ``interval_tool = True`` (offer ``interval`` or their own ``-i``) and
implement ``report(m, args, final)``, printing with :meth:`Tool.print_table` (BCC's count
tables: ``[HH:MM:SS]`` line then aligned columns; JSON: one object per row with ``time``) and
:meth:`Tool.print_histograms` (BCC's log2/linear histograms; JSON: one object per histogram).

Where a tool differs from BCC on purpose, ``differs`` says how; it ends ``--help``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..cleanup import interrupt_on_term
from ..errors import BpfkitError
from ..manager import Manager, OneOf, Probe, ProbeStatus
from ..show import write_line

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


# ----------------------------------------------------------------------------- numbers


def _number(kind: type, low: float, what: str, strict: bool,
            high: float | None = None) -> Callable[[str], Any]:
    def conv(s: str) -> Any:
        try:
            v = kind(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{s!r} is not {what}") from None
        if v != v or v < low or (strict and v == low) or (high is not None and v > high):
            raise argparse.ArgumentTypeError(f"{s!r} is not {what}")
        return v
    conv.__name__ = what
    return conv


positive_int = _number(int, 0, "a positive integer", True)
nonneg_int = _number(int, 0, "an integer >= 0", False)
positive_float = _number(float, 0.0, "a positive number", True, 1e9)
nonneg_float = _number(float, 0.0, "a number >= 0", False, 1e9)
# ids the kernel keeps in 32 bits (pid, tid, uid, CPU number, program id)
positive_u32 = _number(int, 0, "a positive integer below 2^32", True, 0xFFFFFFFF)
nonneg_u32 = _number(int, 0, "an integer from 0 to 4294967295", False, 0xFFFFFFFF)
port_number = _number(int, 0, "a port number (0 to 65535)", False, 65535)


# ----------------------------------------------------------------------------- options


@dataclass(frozen=True)
class Option:
    """A common option: its default flags, its dest and its argparse keywords."""

    flags: tuple[str, ...]
    dest: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    filter: bool = False       # a filter (refused unless the tool declares it)


OPTIONS: dict[str, Option] = {
    "pid": Option(("-p", "--pid"), "pid", {"type": positive_u32, "metavar": "PID",
                                           "help": "only this process id"}, True),
    "tid": Option(("-t", "--tid"), "tid", {"type": positive_u32, "metavar": "TID",
                                           "help": "only this thread id"}, True),
    "uid": Option(("-u", "--uid"), "uid", {"type": nonneg_u32, "metavar": "UID",
                                           "help": "only this user id"}, True),
    "cgroup": Option(("-c", "--cgroup"), "cgroup", {
        "metavar": "PATH", "help": "only tasks in this cgroup v2 directory (absolute, or "
        "relative to the cgroup2 mount)"}, True),
    "name": Option(("-n", "--name"), "name", {"metavar": "NAME",
                                              "help": "only processes named NAME (comm)"},
                   True),
    "failed": Option(("-x", "--failed"), "failed", {"action": "store_true",
                                                    "help": "include failed calls"}),
    "time": Option(("-T", "--time"), "time", {"action": "store_true",
                                              "help": "include a TIME column (HH:MM:SS)"}),
    "timestamp": Option(("--timestamp",), "timestamp", {
        "action": "store_true", "help": "include a TIME(s) column (seconds since start)"}),
    "print_uid": Option(("-U", "--print-uid"), "print_uid", {
        "action": "store_true", "help": "include a UID column"}),
    "duration": Option(("-d", "--duration"), "duration", {
        "type": nonneg_float, "default": 0.0, "metavar": "SECONDS",
        "help": "stop after this many seconds (default: until Ctrl-C)"}),
    "duration_pos": Option((), "duration", {
        "type": nonneg_float, "nargs": "?", "default": 0.0,
        "help": "seconds to run (default: until Ctrl-C)"}),
}

FILTER_WORDS = {"pid": "process id", "tid": "thread id", "uid": "user id",
                "cgroup": "cgroup", "name": "process name"}

#: what most tracing tools offer (snoop tools add ``time``/``timestamp``/``print_uid``)
TRACE_OPTIONS = ("pid", "tid", "uid", "cgroup", "name", "duration")
SNOOP_OPTIONS = (*TRACE_OPTIONS, "time", "timestamp", "print_uid")
INTERVAL_OPTIONS = (*TRACE_OPTIONS, "time", "interval")

# program-name prefix -> hook family (what --hook names)
FAMILIES = {"fentry": "fentry", "fexit": "fentry", "kprobe": "kprobe",
            "kretprobe": "kprobe", "tp_btf": "tp_btf", "raw_tp": "raw_tp", "tp": "tracepoint",
            "uprobe": "uprobe", "uretprobe": "uprobe"}


def family(program: str) -> str:
    """The hook family of a program, from its name prefix (``fexit_x`` -> ``fentry``)."""
    for prefix in sorted(FAMILIES, key=len, reverse=True):
        if program.startswith(prefix + "_"):
            return FAMILIES[prefix]
    return "other"


def chain(candidates: Sequence[str], hook: str | None) -> tuple[str, list[str]]:
    """(program, fallbacks) for a Probe: all candidates best first, or only the ``hook``
    family when the user forces one."""
    cands = list(candidates)
    if hook and hook != "auto":
        cands = [c for c in cands if family(c) == hook]
        if not cands:
            have = sorted({family(c) for c in candidates})
            raise BpfkitError(f"--hook {hook}: this tool has no such hook "
                              f"(it has: {', '.join(have)})")
    return cands[0], cands[1:]


def companions(lead: str, programs: Sequence[str], when: str = "tracepoint") -> list[Probe]:
    """Optional probes that attach only when ``lead`` used the ``when`` hook family."""
    return [Probe(prog, uid=f"companion:{lead}:{when}", optional=True) for prog in programs]


class CompanionManager(Manager):
    """A Manager whose probes with ``uid`` ``"companion:<lead>:<family>"`` attach only when
    probe ``lead`` ended up on a program of that hook family (a syscall tracepoint covers
    one syscall while fentry on the kernel function behind it covers all: the extra
    tracepoints must attach only when the tracepoint family won, or events double).
    Companions come after their lead in the probe list."""

    def _attach_probe(self, p: Probe) -> ProbeStatus:
        if p.uid.startswith("companion:"):
            _, lead, when = p.uid.split(":", 2)
            chosen = self.chosen(lead)
            if chosen is None or family(chosen) != when:
                st = ProbeStatus(uid=p.uid, requested=p.program,
                                 reason=f"not needed: {lead} is on {chosen or 'nothing'}")
                self.status[p.id] = st
                return st
        return super()._attach_probe(p)

    def _has_alternative(self, prog: str) -> bool:
        # A program only optional probes use may be dropped when the kernel refuses it.
        if super()._has_alternative(prog):
            return True
        users = [p for p in self._all_probes() if prog in p.candidates()]
        return bool(users) and all(p.optional for p in users)


def cgroup_id(path: str) -> int:
    """The id ``bpf_get_current_cgroup_id()`` returns for a cgroup v2 directory: its inode
    number (absolute path, or relative to the cgroup2 mount)."""
    from ..attach.cgroup import cgroup_path
    try:
        p = cgroup_path(path)
        st = os.stat(p)
    except OSError as e:
        raise BpfkitError(f"--cgroup {path}: {e.strerror}") from None
    if not os.path.exists(os.path.join(p, "cgroup.procs")):
        raise BpfkitError(f"--cgroup {path}: {p} is not a cgroup v2 directory (no cgroup.procs)")
    return st.st_ino


def kernel_symbol(name: str) -> str:
    """The symbol a kprobe on ``name`` must use: ``name`` itself, or the compiler's clone of
    a static function (``name.constprop.0``, ``name.isra.0``...) when only that exists.
    Clones keep the leading arguments the tools read; the check runs only where kprobes
    exist (reading /proc/kallsyms is not free)."""
    if not (os.path.exists("/sys/bus/event_source/devices/kprobe")
            or os.path.exists("/sys/kernel/tracing/kprobe_events")):
        return name
    clone = None
    try:
        with open("/proc/kallsyms") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3:
                    continue
                sym = parts[2]
                if sym == name:
                    return name
                if clone is None and sym.startswith(name + "."):
                    clone = sym
    except OSError:
        return name
    return clone or name


def _mono_to_epoch() -> float:
    """Add to a CLOCK_MONOTONIC time (what bpf_ktime_get_ns counts) to get epoch seconds."""
    return time.time() - time.clock_gettime(time.CLOCK_MONOTONIC)


def _heading_spec(spec: str) -> str:
    """The alignment and width of a value format spec (``>10.2f`` -> ``>10``)."""
    m = re.match(r"([<>^]?)(\d*)", spec)
    assert m is not None
    return (m.group(1) or ">") + m.group(2)


@dataclass
class Column:
    """A column of a count table: heading, format spec (``>8``, ``<16``...), row key."""

    heading: str
    spec: str
    key: str


class Tool:
    """Base of the ready tools.  Subclasses set the class attributes and override hooks."""

    name = ""
    help = ""
    obj = ""                    # object name in bpf/ (default: the tool name)
    events_map: str | None = None   # ring buffer streamed record by record
    record: str | None = None       # BTF type of those records
    interval_tool = False           # prints maps every interval instead of streaming events
    options: tuple[str, ...] = SNOOP_OPTIONS
    flags: Mapping[str, tuple[str, ...]] = {}
    filters: Mapping[str, str] = {}
    failed_help = ""
    hook_families: tuple[str, ...] = ()
    differs = ""                    # how and why this tool differs from BCC's
    bcc = ""                        # BCC's (or libbpf-tools') tool this follows, if any

    # ---------------------------------------------------------------- declaration

    def probes(self, args: argparse.Namespace) -> Sequence[Probe | OneOf]:
        raise NotImplementedError

    def add_args(self, p: argparse.ArgumentParser) -> None:
        """Tool-specific options."""

    def constants(self, args: argparse.Namespace) -> dict[str, Any]:
        return {}

    def tail_calls(self, args: argparse.Namespace) -> dict[str, dict[int, str]]:
        return {}

    def header(self, args: argparse.Namespace) -> str | None:
        return None

    def format(self, rec: Any, args: argparse.Namespace) -> str:
        return str(rec)

    def to_json(self, rec: Any, args: argparse.Namespace) -> Any:
        return plain(rec)

    def keep(self, rec: Any, args: argparse.Namespace) -> bool:
        """User-space filtering of a record (after any in-kernel filter)."""
        return True

    def report(self, m: Manager, args: argparse.Namespace, final: bool) -> None:
        """Interval tools: print (and usually clear) the maps."""

    def started(self, m: Manager, args: argparse.Namespace) -> None:
        """Called once everything is attached (e.g. to fill a filter map)."""

    def validate(self, args: argparse.Namespace) -> None:
        """Refuse option combinations the tool cannot honour (raise BpfkitError)."""

    # ---------------------------------------------------------------- helpers for tools

    def hook_probe(self, args: argparse.Namespace, candidates: Sequence[str],
                   **probe_kw: Any) -> Probe:
        """A Probe on the best of ``candidates`` (best first) the kernel takes, the others
        as its fallbacks; ``--hook`` keeps one family."""
        prog, fb = chain(candidates, getattr(args, "hook", None))
        return Probe(prog, fallbacks=fb, **probe_kw)

    def print_table(self, rows: Sequence[Mapping[str, Any]], columns: Sequence[Column],
                    args: argparse.Namespace, *, stamp: bool = True) -> None:
        """One interval's count table, BCC style (``[HH:MM:SS]`` then aligned columns; the
        last column's heading right-aligned like the numbers), or one JSON object per row
        with ``time``."""
        if args.json:
            now = time.time()
            for r in rows:
                print(json.dumps({"time": now, **{k: plain(v) for k, v in r.items()}}))
            sys.stdout.flush()
            return
        if stamp:
            print(f"[{time.strftime('%H:%M:%S')}]")
        print(" ".join(f"{c.heading:{_heading_spec(c.spec)}}" for c in columns).rstrip())
        for r in rows:
            print(" ".join(f"{r[c.key]:{c.spec}}" for c in columns).rstrip())
        print(flush=True)

    def print_histograms(self, hists: Sequence[Any], args: argparse.Namespace, *,
                         section: Callable[[Any], str] | None = None,
                         json_section: Callable[[Any], dict[str, Any]] | None = None) -> None:
        """BCC's histograms (``bpfkit.histogram.Histogram``s), each under a ``section(h.section)``
        line when given; in JSON one object per histogram with ``time``, the section's
        fields (``json_section``), ``unit``, ``total`` and ``buckets``."""
        if args.json:
            now = time.time()
            for h in hists:
                d = h.to_dict()
                extra = json_section(h.section) if json_section else (
                    {"section": plain(h.section)} if h.section is not None else {})
                print(json.dumps({"time": now, **extra, "unit": d["unit"],
                                  "total": d["total"], "buckets": d["buckets"]}))
            sys.stdout.flush()
            return
        if getattr(args, "time", False):
            print(time.strftime("%H:%M:%S"))
        for h in hists:
            if section is not None and h.section is not None:
                print(f"\n{section(h.section)}")
            print(h.format())
        print(flush=True)

    # ---------------------------------------------------------------- parser

    def _flags(self, key: str) -> tuple[str, ...]:
        return tuple(self.flags.get(key, OPTIONS[key].flags)) if key in OPTIONS else ()

    def build_parser(self, p: argparse.ArgumentParser) -> None:
        for key in self.options:
            if key == "interval":
                continue
            o = OPTIONS[key]
            kw = dict(o.kwargs)
            if key == "failed" and self.failed_help:
                kw["help"] = self.failed_help
            flags = self._flags(key)
            if flags:
                p.add_argument(*flags, dest=o.dest, **kw)
            else:
                p.add_argument(o.dest, **kw)
        p.add_argument("-v", "--verbose", action="store_true",
                       help="say which hook each probe used (and why others were skipped)")
        p.add_argument("--json", action="store_true",
                       help="JSON output: one object a line, each with a 'time'; an "
                       "'attached' object on stderr when tracing starts")
        if self.hook_families:
            p.add_argument("--hook", choices=["auto", *self.hook_families], default="auto",
                           help="force one hook family instead of the best this kernel has")
        if "interval" in self.options:
            p.add_argument("interval", nargs="?", type=positive_float, default=1.0,
                           help="seconds between reports (default 1)")
            p.add_argument("count", nargs="?", type=nonneg_int, default=0,
                           help="number of reports (default: until Ctrl-C)")
        self.add_args(p)
        epilog = []
        if self.differs:
            epilog.append(f"Differs from BCC's {self.bcc or self.name}: {self.differs}")
        if epilog:
            p.epilog = " ".join(epilog)

    def check_filters(self, args: argparse.Namespace) -> None:
        """Refuse (one sentence) a filter the user gave that the tool cannot apply."""
        for key, word in FILTER_WORDS.items():
            if key not in self.options or getattr(args, OPTIONS[key].dest, None) in (None, ""):
                continue
            if key not in self.filters:
                flags = "/".join(self._flags(key))
                raise BpfkitError(f"{self.name}: cannot filter by {word} ({flags}): its BPF "
                                  "code has no such filter")

    def filter_constants(self, args: argparse.Namespace, names: Iterable[str]) -> dict[str, Any]:
        """The constants that apply the declared in-kernel filters the user asked for."""
        have = set(names)
        out: dict[str, Any] = {}
        for key, how in self.filters.items():
            if ":" in how or how == "tool":
                continue
            if how not in have:
                raise BpfkitError(f"{self.name}: its object has no constant {how!r} for the "
                                  f"{FILTER_WORDS.get(key, key)} filter: rebuild with "
                                  "'python tools/build_objects.py'")
            v = getattr(args, OPTIONS[key].dest, None) if key in OPTIONS else None
            if v in (None, ""):
                continue
            if key == "cgroup":
                out[how] = cgroup_id(v)
            elif key == "name":
                out[how] = v.encode()[:15]
            else:
                out[how] = int(v)
        return out

    def all_constants(self, m_spec: Any, args: argparse.Namespace) -> dict[str, Any]:
        c = self.filter_constants(args, m_spec.variables)
        c.update(self.constants(args))
        return c

    def manager(self, args: argparse.Namespace) -> Manager:
        from ..spec import CollectionSpec
        spec = CollectionSpec.from_file(object_path(self.obj or self.name))
        return CompanionManager(spec, self.probes(args), constants=self.all_constants(spec, args),
                                tail_calls=self.tail_calls(args))

    # ---------------------------------------------------------------- output machinery

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

    def announce(self, m: Manager | None, args: argparse.Namespace) -> None:
        """Say tracing has started: a comment line, or one JSON object, on stderr."""
        if not args.json:
            print("# attached; Ctrl-C to stop", file=sys.stderr, flush=True)
            return
        probes = []
        for st in (m.report() if m is not None else []):
            probes.append({"probe": st.requested, "program": st.program, "hook": st.hook,
                           "attached": st.attached, **({"reason": st.reason}
                                                       if st.reason else {})})
        print(json.dumps({"attached": True, "tool": self.name, "time": time.time(),
                          "pid": os.getpid(), "probes": probes}), file=sys.stderr, flush=True)

    def _user_filter(self, rec: Any, args: argparse.Namespace) -> bool:
        for key, how in self.filters.items():
            if not how.startswith("user:"):
                continue
            want = getattr(args, OPTIONS[key].dest, None)
            if want in (None, ""):
                continue
            got = plain(getattr(rec, how[5:]))
            if got != want:
                return False
        return True

    def record_time(self, rec: Any) -> float:
        """Epoch seconds of a record: its ``ts_ns`` (monotonic, from bpf_ktime_get_ns) when
        it has one, else now."""
        ts = getattr(rec, "ts_ns", None)
        if ts:
            return self._mono_off + ts / 1e9
        return time.time()

    def prefix_heading(self, args: argparse.Namespace) -> str:
        parts = []
        if getattr(args, "time", False):
            parts.append(f"{'TIME':<8}")
        if getattr(args, "timestamp", False):
            parts.append(f"{'TIME(s)':<14}")
        if getattr(args, "print_uid", False):
            parts.append(f"{'UID':<6}")
        return " ".join(parts) + " " if parts else ""

    def prefix(self, rec: Any, t: float, args: argparse.Namespace) -> str:
        parts = []
        if getattr(args, "time", False):
            parts.append(datetime.fromtimestamp(t).strftime("%H:%M:%S"))
        if getattr(args, "timestamp", False):
            parts.append(f"{t - self._t0:<14.6f}")
        if getattr(args, "print_uid", False):
            parts.append(f"{getattr(rec, 'uid', '-')!s:<6}")
        return " ".join(parts) + " " if parts else ""

    def emit(self, rec: Any, args: argparse.Namespace) -> None:
        if not self._user_filter(rec, args) or not self.keep(rec, args):
            return
        t = self.record_time(rec)
        if args.json:
            d = self.to_json(rec, args)
            if isinstance(d, dict):
                d = {"time": round(t, 6), **d} if "time" not in d else d
            write_line(json.dumps(d))
            return
        write_line(self.prefix(rec, t, args) + self.format(rec, args))

    def run(self, args: argparse.Namespace) -> int:
        self.check_filters(args)
        self.validate(args)
        self._mono_off = _mono_to_epoch()
        self._t0 = time.time()
        stop = {"now": False}
        try:
            with interrupt_on_term(), self.manager(args) as m:
                self.verbose(m, args)
                self.started(m, args)
                hdr = self.header(args)
                if hdr and not args.json:
                    print(self.prefix_heading(args) + hdr, flush=True)
                self._t0 = time.time()
                self.announce(m, args)
                return self.loop(m, args, stop)
        except KeyboardInterrupt:
            return 0

    def loop(self, m: Manager, args: argparse.Namespace, stop: dict[str, bool]) -> int:
        duration = getattr(args, "duration", 0.0) or 0.0
        end = time.monotonic() + duration if duration else None
        if self.interval_tool:
            n = 0
            try:
                while not stop["now"]:
                    wait = args.interval
                    if end is not None:
                        wait = max(0.0, min(wait, end - time.monotonic()))
                    time.sleep(wait)
                    n += 1
                    last = bool((getattr(args, "count", 0) and n >= args.count) or
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
        except KeyboardInterrupt:
            pass
        try:  # what is already in the buffer is printed, not dropped, on Ctrl-C/SIGTERM
            rb.poll(lambda rec: self.emit(rec, args), timeout=0)
        except KeyboardInterrupt:
            pass
        lost = getattr(rb, "lost", 0) + self.bpf_lost(m)
        if args.json:  # one JSON object on stderr, like the "attached" one; 0 included
            print(json.dumps({"lost": lost, "tool": self.name}), file=sys.stderr, flush=True)
        elif lost:
            print(f"# {lost} events lost", file=sys.stderr, flush=True)
        return 0

    def bpf_lost(self, m: Manager) -> int:
        """Records the BPF side could not hand over (a full ring buffer fails the producer,
        so objects count them in a ``lost`` global; ``bk_events.h`` does)."""
        v = m.collection.variables.get("lost") if m.collection is not None else None
        return int(v.value) if v is not None else 0

    _mono_off = 0.0
    _t0 = 0.0



def comm_of(v: Any) -> str:
    return plain(v) if not isinstance(v, str) else v


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False
