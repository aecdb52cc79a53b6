"""A declarative lifecycle for long-running BPF programs (the Python ebpf-manager).

Why: a tool ships several variants of one hook ("fentry, else kprobe, else this
tracepoint"), constants and map sizes set at start, readers, and must leave nothing
attached when it stops, whatever happened.  The Manager owns all of that.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import cleanup as _cleanup
from ._consts import ProgramType
from .errors import AttachError, BpfkitError, KernelError, LoadError, VerifierError

__all__ = ["Manager", "Probe", "MapOptions", "ProbeStatus", "OneOf", "AllOf", "BestEffort"]


@dataclass
class Probe:
    """One attachment of a program.

    ``program``: the program (function) name in the object.  ``uid`` tells apart several
    attachments of one program.  ``fallbacks``: other programs to try, in order, when this
    one cannot be loaded or attached on this kernel.  Attach keywords (``ifname``,
    ``direction``, ``binary``, ``symbol``, ``pid``, ``cgroup``, ``sock``...) name targets the
    section cannot.  ``optional`` probes may fail without failing ``start()``.
    """

    program: str
    uid: str = ""
    fallbacks: Sequence[str] = ()
    optional: bool = False
    ifname: str | None = None
    direction: str | None = None
    skip_loopback: bool = False
    binary: str | None = None
    symbol: str | None = None
    pid: int | None = None
    cgroup: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> tuple[str, str]:
        return (self.uid, self.program)

    def candidates(self) -> list[str]:
        return [self.program, *self.fallbacks]

    def attach_kwargs(self) -> dict[str, Any]:
        kw = dict(self.options)
        for k in ("ifname", "direction", "binary", "symbol", "pid", "cgroup"):
            v = getattr(self, k)
            if v is not None:
                kw[k] = v
        return kw


@dataclass
class OneOf:
    """Exactly one of these probes must attach (the first that works wins)."""

    probes: Sequence[Probe]


@dataclass
class AllOf:
    """All of these probes must attach, or none stays attached."""

    probes: Sequence[Probe]


@dataclass
class BestEffort:
    """Attach whichever of these work."""

    probes: Sequence[Probe]


@dataclass
class MapOptions:
    """Load-time edits of a map spec."""

    max_entries: int | None = None
    type: int | None = None
    flags: int | None = None
    pin: str | None = None  # "by_name" (under pin_root) or None
    reuse: Any = None       # a Map to share instead of creating one


@dataclass
class ProbeStatus:
    """What happened to a probe: which program and hook, or why it was skipped."""

    uid: str
    requested: str
    program: str | None = None
    hook: str = ""
    attached: bool = False
    paused: bool = False
    reason: str = ""
    tried: list[tuple[str, str]] = field(default_factory=list)


class Manager:
    """Load an object, edit it, attach probes with fallbacks, read its output, clean up.

    ``with Manager("prog.bpf.o", probes=[...], constants={...}, maps={...}) as m:``
    loads and starts; leaving the block (or an exception, SIGINT or SIGTERM) stops it and
    detaches everything.
    """

    def __init__(self, obj: Any, probes: Sequence[Probe | OneOf | AllOf | BestEffort] = (), *,
                 constants: dict[str, Any] | None = None,
                 maps: dict[str, MapOptions] | None = None,
                 tail_calls: dict[str, dict[int, str]] | None = None,
                 pin_root: str | None = None, btf: Any = None,
                 handle_signals: bool = True, load_all: bool = False,
                 drop_unloadable: bool = False) -> None:
        self.obj = obj
        self.groups = [p if not isinstance(p, Probe) else AllOf([p]) if not p.optional
                       else BestEffort([p]) for p in probes]
        self.constants = dict(constants or {})
        self.map_options = dict(maps or {})
        self.tail_calls = dict(tail_calls or {})
        self.pin_root = pin_root
        self.btf = btf
        self.handle_signals = handle_signals
        self.load_all = load_all              # load every program, not only the probes'
        self.drop_unloadable = drop_unloadable  # skip programs this kernel refuses to load
        self.collection: Any = None
        self.status: dict[tuple[str, str], ProbeStatus] = {}
        self._links: dict[tuple[str, str], Any] = {}
        self._readers: list[Any] = []
        self._prev_handlers: dict[int, Any] = {}
        self._failed_load: dict[str, str] = {}
        self._started = False

    # ----------------------------------------------------------------- loading

    def _spec(self) -> Any:
        from .spec import CollectionSpec
        if isinstance(self.obj, CollectionSpec):
            return self.obj
        return CollectionSpec.from_file(os.fspath(self.obj))

    def _all_probes(self) -> list[Probe]:
        return [p for g in self.groups for p in g.probes]

    def init(self) -> Manager:
        """Load the object with the editors applied; programs a kernel refuses to load are
        dropped (and their fallbacks loaded) instead of failing the whole collection."""
        if self.collection is not None:
            return self
        spec = self._spec()
        for name, opt in self.map_options.items():
            ms = spec.maps.get(name)
            if ms is None:
                raise LoadError(f"map editor: no map {name!r} in the object "
                                f"(maps: {', '.join(sorted(spec.maps))})")
            if opt.max_entries is not None:
                ms.max_entries = opt.max_entries
            if opt.type is not None:
                ms.type = opt.type
            if opt.flags is not None:
                ms.flags = opt.flags
            if opt.pin == "by_name":
                ms.pinning = 1
        wanted = {c for p in self._all_probes() for c in p.candidates()}
        wanted |= {n for routes in self.tail_calls.values() for n in routes.values()}
        for name in wanted:
            if name not in spec.programs:
                raise LoadError(f"probe names program {name!r}, which the object does not have "
                                f"(programs: {', '.join(sorted(spec.programs))})")
        if wanted and not self.load_all:
            for name, ps in spec.programs.items():
                ps.autoload = name in wanted
        # Retry the load without programs the kernel refuses (e.g. fentry where the kernel
        # forbids TRACING programs), so their fallbacks can be used.
        for _ in range(len(spec.programs) + 1):
            try:
                self.collection = spec.load(constants=self.constants, pin_root=self.pin_root,
                                            btf=self.btf)
                break
            except (VerifierError, KernelError, LoadError) as e:
                bad = self._program_of_error(e, spec)
                if bad is None or not self._has_alternative(bad):
                    raise
                self._failed_load[bad] = str(e)
                spec.programs[bad].autoload = False
        else:
            raise LoadError("could not load the object with any combination of fallbacks")
        for outer, routes in self.tail_calls.items():
            pa = self.collection.maps[outer]
            for slot, prog_name in routes.items():
                pa[slot] = self.collection.programs[prog_name]
        return self

    def _program_of_error(self, e: Exception, spec: Any) -> str | None:
        obj = getattr(e, "obj", None) or ""
        text = str(e)
        for name in spec.programs:
            if not spec.programs[name].autoload:
                continue
            # the kernel knows programs by their first 15 characters
            for n in (name, name[:15]):
                if f"'{n}'" in obj or f"'{n}'" in text:
                    return name
        kernel_name = getattr(e, "program", None)
        return kernel_name if kernel_name in spec.programs else None

    def _has_alternative(self, prog: str) -> bool:
        if self.drop_unloadable:
            return True
        for p in self._all_probes():
            c = p.candidates()
            if prog in c and any(x != prog and x not in self._failed_load for x in c):
                return True
        return False

    # ----------------------------------------------------------------- attaching

    def _attach_probe(self, p: Probe) -> ProbeStatus:
        st = ProbeStatus(uid=p.uid, requested=p.program)
        self.status[p.id] = st
        progs = self.collection.programs
        for cand in p.candidates():
            if cand in self._failed_load:
                st.tried.append((cand, f"not loaded: {self._failed_load[cand]}"))
                continue
            prog = progs.get(cand)
            if prog is None:
                st.tried.append((cand, "not loaded"))
                continue
            try:
                link = self._attach_one(prog, p)
            except (BpfkitError, OSError) as e:
                st.tried.append((cand, str(e)))
                continue
            self._links[p.id] = link
            st.program, st.attached = cand, True
            st.hook = getattr(link, "hook", "") if not isinstance(link, list) else \
                ", ".join(getattr(x, "hook", "") for x in link)
            st.reason = "" if cand == p.program else "fallback: " + "; ".join(
                f"{n}: {r}" for n, r in st.tried)
            return st
        st.reason = "; ".join(f"{n}: {r}" for n, r in st.tried) or "no candidate"
        return st

    def _attach_one(self, prog: Any, p: Probe) -> Any:
        kw = p.attach_kwargs()
        if p.skip_loopback and kw.get("ifname") == "lo" and \
                int(prog.type) in (ProgramType.XDP, ProgramType.SCHED_CLS):
            raise AttachError("skip_loopback: not attaching to lo")
        return prog.attach(**kw)

    def start(self) -> Manager:
        """Attach every probe (loading first if needed); raise if a required group fails."""
        self.init()
        if self.handle_signals:
            self._install_signals()
        try:
            for g in self.groups:
                if isinstance(g, OneOf):
                    ok = None
                    for p in g.probes:
                        st = self._attach_probe(p)
                        if st.attached:
                            ok = st
                            break
                    if ok is None:
                        raise AttachError("none of the one-of probes attached: " + "; ".join(
                            f"{p.program}: {self.status[p.id].reason}" for p in g.probes))
                    for p in g.probes:
                        if p.id not in self.status:
                            self.status[p.id] = ProbeStatus(p.uid, p.program,
                                                            reason="another probe of its "
                                                                   "one-of group attached")
                elif isinstance(g, AllOf):
                    for p in g.probes:
                        st = self._attach_probe(p)
                        if not st.attached and not p.optional:
                            raise AttachError(f"probe {p.program!r}"
                                              f"{' uid ' + repr(p.uid) if p.uid else ''} "
                                              f"could not attach: {st.reason}")
                else:
                    for p in g.probes:
                        self._attach_probe(p)
        except BaseException:
            self.stop()
            raise
        self._started = True
        return self

    # ----------------------------------------------------------------- run-time changes

    def pause(self, program: str, uid: str = "") -> None:
        """Detach one probe, keeping its program loaded."""
        link = self._links.pop((uid, program), None)
        if link is None:
            raise AttachError(f"probe {program!r} uid {uid!r} is not attached")
        self._close_link(link)
        self.status[(uid, program)].paused = True
        self.status[(uid, program)].attached = False

    def resume(self, program: str, uid: str = "") -> None:
        p = self._find_probe(program, uid)
        st = self._attach_probe(p)
        if not st.attached:
            raise AttachError(f"probe {program!r} could not be re-attached: {st.reason}")

    def add_probe(self, probe: Probe) -> ProbeStatus:
        """Attach another hook at run time (e.g. the same tc program on a new interface)."""
        if probe.id in self._links:
            raise AttachError(f"probe {probe.id} is already attached")
        self.groups.append(BestEffort([probe]))
        return self._attach_probe(probe)

    def clone_probe(self, program: str, new_uid: str, uid: str = "", **changes: Any) -> ProbeStatus:
        """A copy of an existing probe with another uid and changed targets."""
        import dataclasses
        p = dataclasses.replace(self._find_probe(program, uid), uid=new_uid, **changes)
        return self.add_probe(p)

    def detach_probe(self, program: str, uid: str = "") -> None:
        link = self._links.pop((uid, program), None)
        if link is not None:
            self._close_link(link)
        self.groups = [type(g)([p for p in g.probes if p.id != (uid, program)]) for g in self.groups]
        self.status.pop((uid, program), None)

    def _find_probe(self, program: str, uid: str) -> Probe:
        for p in self._all_probes():
            if p.id == (uid, program):
                return p
        raise AttachError(f"no probe {program!r} uid {uid!r}")

    # ----------------------------------------------------------------- access

    @property
    def programs(self) -> dict[str, Any]:
        return self.collection.programs

    @property
    def maps(self) -> dict[str, Any]:
        return self.collection.maps

    def program(self, name: str) -> Any:
        return self.collection.programs[name]

    def map(self, name: str) -> Any:
        return self.collection.maps[name]

    def ring_buffer(self, name: str, record: Any = None, **kw: Any) -> Any:
        """A ring buffer reader owned by the manager (closed on stop)."""
        from .readers import RingBuffer
        r = RingBuffer(self.collection.maps[name], record=record, **kw)
        self._readers.append(r)
        return r

    def perf_buffer(self, name: str, **kw: Any) -> Any:
        from .readers import PerfBuffer
        r = PerfBuffer(self.collection.maps[name], **kw)
        self._readers.append(r)
        return r

    def test_run(self, program: str, *args: Any, **kw: Any) -> Any:
        """BPF_PROG_TEST_RUN of a probe's program."""
        return self.collection.programs[program].test_run(*args, **kw)

    def report(self) -> list[ProbeStatus]:
        return list(self.status.values())

    def chosen(self, program: str, uid: str = "") -> str | None:
        """Which program actually attached for a probe (after fallbacks)."""
        st = self.status.get((uid, program))
        return st.program if st else None

    # ----------------------------------------------------------------- stopping

    def _close_link(self, link: Any) -> None:
        for li in link if isinstance(link, list) else [link]:
            try:
                li.close()
            except (BpfkitError, OSError):
                pass

    def stop(self, cleanup: bool = True) -> None:
        """Detach every probe and close readers; ``cleanup`` also closes programs and maps
        (and unpins nothing that was pinned on purpose)."""
        for r in self._readers:
            try:
                r.close()
            except (BpfkitError, OSError):
                pass
        self._readers.clear()
        for key in list(self._links):
            self._close_link(self._links.pop(key))
        for st in self.status.values():
            st.attached = False
        if cleanup and self.collection is not None:
            self.collection.close()
            self.collection = None
        self._restore_signals()
        self._started = False

    close = stop

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def handler(signum: int, frame: Any) -> None:
            self.stop()
            prev = self._prev_handlers.get(signum)
            if callable(prev):
                prev(signum, frame)
            elif signum == signal.SIGTERM:
                raise SystemExit(128 + signum)
            else:
                raise KeyboardInterrupt

        for s in (signal.SIGTERM,):
            try:
                if not _cleanup.is_default_term_handler(signal.getsignal(s)):
                    continue  # the program handles SIGTERM itself: never replace it
                self._prev_handlers[s] = signal.signal(s, handler)
            except (ValueError, OSError):
                pass

    def _restore_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for s, h in self._prev_handlers.items():
            try:
                signal.signal(s, h)
            except (ValueError, OSError, TypeError):
                pass
        self._prev_handlers.clear()

    def __enter__(self) -> Manager:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __iter__(self) -> Iterator[ProbeStatus]:
        return iter(self.report())

    def __repr__(self) -> str:
        on = sum(1 for s in self.status.values() if s.attached)
        return f"<Manager {self.obj!s} {on}/{len(self.status)} probes attached>"


