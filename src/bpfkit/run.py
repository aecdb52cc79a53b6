"""``bpfkit run``: the shortest way from a C file to an answer.

Build (if given C), load, attach everything the sections name (skipping, and saying
why, what this kernel lacks), stream ring/perf buffer records and ``bpf_printk`` lines
decoded through BTF, and at exit print every map: histograms as histograms, counters
sorted, globals by name.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._consts import HelperId, MapType
from .cleanup import interrupt_on_term
from .errors import BpfkitError

_SKIP_MAPS = {MapType.RINGBUF, MapType.PERF_EVENT_ARRAY, MapType.PROG_ARRAY,
              MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS, MapType.STACK_TRACE,
              MapType.USER_RINGBUF, MapType.SOCKMAP, MapType.SOCKHASH, MapType.DEVMAP,
              MapType.CPUMAP, MapType.XSKMAP}


def parse_const(text: str) -> tuple[str, Any]:
    """``NAME=VALUE``: ints (0x.., negative), true/false, else a string."""
    if "=" not in text:
        raise BpfkitError(f"--const {text!r}: expected NAME=VALUE")
    name, _, raw = text.partition("=")
    v: Any = raw
    low = raw.lower()
    if low in ("true", "false"):
        v = low == "true"
    else:
        try:
            v = int(raw, 0)
        except ValueError:
            pass
    return name.strip(), v


def _status(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def _jsonable(v: Any) -> Any:
    """JSON data for a decoded value: enums by name, records as objects, raw bytes as hex."""
    from .btf.codec import EnumInt
    if isinstance(v, EnumInt):
        return v.name if v.name is not None else int(v)
    if hasattr(v, "_asdict"):
        return {k: _jsonable(x) for k, x in v._asdict(recursive=False).items()}
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    if isinstance(v, bool) or not isinstance(v, int):
        return v
    return int(v)


def _fmt_value(v: Any) -> str:
    """One line of text for a decoded value: enums by name, records as {field: value}."""
    from .btf.codec import EnumInt
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    if isinstance(v, EnumInt):
        return v.name if v.name is not None else str(int(v))
    if hasattr(v, "_asdict"):
        v = v._asdict(recursive=False)
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_fmt_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        if len(v) > 16:
            return f"[{', '.join(_fmt_value(x) for x in v[:16])}, ...]"
        return "[" + ", ".join(_fmt_value(x) for x in v) + "]"
    if isinstance(v, str):
        return repr(v)
    return str(v)


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
                                     warn=lambda m, q=quiet: _warn(m, q))  # type: ignore[misc]
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


def print_maps(coll: Any, as_json: bool, out: Any = sys.stdout) -> None:
    """Every map at exit: globals, histograms, sorted counters, other entries."""
    from . import histogram
    result: dict[str, Any] = {}
    variables = getattr(coll, "variables", {})
    shown_vars = {n: v for n, v in variables.items() if not n.startswith(("_", "unused"))}
    if shown_vars:
        vals = {}
        for n, var in shown_vars.items():
            try:
                vals[n] = var.value
            except BpfkitError:
                continue
        result["globals"] = vals
        if not as_json and vals:
            print("\nglobals:", file=out)
            for n, v in vals.items():
                print(f"  {n} = {_fmt_value(v)}", file=out)
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
        if m.percpu:
            items = [(k, sum(v) if all(isinstance(x, int) for x in v) else v) for k, v in items]
        ints = all(isinstance(v, int) for _, v in items)
        if "hist" in name and ints and items:
            counts = {int(k) if isinstance(k, int) else i: v for i, (k, v) in enumerate(items)}
            result[name] = {"type": "log2_histogram", "buckets": counts}
            if not as_json:
                print(f"\n@{name}:", file=out)
                print(histogram.format_log2_hist(counts, "value"), file=out)
            continue
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


def run(source: str, *, consts: Sequence[str] = (), duration: float = 0.0,
        pid: int | None = None, as_json: bool = False,
        record: Sequence[str] | str | None = None,
        command: Sequence[str] = (), attach_kw: dict[str, Any] | None = None,
        quiet: bool = False) -> int:
    from .manager import Manager, Probe
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

    from .attach.auto import auto_attachable

    class _Shim:
        def __init__(self, ps: Any) -> None:
            self.spec = ps

    probes = [Probe(n, optional=True, options=dict(attach_kw or {}))
              for n, ps in spec.programs.items() if auto_attachable(_Shim(ps))]
    if not probes:
        raise BpfkitError(f"{obj}: no program names a hook bpfkit can attach by itself "
                          "(tracepoint, raw_tp, uprobe, usdt, kprobe, fentry, iter...)")
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
            return _stream(m, as_json, duration, record, command, stop, quiet)
    except KeyboardInterrupt:
        return 0


def _stream(m: Any, as_json: bool, duration: float, record: Sequence[str] | str | None,
            command: Sequence[str], stop: dict[str, bool], quiet: bool = False) -> int:
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

    def emit(map_name: str):  # type: ignore[no-untyped-def]
        def cb(rec: Any) -> None:
            if as_json:
                print(json.dumps({"type": "event", "map": map_name, "data": _jsonable(rec)}),
                      flush=True)
            else:
                print(f"{map_name}: {_fmt_value(rec)}", flush=True)
        return cb

    child = subprocess.Popen(list(command)) if command else None
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
                rc = child.returncode
                break
        for name, r in readers:
            r.poll(emit(name), timeout=0)
    except KeyboardInterrupt:
        pass
    finally:
        if child is not None and child.poll() is None:
            child.terminate()
            child.wait()
    print_maps(coll, as_json)
    return rc


def main_args(a: Any) -> int:
    return run(a.source, consts=a.const or (), duration=a.duration, pid=a.pid, as_json=a.json,
               record=a.record, command=a.command or (),
               attach_kw={"ifname": a.ifname} if a.ifname else None)


