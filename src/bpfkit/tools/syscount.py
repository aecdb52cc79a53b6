"""syscount: syscalls counted per syscall (default) or per process (``-P``), as BCC's.

Flags as BCC's syscount: ``-p PID``, ``-t TID``, ``-i INTERVAL`` (default: one report at
the end, on Ctrl-C or after ``-d``), ``-d DURATION``, ``-T TOP`` (default 10), ``-x`` failed
calls only, ``-e ERRNO`` (a number or a name such as ENOENT), ``-L`` total latency per row,
``-m`` milliseconds, ``-P`` per process, ``-l`` lists the syscall names; ``-c PATH`` is
libbpf-tools' cgroup filter, ``-u UID`` and ``-n NAME`` ours.

Counting happens at sys_exit (the return value decides ``-x``/``-e``); sys_enter is attached
only for ``-L``.  The mode and the ``-n`` command filter are written into maps after load
(not constants), so ``--pin DIR`` can pin the maps, programs and links under DIR (bpffs):
counting goes on after this command exits, and ``bpfkit syscount --from-pin DIR`` (or any
other loader: bpftool map dump pinned DIR/counts) reads the counts later, in the mode they
were taken; ``--from-pin DIR --unpin`` reads once more and removes the pins, which detaches.
"""

from __future__ import annotations

import argparse
import errno as errno_mod
import os
import sys
from typing import Any

from ..errors import BpfkitError
from ..manager import Manager, MapOptions, Probe
from .base import (
    TRACE_OPTIONS,
    Column,
    CompanionManager,
    Tool,
    object_path,
    positive_float,
    positive_int,
)

MAPS = ("counts", "comm_filter", "filter_cfg")
PIN_PROGS = {"exit": ("prog", "link"), "enter": ("prog_enter", "link_enter")}


def _comms(spec: str) -> list[bytes]:
    return [c.encode()[:15] for c in spec.split(",") if c]


def errno_arg(s: str) -> int:
    """``-e``: an errno number or name (ENOENT)."""
    if s.isdigit() and int(s) > 0:
        return int(s)
    v = getattr(errno_mod, s.upper(), None)
    if isinstance(v, int) and s.upper().startswith("E"):
        return v
    raise argparse.ArgumentTypeError(f"{s!r} is not an errno number or name (e.g. ENOENT)")


MODE = ("by_process", "latency", "failed", "errno_only")


def configure(maps: Any, comms: list[bytes] | None,
              mode: dict[str, int] | None = None) -> dict[str, int]:
    """Fill the command filter map (``[]``: every command; ``None``: leave it) and the mode
    (``None``: keep the one a pinned syscount was started with).  Returns the mode."""
    cfg = maps.map("filter_cfg")
    old = cfg[0]
    if comms is not None:
        flt = maps.map("comm_filter")
        for k in list(flt.keys()):
            del flt[k]
        for c in comms:
            flt[c] = 1
    use = {k: int(getattr(old, k)) for k in MODE} if mode is None else dict(mode)
    on = int(bool(comms)) if comms is not None else int(old.comm_filter)
    cfg[0] = {"comm_filter": on, **use, "pad": 0}
    return use


class _PinnedMaps:
    """The maps of a pinned syscount, typed with the BTF of the shipped object."""

    def __init__(self, pin_dir: str) -> None:
        from ..btf.codec import BTFCodec
        from ..maps import Map
        from ..spec import CollectionSpec
        spec = CollectionSpec.from_file(object_path("syscount"))
        btf = spec.btf
        if btf is None:
            raise BpfkitError("the syscount object has no BTF: rebuild it")
        self.maps: dict[str, Any] = {}
        try:
            for name in MAPS:
                ms = spec.maps[name]
                path = os.path.join(pin_dir, name)
                if not os.path.exists(path):
                    raise BpfkitError(f"--from-pin: {path} does not exist (was 'bpfkit syscount "
                                      f"--pin {pin_dir}' run?)")
                self.maps[name] = Map.from_pin(path, key=BTFCodec(btf, ms.key_type_id),
                                               value=BTFCodec(btf, ms.value_type_id))
        except BaseException:
            self.close()
            raise

    def map(self, name: str) -> Any:
        return self.maps[name]

    def close(self) -> None:
        for m in self.maps.values():
            m.close()
        self.maps.clear()


def unpin(pin_dir: str) -> list[str]:
    """Remove the pins syscount made (links first: that detaches)."""
    removed = []
    names = [n for pair in PIN_PROGS.values() for n in reversed(pair)]
    for name in (*names, *MAPS):
        p = os.path.join(pin_dir, name)
        if os.path.lexists(p):
            os.unlink(p)
            removed.append(p)
    try:
        os.rmdir(pin_dir)
    except OSError:
        pass
    return removed


class SysCount(Tool):
    name = "syscount"
    help = "count syscalls per syscall (or per process), with errors and latency"
    interval_tool = True
    bcc = "syscount"
    options = TRACE_OPTIONS
    flags = {"duration": ("-d", "--duration")}
    filters = {"pid": "targ_pid", "tid": "targ_tid", "uid": "targ_uid", "cgroup": "targ_cgid",
               "name": "tool"}   # -n: the comm_filter map
    hook_families = ("raw_tp", "tracepoint")
    differs = ("-c PATH is a cgroup v2 path (BCC: --cgroupmap), -n NAME[,NAME...] a command "
               "filter that can change at run time; --pin/--from-pin/--unpin are ours; "
               "--syscall is not implemented.")

    def add_args(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("-i", "--interval", type=positive_float, default=None,
                       help="print every INTERVAL seconds (default: once, at the end)")
        p.add_argument("-T", "--top", type=positive_int, default=10,
                       help="print only the top N rows (default 10)")
        p.add_argument("-x", "--failures", action="store_true",
                       help="trace only failed syscalls")
        p.add_argument("-e", "--errno", type=errno_arg, default=0,
                       help="trace only syscalls that return this errno (number or name)")
        p.add_argument("-L", "--latency", action="store_true",
                       help="collect syscall latency (total time per row)")
        p.add_argument("-m", "--milliseconds", action="store_true",
                       help="latency in milliseconds (default: microseconds)")
        p.add_argument("-P", "--process", action="store_true",
                       help="count by process and not by syscall")
        p.add_argument("-l", "--list", action="store_true",
                       help="print the list of recognized syscalls and exit")
        p.add_argument("--cumulative", action="store_true",
                       help="do not clear the counts after each interval")
        p.add_argument("--pin", metavar="DIR", help="pin maps, programs and links under DIR "
                       "(bpffs): counting continues after exit")
        p.add_argument("--from-pin", metavar="DIR",
                       help="read the counts of a syscount pinned under DIR (loads nothing)")
        p.add_argument("--unpin", action="store_true",
                       help="with --from-pin: remove the pins afterwards (detaches)")

    def probes(self, args: argparse.Namespace) -> list[Probe]:
        out = [self.hook_probe(args, ["raw_tp_sys_exit", "tp_sys_exit"])]
        if args.latency:
            out.append(self.hook_probe(args, ["raw_tp_sys_enter", "tp_sys_enter"]))
        return out

    def manager(self, args: argparse.Namespace) -> Manager:
        m = self._manager(args)
        try:
            # Fill the filter and the mode between load and attach: nothing slips in.
            m.init()
            configure(m, _comms(args.name) if args.name else [],
                      {"by_process": int(args.process), "latency": int(args.latency),
                       "failed": int(args.failures), "errno_only": int(args.errno)})
        except BaseException:
            m.stop()
            raise
        return m

    def _manager(self, args: argparse.Namespace) -> Manager:
        if not args.pin:
            return super().manager(args)
        from ..spec import CollectionSpec
        for leftover in ("prog", "link"):
            if os.path.lexists(os.path.join(args.pin, leftover)):
                raise BpfkitError(f"--pin {args.pin}: a syscount is already pinned there (read "
                                  f"it with --from-pin, remove it with --from-pin {args.pin} "
                                  "--unpin)")
        os.makedirs(args.pin, exist_ok=True)
        spec = CollectionSpec.from_file(object_path(self.name))
        return CompanionManager(spec, self.probes(args),
                                constants=self.all_constants(spec, args),
                                maps={n: MapOptions(pin="by_name") for n in MAPS},
                                pin_root=args.pin)

    def started(self, m: Manager, args: argparse.Namespace) -> None:
        if not args.pin:
            return
        probes = self.probes(args)
        try:
            for role, p in zip(("exit", "enter"), probes, strict=False):
                prog = m.program(m.chosen(p.program) or "")
                prog_pin, link_pin = PIN_PROGS[role]
                prog.pin(os.path.join(args.pin, prog_pin))
                links = getattr(prog, "links", [])
                if not links:
                    raise BpfkitError(f"no link of {prog.name} to pin")
                links[-1].pin(os.path.join(args.pin, link_pin))
        except (BpfkitError, OSError) as e:
            print(f"# the attachment could not be pinned ({e}): counting stops when this "
                  "command exits", file=sys.stderr)
        else:
            print(f"# pinned under {args.pin}: counting goes on after exit; read with "
                  f"'bpfkit syscount --from-pin {args.pin}', stop with '--unpin'",
                  file=sys.stderr)

    def validate(self, args: argparse.Namespace) -> None:
        if args.unpin and not args.from_pin:
            raise BpfkitError("--unpin goes with --from-pin DIR")
        if args.pin and args.from_pin:
            raise BpfkitError("--pin and --from-pin exclude each other")
        if args.failures and args.errno:
            raise BpfkitError("-x and -e exclude each other (-e already keeps only that error)")
        if args.milliseconds and not args.latency:
            raise BpfkitError("-m goes with -L (it sets the latency unit)")
        self._mode = {"by_process": int(args.process), "latency": int(args.latency)}
        # BCC: no -i means one report at the end (Ctrl-C or -d)
        args.count = 0
        self._once = args.interval is None
        if self._once:
            args.interval = args.duration or 1e9

    def run(self, args: argparse.Namespace) -> int:
        if args.list:
            from ..export.syscalls import syscall_table
            for nr, name in sorted(syscall_table().items()):
                print(f"{nr:>4} {name}")
            return 0
        if not args.from_pin:
            return super().run(args)
        self.check_filters(args)
        self.validate(args)
        if any(getattr(args, k) for k in ("pid", "tid", "uid", "cgroup", "process",
                                          "latency", "failures", "errno")):
            raise BpfkitError("--from-pin: -p/-t/-u/-c/-P/-L/-x/-e were fixed when the "
                              "syscount was pinned; only -n can change")
        maps = _PinnedMaps(args.from_pin)
        try:
            self._mode = configure(maps, _comms(args.name) if args.name else None)
            stop = {"now": False}
            return self.loop(maps, args, stop)  # type: ignore[arg-type]
        finally:
            maps.close()
            if args.unpin:
                for p in unpin(args.from_pin):
                    if args.verbose:
                        print(f"# removed {p}", file=sys.stderr)

    def report(self, m: Manager, args: argparse.Namespace, final: bool) -> None:
        if self._once and not final:
            return
        from ..export.syscalls import syscall_name
        counts = m.map("counts")
        items = list(counts.items())
        if not args.cumulative:
            for k, _ in items:
                counts.delete(k)
        latency = bool(self._mode["latency"])
        div, unit = (1e6, "ms") if args.milliseconds else (1e3, "us")
        rows: list[dict[str, Any]] = []
        for k, v in items:
            r: dict[str, Any]
            if self._mode["by_process"]:
                r = {"pid": int(k), "comm": str(v.comm), "count": int(v.count)}
            else:
                r = {"syscall": syscall_name(int(k)), "nr": int(k), "count": int(v.count)}
            if latency:
                r["total_ns"] = int(v.total_ns)
                r["time"] = v.total_ns / div
            rows.append(r)
        rows.sort(key=lambda r: (-(r["total_ns"] if latency else r["count"]),
                                 r.get("nr", r.get("pid", 0))))
        rows = rows[: args.top]
        if self._mode["by_process"]:
            cols = [Column("PID", "<6", "pid"), Column("COMM", "<15", "comm"),
                    Column("COUNT", ">8", "count")]
        else:
            cols = [Column("SYSCALL", "<22", "syscall"), Column("COUNT", ">8", "count")]
        if latency:
            cols.append(Column(f"TIME ({unit})", ">16.3f", "time"))
            if args.json:
                for r in rows:
                    r[f"time_{unit}"] = round(r.pop("time"), 3)
        self.print_table(rows, cols, args)


TOOL = SysCount()
