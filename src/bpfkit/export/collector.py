"""Load the configured objects, attach them, and turn their maps into metric families.

Why read at scrape time: BPF programs aggregate in the kernel (a counter per key), so a
scrape is one batch read per map and the exporter holds no state but the objects.  Keys
are decoded through the object's BTF (``map.key_codec``), then each label runs its
decoder chain; values of per-CPU maps are summed.  A key that fails to decode is counted
in ``bpfkit_export_decode_errors_total`` and skipped, never a failed scrape.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from ..errors import ENOTSUPP, BpfkitError, KernelError, LoadError
from .config import ConfigError, ExportConfig, LabelConfig, MetricConfig, ObjectConfig
from .decoders import SKIP, DecodeError, DecoderContext, make_decoder, to_label
from .textformat import MetricFamily, render

__all__ = ["Exporter", "LoadedObject", "build_object", "get_path"]

_PATH_TOKEN = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


def get_path(value: Any, path: str) -> Any:
    """``a.b[2]`` inside a decoded record/dict/list."""
    pos = 0
    cur = value
    while pos < len(path):
        m = _PATH_TOKEN.match(path, pos)
        if m is None:
            raise DecodeError(f"bad field path {path!r}")
        pos = m.end()
        if m.group(1) is not None:
            name = m.group(1)
            if isinstance(cur, dict):
                if name not in cur:
                    raise DecodeError(f"no field {name!r} in {sorted(cur)}")
                cur = cur[name]
            else:
                fields = getattr(cur, "_fields", None)
                if fields is None or name not in fields:
                    have = ", ".join(fields) if fields else type(cur).__name__
                    raise DecodeError(f"no field {name!r} (have: {have})")
                cur = getattr(cur, name)
        else:
            idx = int(m.group(2))
            try:
                cur = cur[idx]
            except (IndexError, TypeError, KeyError):
                raise DecodeError(f"cannot index {type(cur).__name__} with [{idx}]")
    return cur


def _number(v: Any, what: str) -> float:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return v
    if isinstance(v, bool):
        return int(v)
    fields = getattr(v, "_fields", None)
    if fields is not None and len(fields) == 1:
        return _number(getattr(v, fields[0]), what)
    if fields is not None:
        raise DecodeError(f"{what} is a struct with fields {', '.join(fields)}: set 'value' "
                          "to one of them")
    if isinstance(v, (bytes, bytearray)):
        return int.from_bytes(v, "little")
    raise DecodeError(f"{what} is {type(v).__name__}, not a number")


def build_object(oc: ObjectConfig) -> str:
    """The object file of ``oc``: compiled (and cached by content) when it is C source."""
    if not oc.path.endswith(".c"):
        if not os.path.exists(oc.path):
            raise ConfigError(f"no such BPF object: {oc.path}", oc.source, oc.line, "object")
        return oc.path
    if not os.path.exists(oc.path):
        raise ConfigError(f"no such BPF source: {oc.path}", oc.source, oc.line, "object")
    from ..build import cache_dir, compile_bpf
    h = hashlib.sha256()
    h.update(repr((oc.path, oc.include, oc.defines)).encode())
    src_dir = os.path.dirname(oc.path)
    for name in sorted(os.listdir(src_dir)):  # the source and the headers beside it
        if name.endswith((".c", ".h")) and (name.endswith(".h") or
                                             name == os.path.basename(oc.path)):
            with open(os.path.join(src_dir, name), "rb") as f:
                h.update(name.encode() + b"\0" + f.read())
    out_dir = cache_dir() / "export"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{oc.name}-{h.hexdigest()[:16]}.bpf.o"
    if not out.exists():
        tmp = out.with_suffix(f".tmp{os.getpid()}")
        compile_bpf(oc.path, tmp, include_dirs=oc.include, defines=oc.defines)
        tmp.replace(out)
    return str(out)


@dataclass
class _Label:
    cfg: LabelConfig
    steps: list[Callable[[Any], Any]]


@dataclass
class _Metric:
    cfg: MetricConfig
    obj: LoadedObject
    map: Any
    labels: list[_Label]
    decode_errors: int = 0
    read_errors: int = 0
    series: int = 0
    last_error: str = ""
    batch: bool = True


@dataclass
class LoadedObject:
    """One config object after load: its manager and what it attached."""

    cfg: ObjectConfig
    path: str
    manager: Any
    metrics: list[_Metric] = field(default_factory=list)


class Exporter:
    """Loads and attaches every object of the configs; :meth:`collect` reads the maps.

    ``constants`` override ``const volatile`` globals in every object that has them (an
    unknown name is an error); ``bpf_stats`` holds BPF_ENABLE_STATS so run counts and run
    times of the programs are exported.
    """

    def __init__(self, configs: ExportConfig | Sequence[ExportConfig], *,
                 constants: dict[str, Any] | None = None, bpf_stats: bool = False,
                 log: Callable[[str], None] | None = None) -> None:
        self.configs = [configs] if isinstance(configs, ExportConfig) else list(configs)
        self.constants = dict(constants or {})
        self.want_stats = bpf_stats
        self.objects: list[LoadedObject] = []
        self.stats_fd: int | None = None
        self.scrapes = 0
        self.last_duration = 0.0
        self._lock = threading.Lock()
        self._log = log or (lambda msg: print(f"bpfkit export: {msg}", file=sys.stderr))
        self._warned: set[str] = set()
        names: dict[str, str] = {}
        for c in self.configs:
            for m in c.metrics():
                if m.name in names and names[m.name] != c.source:
                    raise ConfigError(f"metric {m.name!r} is also defined in {names[m.name]}",
                                      c.source, m.line, "name")
                names[m.name] = c.source

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> Exporter:
        """Build, load and attach every object; on any failure undo what was done."""
        from ..spec import CollectionSpec
        try:
            specs = []
            for cfg in self.configs:
                for oc in cfg.objects:
                    path = build_object(oc)
                    specs.append((oc, path, CollectionSpec.from_file(path)))
            used: set[str] = set()
            for oc, path, spec in specs:
                consts = dict(oc.constants)
                for k, v in self.constants.items():
                    if k in spec.variables:
                        consts[k] = v
                        used.add(k)
                for k in oc.constants:
                    if k not in spec.variables:
                        raise ConfigError(f"object {oc.name!r} has no global variable {k!r} "
                                          f"(globals: {', '.join(sorted(spec.variables)) or 'none'})",
                                          oc.source, oc.line, f"constants.{k}")
                for k in oc.max_entries:
                    if k not in spec.maps:
                        raise ConfigError(f"object {oc.name!r} has no map {k!r}", oc.source,
                                          oc.line, f"max_entries.{k}")
                for m in oc.metrics:
                    if m.map not in spec.maps:
                        raise ConfigError(f"object {oc.name!r} has no map {m.map!r} (maps: "
                                          f"{', '.join(sorted(n for n in spec.maps if not n.startswith('.')))})",
                                          m.source, m.line, "map")
                self.objects.append(self._start_object(oc, path, spec, consts))
            unused = sorted(set(self.constants) - used)
            if unused:
                raise ConfigError(f"no loaded object has a global variable named "
                                  f"{', '.join(map(repr, unused))}", "--const", 0, "")
            if self.want_stats:
                from .. import syscall as sc
                try:
                    self.stats_fd = sc.enable_stats(0)
                except KernelError as e:
                    self._log(f"cannot enable BPF run-time stats ({e}); run counts stay 0")
        except BaseException:
            self.close()
            raise
        return self

    def _start_object(self, oc: ObjectConfig, path: str, spec: Any,
                      consts: dict[str, Any]) -> LoadedObject:
        from ..attach.auto import auto_attachable
        from ..manager import Manager, MapOptions, Probe
        if oc.probes is None:
            names = [n for n, ps in spec.programs.items()
                     if auto_attachable(SimpleNamespace(spec=ps, section=ps.section))]
            if not names:
                raise ConfigError(f"object {oc.name!r} has no program whose section names its "
                                  "hook (tc, xdp, cgroup...): list them under 'probes' with "
                                  "their targets", oc.source, oc.line, "probes")
            probes = [Probe(program=n) for n in names]
        else:
            probes = []
            for pc in oc.probes:
                kw = dict(pc.attach)
                opts = kw.pop("options", {}) or {}
                if "pid" in kw:
                    kw["pid"] = int(kw["pid"])
                probes.append(Probe(program=pc.program, uid=pc.uid, fallbacks=pc.fallbacks,
                                    optional=pc.optional, options=dict(opts), **kw))
        # events a program could not hand over (full ring/perf buffer) become a metric
        from ..losses import count_ringbuf_losses
        count_ringbuf_losses(spec)
        mgr = Manager(spec, probes, constants=consts,
                      maps={k: MapOptions(max_entries=v) for k, v in oc.max_entries.items()},
                      handle_signals=False)
        try:
            mgr.start()
        except ConfigError:
            mgr.stop()
            raise
        except BpfkitError as e:
            mgr.stop()
            raise LoadError(f"{oc.source}:{oc.line}: object {oc.name!r} ({path}): {e}") from e
        lo = LoadedObject(oc, path, mgr)
        try:
            ctx = DecoderContext(maps=dict(mgr.maps), btf=spec.btf)
            for mc in oc.metrics:
                lo.metrics.append(self._prepare_metric(mc, lo, ctx))
        except BaseException:
            mgr.stop()
            raise
        return lo

    def _prepare_metric(self, mc: MetricConfig, lo: LoadedObject, ctx: DecoderContext) -> _Metric:
        mp = lo.manager.maps[mc.map]
        key_rec = getattr(getattr(mp, "key_codec", None), "record", None)
        val_rec = getattr(getattr(mp, "value_codec", None), "record", None)
        labels = []
        for lc in mc.labels:
            if lc.field is not None and key_rec is not None:
                first = re.match(r"[A-Za-z_][A-Za-z0-9_]*", lc.field)
                if first and first.group(0) not in key_rec._fields:
                    raise ConfigError(f"the key of map {mc.map!r} has no field "
                                      f"{first.group(0)!r} (fields: {', '.join(key_rec._fields)})",
                                      mc.source, lc.line, f"labels.{lc.name}.field")
            if lc.offset is not None and lc.size is not None and \
                    lc.offset + lc.size > mp.key_size:
                raise ConfigError(f"offset {lc.offset} + size {lc.size} is past the "
                                  f"{mp.key_size}-byte key of map {mc.map!r}", mc.source,
                                  lc.line, f"labels.{lc.name}")
            steps = []
            for dc in lc.decoders:
                try:
                    steps.append(make_decoder(dc.name, dc.options, ctx))
                except (BpfkitError, OSError) as e:
                    raise ConfigError(str(e), mc.source, dc.line,
                                      f"labels.{lc.name}.decoders.{dc.name}") from e
            labels.append(_Label(lc, steps))
        if mc.value is not None and val_rec is not None:
            first = re.match(r"[A-Za-z_][A-Za-z0-9_]*", mc.value)
            if first and first.group(0) not in val_rec._fields:
                raise ConfigError(f"the value of map {mc.map!r} has no field {first.group(0)!r} "
                                  f"(fields: {', '.join(val_rec._fields)})", mc.source, mc.line,
                                  "value")
        if mc.buckets is not None and mc.buckets.field is not None and key_rec is not None:
            first = re.match(r"[A-Za-z_][A-Za-z0-9_]*", mc.buckets.field)
            if first and first.group(0) not in key_rec._fields:
                raise ConfigError(f"the key of map {mc.map!r} has no field {first.group(0)!r} "
                                  f"(fields: {', '.join(key_rec._fields)})", mc.source,
                                  mc.buckets.line, "buckets.field")
        return _Metric(mc, lo, mp, labels)

    def close(self) -> None:
        """Detach and close everything (safe to call twice)."""
        for lo in self.objects:
            try:
                lo.manager.stop()
            except (BpfkitError, OSError):
                pass
        self.objects.clear()
        if self.stats_fd is not None:
            try:
                os.close(self.stats_fd)
            except OSError:
                pass
            self.stats_fd = None

    def __enter__(self) -> Exporter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- reading

    def _items(self, m: _Metric) -> list[tuple[Any, Any]]:
        mp = m.map
        if m.batch:
            try:
                return list(mp.items_batch())
            except KernelError as e:
                if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, ENOTSUPP):
                    raise
                m.batch = False  # old kernel or a map type without batch ops
        return list(mp.items())

    def _labels(self, m: _Metric, key: Any) -> tuple[str, ...] | None:
        out = []
        raw_key: bytes | None = None
        for lab in m.labels:
            lc = lab.cfg
            if lc.field is not None:
                v = get_path(key, lc.field)
            elif lc.offset is not None and lc.size is not None:
                if raw_key is None:
                    raw_key = bytes(m.map.key_codec.encode(key)) if not isinstance(
                        key, (bytes, bytearray)) else bytes(key)
                v = raw_key[lc.offset:lc.offset + lc.size]
            else:
                v = key
            for step in lab.steps:
                v = step(v)
                if v is SKIP:
                    return None
            out.append(to_label(v))
        return tuple(out)

    def _value(self, m: _Metric, value: Any) -> Any:
        vals = value if m.map.percpu else [value]
        if m.cfg.value is not None:
            vals = [get_path(v, m.cfg.value) for v in vals]
        if len(vals) == 1:
            return vals[0]
        if all(isinstance(v, list) for v in vals):  # per-CPU histogram slots
            n = max(len(v) for v in vals)
            return [sum(_number(v[i], "slot") for v in vals if i < len(v)) for i in range(n)]
        return sum(_number(v, f"value of map {m.cfg.map!r}") for v in vals)

    def _note(self, m: _Metric, err: Exception, kind: str) -> None:
        m.last_error = str(err)
        tag = f"{m.cfg.name}:{kind}"
        if tag not in self._warned:
            self._warned.add(tag)
            self._log(f"metric {m.cfg.name}: {kind} error (counted; logged once): {err}")

    def _collect_metric(self, m: _Metric) -> MetricFamily:
        mc = m.cfg
        fam = MetricFamily(mc.name, mc.type, mc.help)
        try:
            items = self._items(m)
        except (BpfkitError, OSError) as e:
            m.read_errors += 1
            self._note(m, e, "map read")
            return fam
        names = [lab.cfg.name for lab in m.labels]
        if mc.type == "histogram":
            return self._histogram(m, fam, items, names)
        series: dict[tuple[str, ...], float] = {}
        for key, value in items:
            try:
                labels = self._labels(m, key)
                if labels is None:
                    continue
                v = _number(self._value(m, value), f"value of map {mc.map!r}")
            except Exception as e:  # noqa: BLE001 - any bad key is counted, never a failed scrape
                m.decode_errors += 1
                self._note(m, e, "decode")
                continue
            series[labels] = series.get(labels, 0) + v
        for labels, v in series.items():
            fam.add({**dict(zip(names, labels, strict=False)), **mc.const_labels}, v)
        m.series = len(series)
        return fam

    def _histogram(self, m: _Metric, fam: MetricFamily, items: Iterable[tuple[Any, Any]],
                   names: list[str]) -> MetricFamily:
        mc = m.cfg
        b = mc.buckets
        assert b is not None
        hists: dict[tuple[str, ...], dict[int, float]] = {}
        for key, value in items:
            try:
                labels = self._labels(m, key)
                if labels is None:
                    continue
                v = self._value(m, value)
                h = hists.setdefault(labels, {})
                if isinstance(v, list):  # the value holds all slots
                    for i, n in enumerate(v):
                        h[i] = h.get(i, 0) + _number(n, "slot")
                else:
                    idx_v = get_path(key, b.field) if b.field else key
                    idx = int(_number(idx_v, "bucket index"))
                    h[idx] = h.get(idx, 0) + _number(v, f"value of map {mc.map!r}")
            except Exception as e:  # noqa: BLE001 - any bad key is counted, never a failed scrape
                m.decode_errors += 1
                self._note(m, e, "decode")
                continue
        for labels, h in hists.items():
            counts = {i: 0.0 for i in range(b.min, b.max + 1)}  # missing buckets are zero
            inf = 0.0
            total_sum: float | None = None
            for i, n in h.items():
                if b.sum_bucket is not None and i == b.sum_bucket:
                    total_sum = n
                elif i < b.min:
                    counts[b.min] += n
                elif i > b.max:
                    inf += n
                else:
                    counts[i] += n
            if b.sum_bucket is not None and total_sum is None:
                total_sum = 0.0
            buckets = [(b.upper_bound(i), n) for i, n in counts.items()]
            buckets.append((float("inf"), inf))
            fam.add_histogram({**dict(zip(names, labels, strict=False)), **mc.const_labels}, buckets,
                              total_sum)
        m.series = len(hists)
        return fam

    def collect(self) -> list[MetricFamily]:
        """Every configured metric plus the exporter's own health metrics."""
        with self._lock:
            t0 = time.monotonic()
            fams = [self._collect_metric(m) for lo in self.objects for m in lo.metrics]
            self.scrapes += 1
            fams += self._health(time.monotonic() - t0)
            self.last_duration = time.monotonic() - t0
            return fams

    def render(self) -> str:
        return render(self.collect())

    # ----------------------------------------------------------------- health

    def stats_enabled(self) -> bool:
        if self.stats_fd is not None:
            return True
        try:
            with open("/proc/sys/kernel/bpf_stats_enabled") as f:
                return f.read().strip() == "1"
        except OSError:
            return False

    def _health(self, duration: float) -> list[MetricFamily]:
        loaded = MetricFamily("bpfkit_export_programs_loaded", "gauge",
                              "BPF programs loaded, per config object")
        attached = MetricFamily("bpfkit_export_probe_attached", "gauge",
                                "1 when the probe is attached (program = the one chosen "
                                "after fallbacks)")
        runs = MetricFamily("bpfkit_export_program_run_count_total", "counter",
                            "Times each program ran (only counted while BPF stats are on)")
        rtime = MetricFamily("bpfkit_export_program_run_seconds_total", "counter",
                             "Time spent in each program (only while BPF stats are on)")
        stats_on = self.stats_enabled()
        for lo in self.objects:
            progs = lo.manager.collection.programs if lo.manager.collection else {}
            loaded.add({"object": lo.cfg.name}, len(progs))
            for st in lo.manager.report():
                attached.add({"object": lo.cfg.name, "probe": st.uid or st.requested,
                              "program": st.program or ""}, 1 if st.attached else 0)
            if stats_on:
                for name, p in progs.items():
                    try:
                        info = p.info()
                    except (BpfkitError, OSError):
                        continue
                    lab = {"object": lo.cfg.name, "program": name}
                    runs.add(lab, info.run_cnt)
                    rtime.add(lab, info.run_time_ns / 1e9)
        stats = MetricFamily("bpfkit_export_bpf_stats_enabled", "gauge",
                             "1 when the kernel's BPF run-time stats are on (--bpf-stats or "
                             "sysctl kernel.bpf_stats_enabled=1)")
        stats.add({}, 1 if stats_on else 0)
        dec = MetricFamily("bpfkit_export_decode_errors_total", "counter",
                           "Map entries that could not be decoded into labels/values")
        rd = MetricFamily("bpfkit_export_map_read_errors_total", "counter",
                          "Failed map reads")
        ser = MetricFamily("bpfkit_export_series", "gauge", "Series exported per metric")
        for lo in self.objects:
            for m in lo.metrics:
                dec.add({"metric": m.cfg.name}, m.decode_errors)
                rd.add({"metric": m.cfg.name}, m.read_errors)
                ser.add({"metric": m.cfg.name}, m.series)
        dur = MetricFamily("bpfkit_export_scrape_duration_seconds", "gauge",
                           "Time spent reading and decoding the maps for this scrape")
        dur.add({}, duration)
        scrapes = MetricFamily("bpfkit_export_scrapes_total", "counter", "Scrapes served")
        scrapes.add({}, self.scrapes)
        lost = MetricFamily("bpfkit_export_events_lost_total", "counter",
                            "Events the BPF programs could not hand over: failed ring buffer "
                            "reserve/output and perf_event_output calls (counted at the call "
                            "sites), else the object's own 'lost' global")
        for lo in self.objects:
            lost.add({"object": lo.cfg.name}, _events_lost(lo.manager.collection))
        out = [loaded, attached, stats, dec, rd, ser, dur, scrapes, lost]
        if stats_on:
            out[2:2] = [runs, rtime]
        return out


def _events_lost(coll: Any) -> int:
    """Losses of one loaded object: the instrumented counters (bpfkit.losses) when its
    programs call the output helpers, else a ``lost`` global the object keeps itself."""
    from ..losses import perfbuf_lost, ringbuf_lost
    if coll is None:
        return 0
    try:
        ring = ringbuf_lost(coll)
        if ring is not None:
            return ring + (perfbuf_lost(coll) or 0)
        var = getattr(coll, "variables", {}).get("lost")
        return int(var.value) if var is not None else 0
    except (BpfkitError, OSError, TypeError, ValueError):
        return 0
