"""``bpfkit run``: the shortest way from a C file to an answer.

Build (if given C), load, attach everything the sections name (skipping, and saying
why, what this kernel lacks), stream ring/perf buffer records and ``bpf_printk`` lines
decoded through BTF, and at exit print every map: histograms as histograms, counters
sorted, globals by name.
"""

from __future__ import annotations

import json
import select
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._consts import HelperId, MapType
from .cleanup import interrupt_on_term
from .errors import BpfkitError, UsageError
from .show import plain, text

_SKIP_MAPS = {MapType.RINGBUF, MapType.PERF_EVENT_ARRAY, MapType.PROG_ARRAY,
              MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS, MapType.STACK_TRACE,
              MapType.USER_RINGBUF, MapType.SOCKMAP, MapType.SOCKHASH, MapType.DEVMAP,
              MapType.CPUMAP, MapType.XSKMAP}


def parse_const(text: str) -> tuple[str, Any]:
    """``NAME=VALUE``: the value stays text until the variable's BTF type parses it (an int
    in any base, a bool, a char or string, an enumerator name); see spec.encode_text."""
    from .spec import ConstText
    name, sep, raw = text.partition("=")
    if not sep or not name.strip():
        raise UsageError(f"--const {text!r}: expected NAME=VALUE")
    return name.strip(), ConstText(raw)


def _status(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def _jsonable(v: Any) -> Any:
    return plain(v)


def _fmt_value(v: Any) -> str:
    return text(v)


def _warn(msg: str, quiet: bool) -> None:
    if not quiet:
        print(f"warning: {msg}", file=sys.stderr, flush=True)


def record_decoders(spec: Any, maps: dict[str, bool], record: Sequence[str] | str | None,
                    quiet: bool = False) -> dict[str, Any]:
    """A decoder per ring (False) / perf (True) buffer map: its inferred or chosen record
    type, or None (hex) after one warning that says how to choose."""
    from .records import choose_records, parse_record_options, safe_decoder
    values = [record] if isinstance(record, str) else list(record or ())
    pairs, bare = parse_record_options(values)
    unknown = sorted(set(pairs) - set(maps))
    if unknown:
        raise BpfkitError(f"--record names {', '.join(map(repr, unknown))}, which "
                          f"{'is' if len(unknown) == 1 else 'are'} not a ring or perf buffer "
                          f"map of this object (those are: {', '.join(sorted(maps)) or 'none'})")
    out: dict[str, Any] = {}
    for name, ch in choose_records(spec, list(maps), pairs, bare).items():
        if ch.chosen:
            out[name] = safe_decoder(ch, perf=maps[name],
                                     warn=lambda m, q=quiet: _warn(m, q))
        else:
            out[name] = None
            if ch.warning:
                _warn(ch.warning, quiet)
    return out


def _uses_printk(coll: Any) -> bool:
    ids = {int(HelperId.trace_printk), int(HelperId.trace_vprintk)}
    for p in coll.spec.programs.values():
        if p.name in coll.programs and any(i.is_helper_call and i.imm in ids
                                           for i in p.instructions):
            return True
    return False


def hist_slots(btf: Any, type_id: int) -> str | None:
    """How a value type holds a histogram: ``""`` when it is itself an array of u32/u64
    slots, the member name when it is a struct whose member is such an array (the
    libbpf-tools ``struct hist { __u32 slots[N]; ... }``), None when it is not one."""
    from .btf import types as bt
    from .errors import ParseError

    def slots(tid: int) -> bool:
        t = btf.type(btf.resolve(tid))
        if not isinstance(t, bt.Array) or t.nelems < 2:
            return False
        e = btf.type(btf.resolve(t.type))
        return isinstance(e, bt.Int) and e.size in (4, 8) and not e.is_char and not e.is_bool

    if not type_id or btf is None:
        return None
    try:
        if slots(type_id):
            return ""
        t = btf.type(btf.resolve(type_id))
        if isinstance(t, bt.Struct):
            for m in t.members:
                if m.name and not m.bitfield_size and slots(m.type):
                    return m.name
    except ParseError:
        return None
    return None


def _sum_slots(values: list[Any], member: str) -> tuple[list[int], Any]:
    """Slot counts summed over per-CPU copies, and the first copy (for other members)."""
    rows = [list(getattr(v, member) if member else v) for v in values]
    return [sum(col) for col in zip(*rows, strict=True)], values[0]


def _histograms(m: Any, items: list[tuple[Any, Any]], member: str
                ) -> list[tuple[Any, Any, list[int]]]:
    """(key, other members, slot counts) per key that has any count."""
    out = []
    for k, v in items:
        counts, first = _sum_slots(v if m.percpu else [v], member)
        if not any(counts):
            continue
        extra = None
        if member:
            extra = {f: x for f, x in first._asdict(recursive=False).items() if f != member}
        out.append((k, extra or None, counts))
    return out


def _decode_global(var: Any) -> Any:
    """A global's value through the BTF value codec (structs as records, enums by name)."""
    from .btf.codec import decoder_for
    if var.btf is not None and var.type_id:
        try:
            return decoder_for(var.btf, var.type_id)(var.raw)
        except BpfkitError:
            pass
    return var.value


def print_maps(coll: Any, as_json: bool, out: Any = sys.stdout) -> None:
    """Every map at exit: globals, histograms (recognised by their BTF value type, one per
    key like bpftrace's ``@h[key]``), sorted counters, other entries."""
    from . import histogram
    result: dict[str, Any] = {}
    variables = getattr(coll, "variables", {})
    # function-scope statics ("func.name") are the program's own scratch, not results
    shown_vars = {n: v for n, v in variables.items()
                  if not n.startswith(("_", "unused")) and "." not in n}
    if shown_vars:
        vals = {}
        for n, var in shown_vars.items():
            try:
                vals[n] = _decode_global(var)
            except BpfkitError:
                continue
        result["globals"] = vals
        if not as_json and vals:
            print("\nglobals:", file=out)
            for n, v in vals.items():
                print(f"  {n} = {_fmt_value(v)}", file=out)
    btf = getattr(coll.spec, "btf", None)
    for name, m in coll.maps.items():
        spec = coll.spec.maps.get(name)
        if (spec is not None and spec.is_data) or name.startswith(("__bpf_usdt", ".")):
            continue
        if m.type in _SKIP_MAPS:
            continue
        try:
            items = list(m.items())
        except BpfkitError as e:
            if not as_json:
                print(f"\n@{name}: cannot read: {e}", file=out)
            continue
        member = hist_slots(btf, spec.value_type_id) if spec is not None else None
        if member is not None:
            hists = _histograms(m, items, member)
            single = m.type in (MapType.ARRAY, MapType.PERCPU_ARRAY) and m.max_entries == 1
            if single:
                counts = dict(enumerate(hists[0][2])) if hists else {}
                result[name] = {"type": "log2_histogram", "buckets": counts}
            else:
                result[name] = {"type": "log2_histogram", "per_key": [
                    {"key": k, **({"labels": x} if x else {}), "buckets": dict(enumerate(c))}
                    for k, x, c in hists]}
            if not as_json:
                if single:
                    print(f"\n@{name}:", file=out)
                    if hists:
                        print(histogram.format_log2_hist(hists[0][2], "value"), file=out)
                for k, x, c in hists if not single else []:
                    labels = f" {_fmt_value(x)}" if x else ""
                    print(f"\n@{name}[{_fmt_value(k)}]:{labels}", file=out)
                    print(histogram.format_log2_hist(c, "value"), file=out)
            continue
        if m.percpu:
            items = [(k, sum(v) if all(isinstance(x, int) for x in v) else v) for k, v in items]
        ints = all(isinstance(v, int) for _, v in items)
        if ints and m.type not in (MapType.ARRAY, MapType.PERCPU_ARRAY):
            items.sort(key=lambda kv: kv[1], reverse=True)
        elif m.type in (MapType.ARRAY, MapType.PERCPU_ARRAY) and ints:
            items = [(k, v) for k, v in items if v]
        result[name] = [{"key": _jsonable(k), "value": _jsonable(v)} for k, v in items]
        if not as_json:
            print(f"\n@{name} ({len(items)} entries):", file=out)
            for k, v in items[:100]:
                print(f"  {_fmt_value(k)}: {_fmt_value(v)}", file=out)
            if len(items) > 100:
                print(f"  ... {len(items) - 100} more", file=out)
    if as_json:
        print(json.dumps({"type": "maps", "maps": _jsonable(result)}), file=out, flush=True)


class HeldCommand:
    """A command started held before exec, the way bpftrace's ``-c`` starts one: forked,
    the child blocks on a pipe until :meth:`release`, then execs.  Its pid is known before
    anything is attached (so ``targ_pid`` can name it), and nothing it does before the
    release is traced because it does nothing."""

    def __init__(self, argv: Sequence[str]) -> None:
        import os
        if not argv:
            raise BpfkitError("no command given after --")
        self.argv = list(argv)
        go_r, self._go_w = os.pipe()
        self._err_r, err_w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:                       # the child: wait, then exec
            code = 126
            try:
                os.close(self._go_w)
                os.close(self._err_r)
                if os.read(go_r, 1) == b"x":
                    os.close(go_r)
                    code = 127
                    os.execvp(self.argv[0], self.argv)
            except OSError as e:
                os.write(err_w, str(e.errno or 0).encode())
            finally:
                os._exit(code)
        os.close(go_r)
        os.close(err_w)
        self.pid = pid
        self.returncode: int | None = None

    def release(self) -> None:
        """Let the child exec; raise if the exec failed (no such command...)."""
        import errno as errno_mod
        import os
        os.write(self._go_w, b"x")
        os.close(self._go_w)
        self._go_w = -1
        data = os.read(self._err_r, 16)     # empty: the exec closed it (CLOEXEC)
        os.close(self._err_r)
        self._err_r = -1
        if data:
            self.wait()
            err = int(data)
            raise BpfkitError(f"cannot run {self.argv[0]!r}: {os.strerror(err)} "
                              f"({errno_mod.errorcode.get(err, err)})")

    def poll(self) -> int | None:
        import os
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self) -> int:
        import os
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def close(self) -> None:
        """Not released: the child exits without exec'ing; released and running: SIGTERM."""
        import os
        import signal
        for fd in (self._go_w, self._err_r):
            if fd >= 0:
                os.close(fd)
        self._go_w = self._err_r = -1
        if self.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            self.wait()


def run(source: str, *, consts: Sequence[str] = (), duration: float = 0.0,
        pid: int | None = None, as_json: bool = False,
        record: Sequence[str] | str | None = None,
        command: Sequence[str] = (), attach_kw: dict[str, Any] | None = None,
        quiet: bool = False) -> int:
    from .spec import CollectionSpec
    t0 = time.monotonic()
    src = Path(source)
    if src.suffix == ".c":
        import hashlib

        from .build import cache_dir, compile_bpf
        h = hashlib.sha256(src.read_bytes()).hexdigest()[:16]
        obj = cache_dir() / f"{src.stem}-{h}.o"
        if not obj.exists():
            _status(f"building {src} ...", quiet or as_json)
            compile_bpf(src, obj)
    else:
        obj = src
    spec = CollectionSpec.from_file(obj)
    constants = dict(parse_const(c) for c in consts)
    if pid is not None:
        for cand in ("targ_pid", "targ_tgid", "target_pid", "pid"):
            if cand in spec.variables:
                constants.setdefault(cand, pid)
                break
        else:
            _status("note: -p given but the object has no targ_pid constant", quiet or as_json)
    held = None
    if command:
        if pid is not None:
            raise BpfkitError("-p and a command after -- exclude each other: the command's "
                              "pid is the target")
        held = HeldCommand(command)
        names = [c for c in ("targ_pid", "targ_tgid") if c in spec.variables]
        for c in names:
            constants.setdefault(c, held.pid)
        if not names:
            _status("note: the object has no targ_pid/targ_tgid constant: events of every "
                    "process are shown, not only the command's", quiet or as_json)
    try:
        return _run(spec, obj, constants, t0, duration=duration, as_json=as_json,
                    record=record, held=held, attach_kw=attach_kw, quiet=quiet)
    finally:
        if held is not None:
            held.close()


def _run(spec: Any, obj: Any, constants: dict[str, Any], t0: float, *, duration: float,
         as_json: bool, record: Sequence[str] | str | None, held: HeldCommand | None,
         attach_kw: dict[str, Any] | None, quiet: bool) -> int:
    from .attach.auto import auto_attachable
    from .manager import Manager, Probe

    class _Shim:
        def __init__(self, ps: Any) -> None:
            self.spec = ps

    probes = [Probe(n, optional=True, options=dict(attach_kw or {}))
              for n, ps in spec.programs.items() if auto_attachable(_Shim(ps))]
    if not probes:
        raise BpfkitError(f"{obj}: no program names a hook bpfkit can attach by itself "
                          "(tracepoint, raw_tp, uprobe, usdt, kprobe, fentry, iter...)")
    # a full ring buffer fails the producer: count those failures (bpfkit.losses)
    from .losses import count_ringbuf_losses
    count_ringbuf_losses(spec)
    m = Manager(spec, probes, constants=constants, load_all=True, drop_unloadable=True)
    stop = {"now": False}
    try:
        with interrupt_on_term(), m:
            attached = [s for s in m.report() if s.attached]
            for st in m.report():
                if st.attached:
                    _status(f"attached {st.program} to {st.hook}", quiet or as_json)
                else:
                    _status(f"skipped {st.requested}: {st.reason}", quiet or as_json)
            for name, why in m._failed_load.items():
                _status(f"not loaded {name}: {why}", quiet or as_json)
            if not attached:
                raise BpfkitError("no program could be attached on this kernel (see above)")
            if as_json:
                print(json.dumps({"type": "attached", "ms": round((time.monotonic() - t0) * 1e3),
                                  "probes": [{"program": s.program, "hook": s.hook}
                                             for s in attached]}), flush=True)
            else:
                _status(f"attached in {(time.monotonic() - t0) * 1e3:.0f} ms; "
                        + (f"running for {duration:g} s" if duration else "Ctrl-C to stop"),
                        quiet)
            return _stream(m, as_json, duration, record, held, stop, quiet)
    except KeyboardInterrupt:
        return 0


def _stream(m: Any, as_json: bool, duration: float, record: Sequence[str] | str | None,
            held: HeldCommand | None, stop: dict[str, bool], quiet: bool = False) -> int:
    coll = m.collection
    readers: list[tuple[str, Any]] = []
    outputs = {name: mp.type == MapType.PERF_EVENT_ARRAY for name, mp in coll.maps.items()
               if mp.type in (MapType.RINGBUF, MapType.PERF_EVENT_ARRAY)}
    decoders = record_decoders(coll.spec, outputs, record, quiet)
    for name, mp in coll.maps.items():
        if mp.type == MapType.RINGBUF:
            readers.append((name, m.ring_buffer(name, record=decoders[name])))
        elif mp.type == MapType.PERF_EVENT_ARRAY:
            from .readers import PerfBuffer
            pb = PerfBuffer(mp, record=decoders[name])
            m._readers.append(pb)
            readers.append((name, pb))
    pipe = None
    if _uses_printk(coll):
        from .readers import TracePipe
        pipe = TracePipe()
        m._readers.append(pipe)

    from .show import write_line

    def emit(map_name: str):
        def cb(rec: Any) -> None:
            if as_json:
                write_line(json.dumps({"type": "event", "map": map_name,
                                       "data": _jsonable(rec)}))
            else:
                write_line(f"{map_name}: {_fmt_value(rec)}")
        return cb

    child = held
    if child is not None:
        child.release()      # attached: the command may exec now
    end = time.monotonic() + duration if duration else None
    rc = 0
    try:
        while not stop["now"]:
            timeout = 0.1
            if end is not None:
                left = end - time.monotonic()
                if left <= 0:
                    break
                timeout = min(timeout, left)
            fds = [r.fileno() for _, r in readers] + ([pipe.fileno()] if pipe else [])
            if fds:
                select.select(fds, [], [], timeout)
            else:
                time.sleep(timeout)
            for name, r in readers:
                r.poll(emit(name), timeout=0)
            if pipe is not None:
                for line in pipe.read(timeout=0.001):
                    if as_json:
                        print(json.dumps({"type": "printk", "task": line.task, "pid": line.pid,
                                          "cpu": line.cpu, "message": line.message}), flush=True)
                    else:
                        print(f"printk: {line.task}-{line.pid} [{line.cpu}] {line.message}",
                              flush=True)
            if child is not None and child.poll() is not None:
                rc = child.returncode or 0
                break
    except KeyboardInterrupt:
        pass
    try:  # what is already in the buffers is printed, not dropped, on Ctrl-C/SIGTERM
        for name, r in readers:
            r.poll(emit(name), timeout=0)
    except KeyboardInterrupt:
        pass
    finally:
        if child is not None:
            child.close()
    report_lost(coll, readers, as_json)
    print_maps(coll, as_json)
    return rc


def lost_counts(coll: Any, readers: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """What never reached us, per output map: failed ring buffer reserve/output calls (the
    instrumented counter, all ring buffers together) and perf buffer losses per CPU (from
    the kernel's PERF_RECORD_LOST)."""
    from .losses import perfbuf_lost, ringbuf_lost
    out: dict[str, Any] = {}
    rings = [n for n, r in readers if coll.maps[n].type == MapType.RINGBUF]
    if rings:
        out["ringbuf"] = {"maps": rings, "lost": ringbuf_lost(coll) or 0}
    perfs = [(n, r) for n, r in readers if coll.maps[n].type == MapType.PERF_EVENT_ARRAY]
    if perfs:
        per_cpu: dict[int, int] = {}
        for _n, r in perfs:
            for c, v in r.lost_per_cpu.items():
                if v:
                    per_cpu[c] = per_cpu.get(c, 0) + v
        kernel = sum(per_cpu.values())
        counted = perfbuf_lost(coll)
        # the kernel's per-CPU count trails (a loss is reported once a later record
        # fits); the instrumented count of failed bpf_perf_event_output calls is exact
        out["perf"] = {"maps": [n for n, _ in perfs],
                       "lost": max(kernel, counted or 0), "kernel_per_cpu": per_cpu}
    out["total"] = out.get("ringbuf", {}).get("lost", 0) + out.get("perf", {}).get("lost", 0)
    return out


def report_lost(coll: Any, readers: Sequence[tuple[str, Any]], as_json: bool,
                out: Any = sys.stdout) -> None:
    """"N events lost" at exit, whenever the object has a ring or perf buffer (0 included:
    saying nothing would leave the user to guess)."""
    if not readers:
        return
    lc = lost_counts(coll, readers)
    if as_json:
        print(json.dumps({"type": "lost", **_jsonable(lc)}), file=out, flush=True)
        return
    parts = []
    if "ringbuf" in lc:
        parts.append(f"ring buffer {', '.join(lc['ringbuf']['maps'])}: "
                     f"{lc['ringbuf']['lost']} (failed reserve/output)")
    if "perf" in lc:
        p = lc["perf"]
        cpus = ", ".join(f"cpu {c}: {v}" for c, v in sorted(p["kernel_per_cpu"].items()))
        parts.append(f"perf buffer {', '.join(p['maps'])}: {p['lost']}"
                     + (f" (kernel-reported per CPU: {cpus})" if cpus else ""))
    print(f"\n{lc['total']} events lost" + (f" — {'; '.join(parts)}" if parts else ""),
          file=out, flush=True)


def main_args(a: Any) -> int:
    return run(a.source, consts=a.const or (), duration=a.duration, pid=a.pid, as_json=a.json,
               record=a.record, command=a.command or (),
               attach_kw={"ifname": a.ifname} if a.ifname else None)


