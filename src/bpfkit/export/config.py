"""Exporter configuration: which objects to load, how to attach them, which maps become
which metrics.  Parsing is pure (no kernel) so ``bpfkit export --check`` and the tests can
validate a config anywhere; every error names the file, line and key.

A config (YAML)::

    objects:
      - object: syscalls.bpf.c        # relative to this file; .c is built with clang
        constants: {target_tgid: 0}   # const volatile globals, set before load
        probes:                       # optional: default = every auto-attachable program
          - program: count_enter
            fallbacks: [count_enter_raw]
        metrics:
          - name: syscalls_total      # counters get a _total suffix if missing
            type: counter
            help: System calls by name
            map: syscall_counts
            labels:
              - name: syscall          # the whole key (no field), decoded step by step
                decoders: [syscall]

The single-object short form puts ``object``, ``constants``, ``probes`` and ``metrics`` at
the top level.  String values may use ``${VAR}`` / ``${VAR:-default}`` environment
references (an interface name per node, say).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from dataclasses import field as _field
from typing import Any

from ..errors import ParseError
from . import yamlite
from .decoders import DECODERS
from .textformat import valid_label_name, valid_metric_name
from .yamlite import LList, LMap, line_of

__all__ = ["ConfigError", "ExportConfig", "ObjectConfig", "MetricConfig", "LabelConfig",
           "DecoderConfig", "BucketConfig", "ProbeConfig", "load_config", "parse_config"]

METRIC_TYPES = ("counter", "gauge", "histogram")
BUCKET_TYPES = ("exp2", "linear", "fixed")


class ConfigError(ParseError):
    """A malformed exporter config; the message names the file, line and key."""

    def __init__(self, message: str, source: str = "", line: int = 0, key: str = "") -> None:
        self.source, self.line, self.key = source, line, key
        where = source or "<config>"
        if line:
            where += f":{line}"
        super().__init__(f"{where}: {key + ': ' if key else ''}{message}")


@dataclass
class DecoderConfig:
    name: str
    options: dict[str, Any] = _field(default_factory=dict)
    line: int = 0


@dataclass
class LabelConfig:
    """One label: a key field (dotted path), raw key bytes (offset/size), or the whole key."""

    name: str
    field: str | None = None
    offset: int | None = None
    size: int | None = None
    decoders: list[DecoderConfig] = _field(default_factory=list)
    line: int = 0


@dataclass
class BucketConfig:
    """Histogram buckets: bucket index i has upper bound ``multiplier * 2**i`` (exp2),
    ``multiplier * i`` (linear) or ``bounds[i]`` (fixed)."""

    type: str
    min: int = 0
    max: int = 0
    multiplier: float = 1.0
    bounds: list[float] = _field(default_factory=list)
    field: str | None = None
    sum_bucket: int | None = None
    line: int = 0

    def upper_bound(self, index: int) -> float:
        if self.type == "exp2":
            return self.multiplier * float(2 ** index)
        if self.type == "linear":
            return self.multiplier * float(index)
        return float(self.bounds[index])


@dataclass
class MetricConfig:
    name: str
    type: str
    map: str
    help: str = ""
    value: str | None = None
    labels: list[LabelConfig] = _field(default_factory=list)
    const_labels: dict[str, str] = _field(default_factory=dict)
    buckets: BucketConfig | None = None
    line: int = 0
    source: str = ""


@dataclass
class ProbeConfig:
    program: str
    uid: str = ""
    fallbacks: list[str] = _field(default_factory=list)
    optional: bool = False
    attach: dict[str, Any] = _field(default_factory=dict)
    line: int = 0


@dataclass
class ObjectConfig:
    path: str
    name: str
    constants: dict[str, Any] = _field(default_factory=dict)
    max_entries: dict[str, int] = _field(default_factory=dict)
    probes: list[ProbeConfig] | None = None
    metrics: list[MetricConfig] = _field(default_factory=list)
    include: list[str] = _field(default_factory=list)
    defines: list[str] = _field(default_factory=list)
    line: int = 0
    source: str = ""


@dataclass
class ExportConfig:
    objects: list[ObjectConfig] = _field(default_factory=list)
    source: str = ""

    def metrics(self) -> list[MetricConfig]:
        return [m for o in self.objects for m in o.metrics]


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_PROBE_ATTACH_KEYS = ("ifname", "direction", "binary", "symbol", "pid", "cgroup", "options")


class _Checker:
    def __init__(self, source: str, env: dict[str, str] | None) -> None:
        self.source = source
        self.env = os.environ if env is None else env

    def fail(self, msg: str, line: int, key: str) -> ConfigError:
        return ConfigError(msg, self.source, line, key)

    def mapping(self, v: Any, key: str, line: int, allowed: tuple[str, ...],
                required: tuple[str, ...] = ()) -> LMap:
        if not isinstance(v, dict):
            raise self.fail(f"expected a mapping, got {_kind(v)}", line, key)
        for k in v:
            if k not in allowed:
                raise self.fail(f"unknown key {k!r} (allowed: {', '.join(allowed)})",
                                line_of(v, k), f"{key}.{k}" if key else str(k))
        for r in required:
            if r not in v or v[r] is None:
                raise self.fail(f"missing required key {r!r}", line_of(v) or line, key or r)
        if not isinstance(v, LMap):
            m = LMap(line)
            m.update(v)
            m.lines = {k: line for k in v}
            return m
        return v

    def string(self, v: Any, key: str, line: int, allow_empty: bool = False) -> str:
        if isinstance(v, bool) or v is None or isinstance(v, (dict, list)):
            raise self.fail(f"expected a string, got {_kind(v)}", line, key)
        s = self.expand(str(v), key, line)
        if not s and not allow_empty:
            raise self.fail("must not be empty", line, key)
        return s

    def expand(self, s: str, key: str, line: int) -> str:
        def sub(m: re.Match[str]) -> str:
            val = self.env.get(m.group(1))
            if val is None:
                if m.group(2) is None:
                    raise self.fail(f"environment variable {m.group(1)} is not set (write "
                                    f"${{{m.group(1)}:-default}} for a default)", line, key)
                return m.group(2)
            return val
        return _ENV.sub(sub, s)

    def value(self, v: Any, key: str, line: int) -> Any:
        """Any scalar or nested value, with environment references expanded in strings."""
        if isinstance(v, str):
            return self.expand(v, key, line)
        if isinstance(v, dict):
            return {k: self.value(x, f"{key}.{k}", line_of(v, k)) for k, x in v.items()}
        if isinstance(v, list):
            return [self.value(x, f"{key}[{i}]", line_of(v, i)) for i, x in enumerate(v)]
        return v

    def integer(self, v: Any, key: str, line: int, lo: int | None = None) -> int:
        if isinstance(v, str):
            v = self.expand(v, key, line)
            try:
                v = int(v, 0)
            except ValueError:
                pass
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(f"expected an integer, got {_kind(v)}", line, key)
        if lo is not None and v < lo:
            raise self.fail(f"must be >= {lo}, got {v}", line, key)
        return v

    def number(self, v: Any, key: str, line: int) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise self.fail(f"expected a number, got {_kind(v)}", line, key)
        return float(v)

    def boolean(self, v: Any, key: str, line: int) -> bool:
        if not isinstance(v, bool):
            raise self.fail(f"expected true or false, got {_kind(v)}", line, key)
        return v

    def seq(self, v: Any, key: str, line: int) -> LList:
        if not isinstance(v, list):
            raise self.fail(f"expected a list, got {_kind(v)}", line, key)
        if not isinstance(v, LList):
            out = LList(line)
            out.extend(v)
            out.lines = [line] * len(v)
            return out
        return v

    def str_list(self, v: Any, key: str, line: int) -> list[str]:
        if isinstance(v, str):
            return [self.string(v, key, line)]
        items = self.seq(v, key, line)
        return [self.string(x, f"{key}[{i}]", line_of(items, i)) for i, x in enumerate(items)]

    # ------------------------------------------------------------------ sections

    def document(self, doc: Any, base_dir: str) -> ExportConfig:
        if doc is None:
            raise self.fail("the config is empty", 0, "")
        top = self.mapping(doc, "", 1, ("objects",) + _OBJECT_KEYS)
        cfg = ExportConfig(source=self.source)
        if "objects" in top:
            if any(k in top for k in _OBJECT_KEYS):
                k = next(k for k in _OBJECT_KEYS if k in top)
                raise self.fail("put object settings inside an 'objects' entry (or use the "
                                "single-object form without 'objects')", line_of(top, k), k)
            objs = self.seq(top["objects"], "objects", line_of(top, "objects"))
            if not objs:
                raise self.fail("no objects listed", line_of(top, "objects"), "objects")
            for i, o in enumerate(objs):
                cfg.objects.append(self.obj(o, f"objects[{i}]", line_of(objs, i), base_dir))
        else:
            cfg.objects.append(self.obj(top, "", 1, base_dir))
        names: dict[str, int] = {}
        for o in cfg.objects:
            if o.name in names:
                raise self.fail(f"two objects are named {o.name!r} (first on line "
                                f"{names[o.name]}); set 'name' on one", o.line, "name")
            names[o.name] = o.line
        seen: dict[str, int] = {}
        for m in cfg.metrics():
            if m.name in seen:
                raise self.fail(f"metric {m.name!r} is defined twice (first on line "
                                f"{seen[m.name]})", m.line, "name")
            seen[m.name] = m.line
        return cfg

    def obj(self, o: Any, key: str, line: int, base_dir: str) -> ObjectConfig:
        o = self.mapping(o, key, line, _OBJECT_KEYS, required=("object",))
        p = lambda k: f"{key}.{k}" if key else k  # noqa: E731
        path = self.string(o["object"], p("object"), line_of(o, "object"))
        path = path if os.path.isabs(path) else os.path.normpath(os.path.join(base_dir, path))
        if not (path.endswith(".o") or path.endswith(".c")):
            raise self.fail(f"{path!r} is neither a BPF object (.o) nor a C source (.c)",
                            line_of(o, "object"), p("object"))
        name = os.path.basename(path).split(".")[0]
        if "name" in o:
            name = self.string(o["name"], p("name"), line_of(o, "name"))
        oc = ObjectConfig(path=path, name=name, line=line_of(o) or line, source=self.source)
        if o.get("constants") is not None:
            c = self.mapping(o["constants"], p("constants"), line_of(o, "constants"),
                             _keys(o["constants"]))
            oc.constants = {str(k): self.value(v, f"{p('constants')}.{k}", line_of(c, k))
                            for k, v in c.items()}
        if o.get("max_entries") is not None:
            me = self.mapping(o["max_entries"], p("max_entries"), line_of(o, "max_entries"),
                              _keys(o["max_entries"]))
            oc.max_entries = {str(k): self.integer(v, f"{p('max_entries')}.{k}",
                                                   line_of(me, k), lo=1)
                              for k, v in me.items()}
        for lk in ("include", "defines"):
            if o.get(lk) is not None:
                vals = self.str_list(o[lk], p(lk), line_of(o, lk))
                if lk == "include":
                    vals = [v if os.path.isabs(v) else os.path.join(base_dir, v) for v in vals]
                setattr(oc, lk, vals)
        if "probes" in o and o["probes"] is not None:
            probes = self.seq(o["probes"], p("probes"), line_of(o, "probes"))
            oc.probes = [self.probe(x, f"{p('probes')}[{i}]", line_of(probes, i))
                         for i, x in enumerate(probes)]
        if o.get("metrics") is not None:
            ms = self.seq(o["metrics"], p("metrics"), line_of(o, "metrics"))
            oc.metrics = [self.metric(x, f"{p('metrics')}[{i}]", line_of(ms, i))
                          for i, x in enumerate(ms)]
        return oc

    def probe(self, v: Any, key: str, line: int) -> ProbeConfig:
        if isinstance(v, str):
            return ProbeConfig(program=self.string(v, key, line), line=line)
        v = self.mapping(v, key, line, ("program", "uid", "fallbacks", "optional")
                         + _PROBE_ATTACH_KEYS, required=("program",))
        pc = ProbeConfig(program=self.string(v["program"], f"{key}.program",
                                             line_of(v, "program")), line=line_of(v) or line)
        if "uid" in v:
            pc.uid = self.string(v["uid"], f"{key}.uid", line_of(v, "uid"))
        if v.get("fallbacks") is not None:
            pc.fallbacks = self.str_list(v["fallbacks"], f"{key}.fallbacks",
                                         line_of(v, "fallbacks"))
        if "optional" in v:
            pc.optional = self.boolean(v["optional"], f"{key}.optional", line_of(v, "optional"))
        for k in _PROBE_ATTACH_KEYS:
            if v.get(k) is None:
                continue
            if k == "pid":
                pc.attach[k] = self.integer(v[k], f"{key}.pid", line_of(v, k), lo=0)
            elif k == "options":
                pc.attach[k] = self.value(self.mapping(v[k], f"{key}.options", line_of(v, k),
                                                       tuple(str(x) for x in v[k])),
                                          f"{key}.options", line_of(v, k))
            elif k == "direction":
                d = self.string(v[k], f"{key}.direction", line_of(v, k))
                if d not in ("ingress", "egress"):
                    raise self.fail(f"direction must be ingress or egress, got {d!r}",
                                    line_of(v, k), f"{key}.direction")
                pc.attach[k] = d
            else:
                pc.attach[k] = self.string(v[k], f"{key}.{k}", line_of(v, k))
        return pc

    def metric(self, v: Any, key: str, line: int) -> MetricConfig:
        v = self.mapping(v, key, line, ("name", "type", "help", "map", "value", "labels",
                                        "const_labels", "buckets"),
                         required=("name", "type", "map"))
        ln = line_of(v) or line
        name = self.string(v["name"], f"{key}.name", line_of(v, "name"))
        mtype = self.string(v["type"], f"{key}.type", line_of(v, "type"))
        if mtype not in METRIC_TYPES:
            raise self.fail(f"unknown metric type {mtype!r} (one of: {', '.join(METRIC_TYPES)})",
                            line_of(v, "type"), f"{key}.type")
        if mtype == "counter" and not name.endswith("_total"):
            name += "_total"
        if not valid_metric_name(name):
            raise self.fail(f"{name!r} is not a valid Prometheus metric name "
                            "([a-zA-Z_:][a-zA-Z0-9_:]*)", line_of(v, "name"), f"{key}.name")
        mc = MetricConfig(name=name, type=mtype, line=ln, source=self.source,
                          map=self.string(v["map"], f"{key}.map", line_of(v, "map")))
        if v.get("help") is not None:
            mc.help = self.string(v["help"], f"{key}.help", line_of(v, "help"),
                                  allow_empty=True).strip()
        if v.get("value") is not None:
            mc.value = self.path(v["value"], f"{key}.value", line_of(v, "value"))
        label_names: dict[str, int] = {}
        if v.get("labels") is not None:
            labels = self.seq(v["labels"], f"{key}.labels", line_of(v, "labels"))
            for i, lv in enumerate(labels):
                lc = self.label(lv, f"{key}.labels[{i}]", line_of(labels, i))
                if lc.name in label_names:
                    raise self.fail(f"label {lc.name!r} is used twice (first on line "
                                    f"{label_names[lc.name]})", lc.line, f"{key}.labels[{i}]")
                label_names[lc.name] = lc.line
                mc.labels.append(lc)
        if v.get("const_labels") is not None:
            cl = self.mapping(v["const_labels"], f"{key}.const_labels",
                              line_of(v, "const_labels"), tuple(str(k) for k in v["const_labels"]))
            for k, x in cl.items():
                if not valid_label_name(str(k)) or str(k) in label_names or k == "le":
                    raise self.fail(f"invalid or duplicate label name {k!r}", line_of(cl, k),
                                    f"{key}.const_labels.{k}")
                mc.const_labels[str(k)] = self.string(x, f"{key}.const_labels.{k}",
                                                      line_of(cl, k), allow_empty=True)
        if mtype == "histogram":
            if v.get("buckets") is None:
                raise self.fail("a histogram needs 'buckets' (type exp2, linear or fixed)", ln,
                                f"{key}.buckets")
            mc.buckets = self.buckets(v["buckets"], f"{key}.buckets", line_of(v, "buckets"))
            if "le" in label_names:
                raise self.fail("'le' is reserved for histogram buckets", label_names["le"],
                                f"{key}.labels")
        elif v.get("buckets") is not None:
            raise self.fail(f"'buckets' only applies to histograms, not {mtype}s",
                            line_of(v, "buckets"), f"{key}.buckets")
        return mc

    def path(self, v: Any, key: str, line: int) -> str:
        s = self.string(v, key, line)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\])*", s):
            raise self.fail(f"{s!r} is not a field path (like 'stats.packets' or 'addr[0]')",
                            line, key)
        return s

    def label(self, v: Any, key: str, line: int) -> LabelConfig:
        v = self.mapping(v, key, line, ("name", "field", "offset", "size", "decoders"),
                         required=("name",))
        name = self.string(v["name"], f"{key}.name", line_of(v, "name"))
        if not valid_label_name(name) or name == "le":
            raise self.fail(f"{name!r} is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*, not "
                            "starting with __, not 'le')", line_of(v, "name"), f"{key}.name")
        lc = LabelConfig(name=name, line=line_of(v) or line)
        if v.get("field") is not None:
            lc.field = self.path(v["field"], f"{key}.field", line_of(v, "field"))
        if ("offset" in v) != ("size" in v):
            raise self.fail("'offset' and 'size' go together (raw key bytes)", lc.line, key)
        if "offset" in v:
            if lc.field is not None:
                raise self.fail("use either 'field' or 'offset'/'size', not both", lc.line, key)
            lc.offset = self.integer(v["offset"], f"{key}.offset", line_of(v, "offset"), lo=0)
            lc.size = self.integer(v["size"], f"{key}.size", line_of(v, "size"), lo=1)
        if v.get("decoders") is not None:
            ds = v["decoders"]
            if isinstance(ds, (str, dict)):
                ds = LList(line_of(v, "decoders"))
                ds.append(v["decoders"])
                ds.lines.append(line_of(v, "decoders"))
            ds = self.seq(ds, f"{key}.decoders", line_of(v, "decoders"))
            for i, d in enumerate(ds):
                lc.decoders.append(self.decoder(d, f"{key}.decoders[{i}]", line_of(ds, i)))
        return lc

    def decoder(self, v: Any, key: str, line: int) -> DecoderConfig:
        if isinstance(v, str):
            v = {"name": v}
        if not isinstance(v, dict):
            raise self.fail(f"expected a decoder name or mapping, got {_kind(v)}", line, key)
        name = v.get("name")
        if not isinstance(name, str):
            raise self.fail("a decoder needs a 'name'", line_of(v) or line, key)
        if name not in DECODERS:
            raise self.fail(f"unknown decoder {name!r} (known: {', '.join(sorted(DECODERS))})",
                            line_of(v, "name") or line, f"{key}.name")
        _fn, required, optional = DECODERS[name]
        d = self.mapping(v, key, line, ("name",) + tuple(sorted(required | optional)),
                         required=tuple(sorted(required)))
        opts = {str(k): self.value(x, f"{key}.{k}", line_of(d, k)) for k, x in d.items()
                if k != "name"}
        if name == "static_map" and not isinstance(opts.get("map"), dict):
            raise self.fail("static_map needs 'map': a mapping of key values to names",
                            line_of(d, "map"), f"{key}.map")
        if name == "regexp":
            pats = opts.get("regexps") or ([opts["regexp"]] if "regexp" in opts else [])
            if not pats:
                raise self.fail("regexp needs 'regexp' (or a list 'regexps')", line, key)
            for pat in pats:
                try:
                    re.compile(str(pat))
                except re.error as e:
                    raise self.fail(f"bad regular expression {pat!r}: {e}", line, key)
        if name in ("port", "uint", "int") and opts.get("byte_order") not in (
                None, "host", "little", "network", "big"):
            raise self.fail("byte_order must be host, little, network or big",
                            line_of(d, "byte_order"), f"{key}.byte_order")
        return DecoderConfig(name=name, options=opts, line=line_of(d) or line)

    def buckets(self, v: Any, key: str, line: int) -> BucketConfig:
        v = self.mapping(v, key, line, ("type", "min", "max", "multiplier", "bounds", "field",
                                        "sum_bucket"), required=("type",))
        btype = self.string(v["type"], f"{key}.type", line_of(v, "type"))
        if btype not in BUCKET_TYPES:
            raise self.fail(f"unknown bucket type {btype!r} (one of: {', '.join(BUCKET_TYPES)})",
                            line_of(v, "type"), f"{key}.type")
        bc = BucketConfig(type=btype, line=line_of(v) or line)
        if btype == "fixed":
            if v.get("bounds") is None:
                raise self.fail("fixed buckets need 'bounds' (the upper bound of each bucket "
                                "index)", bc.line, key)
            bl = self.seq(v["bounds"], f"{key}.bounds", line_of(v, "bounds"))
            bc.bounds = [self.number(x, f"{key}.bounds[{i}]", line_of(bl, i))
                         for i, x in enumerate(bl)]
            if not bc.bounds or any(b >= a for a, b in zip(bc.bounds[1:], bc.bounds, strict=False)):
                raise self.fail("bounds must be a non-empty increasing list",
                                line_of(v, "bounds"), f"{key}.bounds")
            bc.min, bc.max = 0, len(bc.bounds) - 1
        else:
            if v.get("max") is None:
                raise self.fail(f"{btype} buckets need 'max' (the last bucket index)", bc.line,
                                key)
            bc.max = self.integer(v["max"], f"{key}.max", line_of(v, "max"), lo=0)
            bc.min = self.integer(v.get("min", 0), f"{key}.min", line_of(v, "min"), lo=0)
            if bc.min > bc.max:
                raise self.fail(f"min ({bc.min}) is greater than max ({bc.max})",
                                line_of(v, "min"), f"{key}.min")
            if bc.max > 1024:
                raise self.fail("at most 1024 buckets", line_of(v, "max"), f"{key}.max")
            if v.get("multiplier") is not None:
                bc.multiplier = self.number(v["multiplier"], f"{key}.multiplier",
                                            line_of(v, "multiplier"))
                if bc.multiplier <= 0:
                    raise self.fail("multiplier must be positive", line_of(v, "multiplier"),
                                    f"{key}.multiplier")
        if v.get("field") is not None:
            bc.field = self.path(v["field"], f"{key}.field", line_of(v, "field"))
        if v.get("sum_bucket") is not None:
            bc.sum_bucket = self.integer(v["sum_bucket"], f"{key}.sum_bucket",
                                         line_of(v, "sum_bucket"), lo=0)
            if bc.min <= bc.sum_bucket <= bc.max:
                raise self.fail("sum_bucket must be outside min..max", line_of(v, "sum_bucket"),
                                f"{key}.sum_bucket")
        return bc


_OBJECT_KEYS = ("object", "name", "constants", "max_entries", "probes", "metrics", "include",
                "defines")


def _kind(v: Any) -> str:
    if v is None:
        return "nothing (null)"
    if isinstance(v, bool):
        return f"a boolean ({str(v).lower()})"
    if isinstance(v, dict):
        return "a mapping"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, (int, float)):
        return f"a number ({v})"
    return f"{type(v).__name__} {v!r}"


def _keys(v: Any) -> tuple[str, ...]:
    """The keys a mapping may have when it is free-form (constants, max_entries): its own;
    a value that is not a mapping gets none, so ``mapping()`` reports its type."""
    return tuple(str(k) for k in v) if isinstance(v, dict) else ()


def parse_config(text: str, source: str = "<config>", base_dir: str | None = None, *,
                 env: dict[str, str] | None = None) -> ExportConfig:
    """Parse and validate config text (no kernel access); raises ConfigError/YamlError."""
    doc = yamlite.loads(text, source)
    return _Checker(source, env).document(doc, base_dir or os.getcwd())


def load_config(path: str, *, env: dict[str, str] | None = None,
                use_pyyaml: bool = False) -> ExportConfig:
    """Read, parse and validate a config file; relative object paths are relative to it."""
    doc = yamlite.load(path, use_pyyaml=use_pyyaml)
    return _Checker(path, env).document(doc, os.path.dirname(os.path.abspath(path)))
