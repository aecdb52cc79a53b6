"""syscount: count syscalls per process, every interval.

``-c COMM`` is written into a filter *map* after load (not a constant), so it can change
while the program runs.  ``--pin DIR`` pins the maps, the program and its link under DIR
(on bpffs): counting goes on after this command exits, and ``bpfkit syscount --from-pin
DIR`` (or any other loader: bpftool map dump pinned DIR/counts) reads the counts later;
``--from-pin DIR --unpin`` reads once more and removes the pins, which detaches.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from ..errors import BpfkitError
from ..manager import Manager, MapOptions, Probe
from .base import INTERVAL_OPTIONS, CompanionManager, Tool, object_path, positive_int

MAPS = ("counts", "comm_filter", "filter_cfg")
PIN_PROG = "prog"
PIN_LINK = "link"


def _comms(spec: str) -> list[bytes]:
    return [c.encode()[:15] for c in spec.split(",") if c]


def set_comm_filter(maps: Any, comms: list[bytes] | None) -> None:
    """Fill the filter map (``None``/empty: count every command)."""
    flt = maps.map("comm_filter")
    for k in list(flt.keys()):
        del flt[k]
    for c in comms or []:
        flt[c] = 1
    maps.map("filter_cfg")[0] = {"comm_filter": 1 if comms else 0}


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
    """Remove the pins syscount made (the link last but one: that detaches)."""
    removed = []
    for name in (PIN_LINK, PIN_PROG, *MAPS):
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
    help = "count syscalls per process, filterable by command at run time"
    interval_tool = True
    options = INTERVAL_OPTIONS
    filters = {"pid": "targ_pid", "cgroup": "targ_cgid", "name": "tool"}  # -n: a filter map
    hook_families = ("raw_tp", "tracepoint")

    def add_args(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--top", type=positive_int, default=20, help="processes shown (default 20)")
        p.add_argument("--cumulative", action="store_true",
                       help="do not clear the counts after each interval")
        p.add_argument("--pin", metavar="DIR", help="pin maps, program and link under DIR "
                       "(bpffs): counting continues after exit")
        p.add_argument("--from-pin", metavar="DIR",
                       help="read the counts of a syscount pinned under DIR (loads nothing)")
        p.add_argument("--unpin", action="store_true",
                       help="with --from-pin: remove the pins afterwards (detaches)")

    def probes(self, args: argparse.Namespace) -> list[Probe]:
        return [self.hook_probe(args, ["raw_tp_sys_enter", "tp_sys_enter"])]

    def manager(self, args: argparse.Namespace) -> Manager:
        m = self._manager(args)
        try:
            # Fill the filter between load and attach: no other command slips in.
            m.init()
            set_comm_filter(m, _comms(args.name) if args.name else None)
        except BaseException:
            m.stop()
            raise
        return m

    def _manager(self, args: argparse.Namespace) -> Manager:
        if not args.pin:
            return super().manager(args)
        from ..spec import CollectionSpec
        for leftover in (PIN_PROG, PIN_LINK):
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
        chosen = m.chosen(self.probes(args)[0].program)
        prog = m.program(chosen or "")
        prog.pin(os.path.join(args.pin, PIN_PROG))
        links = getattr(prog, "links", [])
        try:
            if not links:
                raise BpfkitError("no link to pin")
            links[-1].pin(os.path.join(args.pin, PIN_LINK))
        except (BpfkitError, OSError) as e:
            print(f"# the attachment could not be pinned ({e}): counting stops when this "
                  "command exits", file=sys.stderr)
        else:
            print(f"# pinned under {args.pin}: counting goes on after exit; read with "
                  f"'bpfkit syscount --from-pin {args.pin}', stop with '--unpin'",
                  file=sys.stderr)

    def run(self, args: argparse.Namespace) -> int:
        if args.unpin and not args.from_pin:
            raise BpfkitError("--unpin goes with --from-pin DIR")
        if not args.from_pin:
            return super().run(args)
        if args.pin:
            raise BpfkitError("--pin and --from-pin exclude each other")
        maps = _PinnedMaps(args.from_pin)
        try:
            if args.name:
                set_comm_filter(maps, _comms(args.name))
            stop = {"now": False}
            return self.loop(maps, args, stop)  # type: ignore[arg-type]
        finally:
            maps.close()
            if args.unpin:
                for p in unpin(args.from_pin):
                    if args.verbose:
                        print(f"# removed {p}", file=sys.stderr)

    def report(self, m: Manager, args: argparse.Namespace, final: bool) -> None:
        counts = m.map("counts")
        rows = [(int(k), str(v.comm), int(v.count)) for k, v in counts.items()]
        if not args.cumulative:
            for pid, _, _ in rows:
                counts.delete(pid)
        rows.sort(key=lambda r: (-r[2], r[0]))
        rows = rows[: args.top] if args.top > 0 else rows
        if args.json:
            now = time.time()
            for pid, comm, n in rows:
                print(json.dumps({"time": now, "pid": pid, "comm": comm, "count": n}),
                      flush=True)
            return
        print(f"[{time.strftime('%H:%M:%S')}]")
        print(f"{'PID':>7} {'COMM':<16} {'COUNT':>10}")
        for pid, comm, n in rows:
            print(f"{pid:>7} {comm:<16} {n:>10}")
        print(flush=True)


TOOL = SysCount()
