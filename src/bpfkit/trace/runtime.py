"""Running a compiled trace program: maps, loading, attaching, events, printing at exit.

``Tracer(source).run()`` is ``bpfkit trace``: parse and check (pure), generate, create
the maps and load the programs through bpfkit's Map/Program classes, run BEGIN (a
raw_tp program run once with BPF_PROG_TEST_RUN), attach the rest, stream the ring
buffer, then run END and print the maps the way bpftrace does.
"""

from __future__ import annotations

import copy
import fnmatch
import functools
import json
import os
import re
import signal
import struct
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from ..errors import BpfkitError, VerifierError
from . import ast as A
from .check import Checked, ProbeUnit, TpField, check, provider_of
from .codegen import Event, Generated, Program, generate, link
from .errors import TraceError, TraceTypeError
from .output import Formatter, MapData, decode, format_map_json, format_map_text
from .parser import parse

_FIELD = re.compile(r"field:(.+?);\s*offset:(\d+);\s*size:(\d+);\s*signed:(\d+);")


def parse_format(text: str) -> list[TpField]:
    """The fields of a tracepoint ``format`` file."""
    out = []
    for m in _FIELD.finditer(text):
        decl, off, size, signed = m.group(1).strip(), int(m.group(2)), int(m.group(3)), \
            m.group(4) == "1"
        data_loc = decl.startswith("__data_loc")
        if data_loc:
            decl = decl[len("__data_loc"):].strip()
        array = 0
        am = re.search(r"\[(\d*)\]\s*$", decl)
        if am:
            array = int(am.group(1)) if am.group(1) else 0
            decl = decl[:am.start()].strip()
        nm = re.search(r"([A-Za-z_]\w*)$", decl)
        if not nm:
            continue
        name = nm.group(1)
        ctype = decl[:nm.start()].strip()
        out.append(TpField(name, ctype, off, size, signed, data_loc, array))
    return out


class SystemEnv:
    """What the checker asks the running system: tracepoint formats, BTF, kallsyms."""

    def __init__(self) -> None:
        self._btf: Any = None
        self._tracefs: str | None = None

    @property
    def tracefs(self) -> str:
        if self._tracefs is None:
            from ..host.tracefs import tracefs_path
            self._tracefs = tracefs_path()
        return self._tracefs

    @functools.cache  # noqa: B019 - one env per run
    def tracepoint_fields(self, category: str, name: str) -> list[TpField] | None:
        try:
            with open(os.path.join(self.tracefs, "events", category, name, "format")) as f:
                return parse_format(f.read())
        except OSError:
            return None

    def btf(self) -> Any:
        if self._btf is None:
            from ..btf import Spec
            try:
                self._btf = Spec.kernel()
            except (OSError, BpfkitError):
                return None
        return self._btf

    def kaddr(self, name: str) -> int | None:
        from ..symbolize import kaddr
        return kaddr(name)

    def tracepoints(self) -> list[tuple[str, str]]:
        base = os.path.join(self.tracefs, "events")
        out = []
        for cat in sorted(os.listdir(base)):
            d = os.path.join(base, cat)
            if not os.path.isdir(d):
                continue
            for ev in sorted(os.listdir(d)):
                if os.path.isdir(os.path.join(d, ev)):
                    out.append((cat, ev))
        return out

    def usdt_locations(self, parts: list[str], ap: A.AttachPoint,
                       source: str) -> list[tuple[list[str], dict[str, Any]]]:
        """One entry per location of usdt:BINARY:[PROVIDER:]NAME (names may be globs)."""
        from ..attach.uprobe import resolve_binary
        from ..attach.usdt import parse_usdt_args, parse_usdt_notes
        from ..elf import ElfFile
        binary = parts[0]
        prov, name = (parts[1], parts[2]) if len(parts) == 3 else ("*", parts[1])
        try:
            path = resolve_binary(binary, -1)
            out = []
            with ElfFile.open(path) as elf:
                for n in parse_usdt_notes(elf, parse_args=False):
                    if not (fnmatch.fnmatchcase(n.provider, prov) and
                            fnmatch.fnmatchcase(n.name, name)):
                        continue
                    out.append(([binary, n.provider, n.name], {
                        "usdt_args": parse_usdt_args(n.args_spec),
                        "usdt_offset": elf.vaddr_to_offset(n.pc),
                        "usdt_semaphore": elf.vaddr_to_offset(n.semaphore)
                        if n.semaphore else 0}))
            return out
        except BpfkitError as e:
            raise TraceTypeError(f"usdt: {e}", ap.span, source) from None

    def kernel_functions(self, pattern: str) -> list[str]:
        """Kernel functions matching a glob (available_filter_functions, else kallsyms)."""
        from ..attach.tracing import expand_kernel_patterns
        return expand_kernel_patterns([pattern])

    def user_functions(self, binary: str) -> list[str]:
        from ..attach.uprobe import resolve_binary
        from ..elf import ElfFile
        path = resolve_binary(binary, -1)
        names = set()
        with ElfFile.open(path) as elf:
            for table in (".symtab", ".dynsym"):
                try:
                    syms = elf.symbols(table)
                except BpfkitError:
                    continue
                for sym in syms:
                    if sym.type == 2 and sym.shndx != 0 and sym.name:  # STT_FUNC, defined
                        names.add(sym.name.split("@")[0])
        return sorted(names)


def _has_glob(s: str) -> bool:
    return any(c in s for c in "*?[")


def expand(probe: A.Probe, env: SystemEnv, source: str) -> list[ProbeUnit]:
    """One unit per concrete attach point; wildcards matched against the system."""
    units = []
    first = True
    for ap in probe.attach_points:
        prov = provider_of(ap, source)
        parts = list(ap.parts)
        concrete: list[list[str]] = []
        if prov == "tracepoint" and (_has_glob(parts[0]) or _has_glob(parts[1])):
            concrete = [[c, n] for c, n in env.tracepoints()
                        if fnmatch.fnmatchcase(c, parts[0]) and fnmatch.fnmatchcase(n, parts[1])]
        elif prov == "usdt":
            for c, extra in env.usdt_locations(parts, ap, source):
                name = ":".join(["usdt"] + c)
                p = probe if first else copy.deepcopy(probe)
                first = False
                units.append(ProbeUnit(p, prov, c, name, **extra))
            continue
        elif prov in ("kprobe", "kretprobe", "kfunc", "kretfunc") and _has_glob(parts[-1]):
            concrete = [[f] for f in env.kernel_functions(parts[-1])]
        elif prov in ("uprobe", "uretprobe") and _has_glob(parts[1]):
            concrete = [[parts[0], f] for f in env.user_functions(parts[0])
                        if fnmatch.fnmatchcase(f, parts[1])]
        else:
            concrete = [parts]
        if not concrete:
            raise TraceTypeError(f"no probes match {ap.text!r}", ap.span, source)
        for c in concrete:
            name = ":".join([prov] + c) if c else prov
            # Each unit gets its own tree (the checker annotates types per attach point);
            # the first one can keep the parsed tree.
            p = probe if first else copy.deepcopy(probe)
            first = False
            units.append(ProbeUnit(p, prov, c, name))
    return units


def compile_program(source: str, env: Any = None, params: list[str] | None = None,
                    name: str = "stdin") -> Checked:
    """Parse, expand and type-check (no BPF objects are created)."""
    env = env or SystemEnv()
    try:
        prog = parse(source)
        units: list[ProbeUnit] = []
        for p in prog.probes:
            units.extend(expand(p, env, source))
        return check(prog, units, env, source, params)
    except TraceError as e:
        raise e.with_source(source, name) from None


_PROG_TYPES = {"tracepoint": "TRACEPOINT", "rawtracepoint": "RAW_TRACEPOINT",
               "uprobe": "KPROBE", "uretprobe": "KPROBE", "kprobe": "KPROBE",
               "kretprobe": "KPROBE", "profile": "PERF_EVENT", "interval": "PERF_EVENT",
               "BEGIN": "RAW_TRACEPOINT", "END": "RAW_TRACEPOINT", "usdt": "KPROBE",
               "kfunc": "TRACING", "kretfunc": "TRACING"}


class Tracer:
    """One ``bpfkit trace`` run."""

    def __init__(self, source: str, *, name: str = "stdin", params: list[str] | None = None,
                 pid: int = 0, command: str | None = None, output: str = "text",
                 out: TextIO | None = None, env: Any = None) -> None:
        self.source = source
        self.name = name
        self.params = params or []
        self.pid = pid
        self.command = command
        self.json = output == "json"
        self.out = out or sys.stdout
        self.env = env or SystemEnv()
        self.maps: dict[str, Any] = {}
        self.programs: list[Any] = []
        self.links: list[Any] = []
        self.cleared: set[str] = set()
        self.stop = False
        self.child: int = 0
        self.gate: int = -1
        self.fmt = Formatter(self._symbolize)
        self.prog: Program | None = None
        self.lost_map: Any = None
        self.in_end = False

    # ----------------------------------------------------------------- output
    def write(self, kind: str, data: Any, text: str) -> None:
        if self.json:
            self.out.write(json.dumps({"type": kind, "data": data}) + "\n")
        else:
            self.out.write(text)
        self.out.flush()

    def _symbolize(self, kind: str, v: Any, limit: int = 127) -> str:
        from .. import symbolize as sy
        if kind == "ksym":
            return sy.ksymname(int(v)) if v else "0x0"
        if kind == "usym":
            addr, pid = v
            s = sy.usym(addr, pid, show_offset=False)
            return s if s != "[unknown]" else f"0x{addr:x}"
        if kind in ("kstack", "ustack"):
            st = self.maps.get(f"__stacks{limit}")
            if st is None:
                return ""
            stm = sy.StackTraceMap(st)
            sid = v if kind == "kstack" else v[0]
            if sid >= 1 << 63:
                return "\n"
            frames = [self._frame(kind, a, v) for a in stm.stack(sid)]
            return "\n" + "".join(f"    {f}\n" for f in frames)
        return str(v)

    def _frame(self, kind: str, addr: int, v: Any) -> str:
        """One stack frame as bpftrace prints it: ``name+decimal offset``, else hex."""
        from .. import symbolize as sy
        sym: Any = None
        if kind == "kstack":
            sym = sy.kernel_symbols().resolve(addr)
        else:
            try:
                sym = sy.ProcessSymbols(v[1]).resolve(addr)
            except BpfkitError:
                sym = None
        if sym is None:
            return f"0x{addr:x}"
        return f"{sym.name}+{sym.offset}" if sym.offset else sym.name

    # ----------------------------------------------------------------- building
    def compile(self) -> Checked:
        return compile_program(self.source, self.env, self.params, self.name)

    def _create_maps(self, prog: Program) -> None:
        from ..maps import Map, MapType
        self.maps["__events"] = Map.create(MapType.RINGBUF, max_entries=1 << 22,
                                           name="bt_events")
        self.maps["__lost"] = Map.create(MapType.ARRAY, key_size=4, value_size=8,
                                         max_entries=1, name="bt_lost")
        for depth in sorted(prog.stack_depths):
            self.maps[f"__stacks{depth}"] = Map.create(
                MapType.STACK_TRACE, key_size=4, value_size=depth * 8, max_entries=4096,
                name=f"bt_stacks{depth}")
        for name, lay in prog.layouts.items():
            self.maps[name] = Map.create(MapType.HASH, key_size=lay.key_size,
                                         value_size=lay.value_size, max_entries=4096,
                                         name=("bt_" + name[1:] or "bt_map")[:15])

    def _load(self, g: Generated, checked: Checked) -> Any:
        from ..program import Program as BpfProgram
        from ..program import ProgramType
        fds = {n: m.fd for n, m in self.maps.items()}
        insns = link(g.insns, fds)
        ptype = ProgramType[_PROG_TYPES[g.unit.provider]]
        pname = re.sub(r"\W", "_", g.unit.name)[:15]
        kw: dict[str, Any] = {}
        if g.unit.provider in ("kfunc", "kretfunc"):
            from ..program import AttachType
            kw = {"expected_attach_type": AttachType.TRACE_FENTRY if g.unit.provider == "kfunc"
                  else AttachType.TRACE_FEXIT, "attach_btf_id": g.unit.btf_id}
        try:
            return BpfProgram.load(ptype, insns, name=pname, license="GPL", **kw)
        except VerifierError as e:
            span = _span_of(e.log, g.spans)
            raise TraceError(f"the verifier rejected the code generated for "
                             f"{g.unit.name} (a bpfkit bug, please report it): {e.cause}",
                             span, checked.source, self.name) from None

    def _attach(self, bp: Any, u: ProbeUnit) -> list[Any]:
        p = u.provider
        if p == "tracepoint":
            return [bp.attach_tracepoint(u.parts[0], u.parts[1])]
        if p == "rawtracepoint":
            return [bp.attach_raw_tracepoint(u.parts[0])]
        if p in ("uprobe", "uretprobe"):
            return [bp.attach_uprobe(u.parts[0], u.parts[1], retprobe=p == "uretprobe",
                                     pid=self.pid or -1)]
        if p == "usdt":
            return [bp.attach_uprobe(u.parts[0], offset=u.usdt_offset, pid=self.pid or -1,
                                     ref_ctr_offset=u.usdt_semaphore)]
        if p in ("kprobe", "kretprobe"):
            return [bp.attach_kprobe(u.parts[-1], retprobe=p == "kretprobe")]
        if p in ("kfunc", "kretfunc"):
            return [bp.attach_trace()]
        if p in ("profile", "interval"):
            from ..attach.cgroup import attach_perf_event
            from ..host.cpus import online_cpus
            unit, n = u.parts[0], int(u.parts[1])
            freq = period = 0
            if unit == "hz":
                freq = n
            else:
                mult = {"s": 10**9, "ms": 10**6, "us": 10**3}.get(unit)
                if mult is None:
                    raise TraceError(f"{p}: unknown unit {unit!r} (hz, s, ms, us)")
                period = n * mult
            cpus = online_cpus() if p == "profile" else [0]
            pid = self.pid if p == "profile" and self.pid else -1
            return [attach_perf_event(bp, cpu=c, pid=pid, sample_freq=freq,
                                      sample_period=period) for c in cpus]
        raise TraceError(f"{p} probes are not supported yet")

    # ----------------------------------------------------------------- running
    def run(self, duration: float = 0.0) -> int:
        checked = self.compile()
        self._start_child()
        prog, gens = generate(checked, time.monotonic_ns(), self.params, self.child)
        self.prog = prog
        try:
            self._create_maps(prog)
            from ..readers import RingBuffer
            rb = RingBuffer(self.maps["__events"], callback=self._on_event)
            self.rb = rb
            begin: list[Any] = []
            end: list[Any] = []
            rest: list[Any] = []
            for g in gens:
                bp = self._load(g, checked)
                self.programs.append(bp)
                {"BEGIN": begin, "END": end}.get(g.unit.provider, rest).append((bp, g.unit))
            for bp, u in rest:
                self.links.extend(self._attach(bp, u))
            # Printed once attached (bpftrace prints it just before attaching).
            n = len(rest) + len(begin) + len(end)
            self.write("attached_probes", {"probes": n},
                       f"Attaching {n} probe{'s' if n != 1 else ''}...\n")
            for bp, _ in begin:
                bp.test_run(context=bytes(8))
            rb.consume()
            if not self.stop:  # exit() in BEGIN: END runs, the command never starts
                self._release_child()
                self._loop(duration)
            for link_ in self.links:
                link_.close()
            self.links = []
            self.in_end = True
            for bp, _ in end:
                bp.test_run(context=bytes(8))
            rb.consume()
            self._print_all()
            lost = struct.unpack("<Q", bytes(self.maps["__lost"].lookup(0)))[0] \
                if self.maps["__lost"].lookup(0) is not None else 0
            if lost:
                print(f"Lost {lost} events", file=sys.stderr)
            return 0
        finally:
            self.close()

    def close(self) -> None:
        for obj in self.links + self.programs:
            try:
                obj.close()
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass
        rb = getattr(self, "rb", None)
        if rb is not None:
            rb.close()
        for m in self.maps.values():
            m.close()
        self.links, self.programs, self.maps = [], [], {}
        if self.gate >= 0:
            os.close(self.gate)
            self.gate = -1
        if self.child:
            try:
                os.kill(self.child, signal.SIGTERM)
                os.waitpid(self.child, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self.child = 0

    def _start_child(self) -> None:
        if not self.command:
            return
        import shlex
        import shutil
        argv = shlex.split(self.command)
        path = shutil.which(argv[0]) if argv else None
        if not path:
            raise TraceError(f"-c: command not found: {argv[0] if argv else self.command!r}")
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: wait until the probes are attached, then exec (no shell)
            try:
                os.close(w)
                os.read(r, 1)
                os.close(r)
                os.execv(path, argv)
            finally:
                os._exit(127)
        os.close(r)
        self.child, self.gate = pid, w

    def _release_child(self) -> None:
        if self.gate >= 0:
            os.write(self.gate, b"x")
            os.close(self.gate)
            self.gate = -1

    def _loop(self, duration: float) -> None:
        deadline = time.monotonic() + duration if duration else None
        interrupted: list[int] = []

        def on_int(signum: int, frame: Any) -> None:
            interrupted.append(signum)
            self.rb.stop()

        handlers: list[tuple[Any, Any]] = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                handlers.append((sig, signal.signal(sig, on_int)))
            except ValueError:  # not the main thread
                break
        try:
            while not self.stop and not interrupted:
                if self.child:
                    done, _ = os.waitpid(self.child, os.WNOHANG)
                    if done:
                        self.child = 0
                        self.rb.consume()
                        break
                if deadline is not None and time.monotonic() >= deadline:
                    break
                self.rb.poll(timeout=0.1)
        finally:
            for sig, h in handlers:
                signal.signal(sig, h)

    # ----------------------------------------------------------------- events
    def _on_event(self, rec: Any) -> None:
        if self.stop and not self.in_end:
            return  # bpftrace drops what was queued behind exit()
        b = bytes(rec)
        assert self.prog is not None
        eid = struct.unpack_from("<Q", b)[0]
        if eid >= len(self.prog.events):
            return
        ev: Event = self.prog.events[eid]
        if ev.kind == "printf":
            vals, at = [], 8
            for t in ev.types:
                vals.append(decode(t, b, at))
                at += t.stored
            text = self.fmt.printf(ev.fmt, ev.types, vals)
            self.write("printf", text, text)
        elif ev.kind == "print_value":
            t = ev.types[0]
            text = self.fmt.value(t, decode(t, b, 8))
            self.write("value", text, text + "\n")
        elif ev.kind == "print_map":
            self._print_map(ev.map)
        elif ev.kind == "clear" and self.prog.layouts[ev.map].info.key is not None:
            self.maps[ev.map].clear()
        elif ev.kind in ("zero", "clear"):  # clear() of a keyless map zeroes it, as in 0.17
            m = self.maps[ev.map]
            for k in list(m.keys()):
                m.update(k, bytes(m.value_size))
        elif ev.kind == "exit":
            self.stop = True
            self.rb.stop()
        elif ev.kind == "time":
            text = time.strftime(ev.fmt)
            self.write("time", text, text)

    def _read_map(self, name: str) -> MapData:
        assert self.prog is not None
        m = self.maps[name]
        raw = [(bytes(k), bytes(v)) for k, v in m.items()]
        return MapData(name, self.prog.layouts[name], raw)

    def _print_map(self, name: str) -> None:
        data = self._read_map(name)
        if self.json:
            if data.entries:
                self.out.write(format_map_json(data, self.fmt) + "\n")
        else:
            self.out.write(format_map_text(data, self.fmt))
        self.out.flush()

    def _print_all(self) -> None:
        assert self.prog is not None
        self.out.write("\n\n")
        for name in sorted(self.prog.layouts):
            self._print_map(name)


def _span_of(log: str, spans: list[Any]) -> Any:
    """The source span of the last instruction the verifier log mentions."""
    idx = None
    for ln in log.splitlines():
        m = re.match(r"^(\d+): \(", ln.strip())
        if m:
            idx = int(m.group(1))
    if idx is not None and 0 <= idx < len(spans):
        return spans[idx]
    return None


def list_probes(pattern: str, env: SystemEnv | None = None,
                write: Callable[[str], Any] = print) -> int:
    """``-l PATTERN``: tracepoints (and uprobe:BINARY:* functions) matching it."""
    env = env or SystemEnv()
    pattern = pattern or "*"
    n = 0
    if pattern.startswith(("uprobe:", "uretprobe:")):
        kind, binary, funcs = (pattern.split(":", 2) + ["*"])[:3]
        for f in env.user_functions(binary):
            if fnmatch.fnmatchcase(f, funcs):
                write(f"{kind}:{binary}:{f}")
                n += 1
        return n
    if pattern.startswith(("kprobe:", "kretprobe:", "kfunc:", "kretfunc:")):
        kind, funcs = pattern.split(":", 1)
        for f in env.kernel_functions(funcs or "*"):
            write(f"{kind}:{f}")
            n += 1
        return n
    for cat, ev in env.tracepoints():
        full = f"tracepoint:{cat}:{ev}"
        if fnmatch.fnmatchcase(full, pattern) or fnmatch.fnmatchcase(f"{cat}:{ev}", pattern):
            write(full)
            n += 1
    for name in ("BEGIN", "END"):
        if fnmatch.fnmatchcase(name, pattern):
            write(name)
            n += 1
    return n
