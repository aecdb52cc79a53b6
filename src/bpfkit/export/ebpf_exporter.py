"""ebpf_exporter's own config format, served by bpfkit.

``bpfkit export --config.dir DIR --config.names a,b`` reads ``DIR/a.yaml`` beside
``DIR/a.bpf.o`` exactly as cloudflare's ebpf_exporter does, so its configs run unchanged:
whole-object load, every program auto-attached (``xdp/<ifname>`` and
``perf_event/type=T,config=C,frequency=F`` sections included), keys cut into labels by
``size``/``padding`` and decoded byte-wise, ``exp2``/``exp2zero``/``linear``/``fixed``
histograms with the sum in slot ``bucket_max + 1``, metric names ``ebpf_exporter_<name>``,
and its own health series.  Why a second format beside bpfkit's: users move over with the
configs they have; the semantics below follow ebpf_exporter's code, not its README, where
the two disagree (the exp2 loop includes ``bucket_max``).

Parsing (:func:`parse_config`) is pure; :class:`EbpfExporter` loads, attaches and reads.
"""

from __future__ import annotations

import errno as _errno
import ipaddress
import os
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..errors import BpfkitError, KernelError
from ..host.kallsyms import read_kallsyms
from . import yamlite
from .config import ConfigError
from .textformat import MetricFamily, Sample

__all__ = ["EEConfig", "EEMetric", "EELabel", "EbpfExporter", "load_configs", "parse_config",
           "go_float", "PREFIX"]

PREFIX = "ebpf_exporter_"
BUCKET_TYPES = ("exp2", "exp2zero", "linear", "fixed")
DECODER_NAMES = ("uint", "string", "hex", "static_map", "regexp", "ksym", "kstack", "syscall",
                 "errno", "cgroup", "majorminor", "inet_ip", "ifname", "dname")
_UNSUPPORTED_DECODERS = ("pci_vendor", "pci_device", "pci_class", "pci_subclass")
_SKIP = None  # a decoder's "drop this row"


# --------------------------------------------------------------------------- format


def go_float(v: float) -> str:
    """A number as Go's ``strconv.FormatFloat(v, 'g', -1, 64)`` writes it (client_golang's
    text format): shortest digits, exponent form below 1e-4 and from 1e6 up."""
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return "0"
    sign, digits, exp = Decimal(repr(float(v))).normalize().as_tuple()
    assert isinstance(exp, int)
    ds = "".join(map(str, digits))
    x = exp + len(ds) - 1  # the decimal exponent of the first digit
    neg = "-" if sign else ""
    if x < -4 or x >= 6:
        mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
        return f"{neg}{mant}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if x < 0:
        return f"{neg}0.{'0' * (-x - 1)}{ds}"
    if len(ds) <= x + 1:
        return neg + ds + "0" * (x + 1 - len(ds))
    return f"{neg}{ds[:x + 1]}.{ds[x + 1:]}"


# --------------------------------------------------------------------------- config


@dataclass
class EELabel:
    name: str
    size: int
    padding: int = 0
    decoders: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


@dataclass
class EEMetric:
    kind: str  # counter | histogram
    name: str
    help: str
    labels: list[EELabel] = field(default_factory=list)
    perf_event_array: bool = False
    bucket_type: str = ""
    bucket_min: int = 0
    bucket_max: int = 0
    bucket_multiplier: float = 1.0
    bucket_keys: list[float] = field(default_factory=list)


@dataclass
class EEConfig:
    name: str
    source: str
    object_path: str
    counters: list[EEMetric] = field(default_factory=list)
    histograms: list[EEMetric] = field(default_factory=list)
    kaddrs: list[str] = field(default_factory=list)
    cgroup_id_map: dict[str, Any] | None = None

    def metrics(self) -> list[EEMetric]:
        return self.counters + self.histograms


def _int(v: Any, what: str, source: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(f"{what} must be an integer, not {v!r}", source)
    return v


def _label(raw: Any, source: str, where: str) -> EELabel:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: a label is a mapping with name, size and decoders", source)
    name = str(raw.get("name") or "")
    if not name:
        raise ConfigError(f"{where}: a label needs a name", source)
    size = _int(raw.get("size", 0), f"{where} label {name!r} size", source)
    if size <= 0:
        raise ConfigError(f"{where} label {name!r}: size must be > 0 (bytes of the key it "
                          "takes)", source)
    padding = _int(raw.get("padding", 0) or 0, f"{where} label {name!r} padding", source)
    decs = raw.get("decoders") or []
    if not isinstance(decs, list) or not decs:
        raise ConfigError(f"{where} label {name!r}: at least one decoder is required", source)
    out = []
    for d in decs:
        if not isinstance(d, dict) or not d.get("name"):
            raise ConfigError(f"{where} label {name!r}: a decoder is a mapping with a name",
                              source)
        dn = str(d["name"])
        if dn in _UNSUPPORTED_DECODERS:
            raise ConfigError(f"{where} label {name!r}: decoder {dn!r} needs the hwdata PCI "
                              "database, which bpfkit does not read: use 'hex' or 'uint'",
                              source)
        if dn not in DECODER_NAMES:
            raise ConfigError(f"{where} label {name!r}: unknown decoder {dn!r} (known: "
                              f"{', '.join(DECODER_NAMES)})", source)
        opts = {k: v for k, v in d.items() if k != "name"}
        if dn == "regexp":
            for p in opts.get("regexps") or []:
                try:
                    re.compile(str(p))
                except re.error as e:
                    raise ConfigError(f"{where} label {name!r}: bad regexp {p!r}: {e}",
                                      source) from None
        out.append((dn, opts))
    return EELabel(name, size, padding, out)


def _metric(kind: str, raw: Any, source: str) -> EEMetric:
    if not isinstance(raw, dict):
        raise ConfigError(f"metrics.{kind}s: each entry is a mapping", source)
    name, help_ = str(raw.get("name") or ""), str(raw.get("help") or "")
    if not name or not help_:
        raise ConfigError(f"metrics.{kind}s: every {kind} needs a name and a help", source)
    where = f"{kind} {name!r}"
    m = EEMetric(kind, name, help_,
                 [_label(lab, source, where) for lab in raw.get("labels") or []],
                 perf_event_array=bool(raw.get("perf_event_array", False)))
    if kind == "histogram":
        bt = str(raw.get("bucket_type") or "")
        if bt not in BUCKET_TYPES:
            raise ConfigError(f"{where}: bucket_type must be one of {', '.join(BUCKET_TYPES)}",
                              source)
        m.bucket_type = bt
        mult = raw.get("bucket_multiplier") or 1
        m.bucket_multiplier = float(mult) if float(mult) != 0 else 1.0
        if bt == "fixed":
            keys = raw.get("bucket_keys") or []
            if not keys:
                raise ConfigError(f"{where}: a fixed histogram needs bucket_keys", source)
            m.bucket_keys = [float(k) for k in keys]
        else:
            m.bucket_min = _int(raw.get("bucket_min", 0) or 0, f"{where} bucket_min", source)
            m.bucket_max = _int(raw.get("bucket_max", 0) or 0, f"{where} bucket_max", source)
            if m.bucket_min == m.bucket_max:
                raise ConfigError(f"{where}: bucket_min == bucket_max gives a zero size "
                                  "histogram", source)
        if not m.labels:
            raise ConfigError(f"{where}: a histogram's last label is the bucket index", source)
    return m


def parse_config(text: str, name: str, source: str, object_path: str) -> EEConfig:
    """One ebpf_exporter config (pure).  Unknown keys are ignored, as go-yaml does."""
    doc = yamlite.loads(text, source)
    if not isinstance(doc, dict):
        raise ConfigError("an ebpf_exporter config is a mapping with 'metrics'", source)
    metrics = doc.get("metrics") or {}
    if not isinstance(metrics, dict):
        raise ConfigError("'metrics' must be a mapping of counters and histograms", source)
    cfg = EEConfig(name, source, object_path)
    cfg.counters = [_metric("counter", m, source) for m in metrics.get("counters") or []]
    cfg.histograms = [_metric("histogram", m, source) for m in metrics.get("histograms") or []]
    spans = (doc.get("tracing") or {}).get("spans") if isinstance(doc.get("tracing"), dict) \
        else None
    if spans:
        raise ConfigError("tracing.spans (OpenTelemetry spans) are not supported by bpfkit "
                          "export", source)
    if not cfg.metrics():
        raise ConfigError("the config has no metrics.counters or metrics.histograms", source)
    cfg.kaddrs = [str(k) for k in doc.get("kaddrs") or []]
    cim = doc.get("cgroup_id_map")
    if cim:
        if not isinstance(cim, dict) or not cim.get("name"):
            raise ConfigError("cgroup_id_map needs a name (the map to fill)", source)
        if str(cim.get("type", "hash")) not in ("hash", "cgrp_storage"):
            raise ConfigError("cgroup_id_map type must be hash or cgrp_storage", source)
        cfg.cgroup_id_map = dict(cim)
    return cfg


def load_configs(config_dir: str, names: str | list[str]) -> list[EEConfig]:
    """``DIR/<name>.yaml`` + ``DIR/<name>.bpf.o`` for every name, as ebpf_exporter finds them."""
    if not os.path.isdir(config_dir):
        raise ConfigError(f"--config.dir {config_dir!r} is not a directory")
    wanted = [n.strip() for n in (names.split(",") if isinstance(names, str) else names)]
    wanted = [n for n in wanted if n]
    if not wanted:
        raise ConfigError("--config.names is empty: name the configs to load (a,b,c)")
    seen: set[str] = set()
    out = []
    for n in wanted:
        if n in seen:
            raise ConfigError(f"config {n!r} is named twice in --config.names")
        seen.add(n)
        ypath = os.path.join(config_dir, f"{n}.yaml")
        opath = os.path.join(config_dir, f"{n}.bpf.o")
        try:
            with open(ypath, encoding="utf-8") as f:
                text = f.read(1 << 20)
        except OSError as e:
            raise ConfigError(f"cannot read config {n!r}: {e.strerror}", ypath) from None
        out.append(parse_config(text, n, ypath, opath))
    return out


# --------------------------------------------------------------------------- decoders


class _Kallsyms:
    """Exact address -> name (``name\\t[module]`` for modules) and nearest-preceding names."""

    def __init__(self) -> None:
        self._exact: dict[int, str] = {}
        self._sorted: list[tuple[int, str]] = []
        self._by_name: dict[str, int] = {}
        self.reload()

    def reload(self) -> None:
        exact: dict[int, str] = {}
        by_name: dict[str, int] = {}
        for addr, sym, mod in read_kallsyms():
            name = f"{sym}\t[{mod}]" if mod else sym  # ebpf_exporter: name\t[module]
            exact.setdefault(addr, name)
            by_name.setdefault(sym, addr)
        self._exact, self._by_name = exact, by_name
        self._sorted = sorted(exact.items())

    def exact(self, addr: int) -> str | None:
        return self._exact.get(addr)

    def nearest(self, addr: int) -> str:
        import bisect
        i = bisect.bisect_right(self._sorted, (addr, "\U0010ffff")) - 1
        return self._sorted[i][1] if i >= 0 else "??"

    def address(self, name: str) -> int | None:
        return self._by_name.get(name)


class _Cgroups:
    """cgroup id -> absolute path under /sys/fs/cgroup (lexical walk, later path wins)."""

    def __init__(self, root: str = "/sys/fs/cgroup") -> None:
        self.root = root
        self.paths: dict[int, str] = {}
        self.walk()

    def walk(self) -> None:
        paths: dict[int, str] = {}
        for dirpath, dirnames, _files in os.walk(self.root):
            dirnames.sort()
            try:
                paths[os.stat(dirpath).st_ino] = dirpath
            except OSError:
                continue
        self.paths = paths

    def path(self, cgid: int) -> str:
        p = self.paths.get(cgid)
        if p is None:
            self.walk()
            p = self.paths.get(cgid)
        return p if p is not None else f"unknown_cgroup_id:{cgid}"


def _partitions() -> dict[tuple[int, int], str]:
    out = {}
    try:
        with open("/proc/partitions") as f:
            for line in f.readlines()[2:]:
                parts = line.split()
                if len(parts) == 4:
                    out[(int(parts[0]), int(parts[1]))] = parts[3]
    except (OSError, ValueError):
        pass
    return out


def _dname(b: bytes) -> str:
    labels, i = [], 0
    while i < len(b) and b[i]:
        n = b[i]
        labels.append(b[i + 1:i + 1 + n].decode(errors="replace"))
        i += 1 + n
    return ".".join(labels)


Decoder = Callable[[bytes], "bytes | None"]


class _Decoders:
    """ebpf_exporter's decoders: bytes in, bytes out (``None``: drop the row)."""

    def __init__(self) -> None:
        self._ksyms: _Kallsyms | None = None
        self._cgroups: _Cgroups | None = None

    def ksyms(self) -> _Kallsyms:
        if self._ksyms is None:
            self._ksyms = _Kallsyms()
        return self._ksyms

    def cgroups(self) -> _Cgroups:
        if self._cgroups is None:
            self._cgroups = _Cgroups()
        return self._cgroups

    def make(self, name: str, opts: dict[str, Any]) -> Decoder:
        if name == "uint":
            def uint(b: bytes) -> bytes:
                if len(b) not in (1, 2, 4, 8):
                    raise BpfkitError(f"uint decoder: {len(b)} bytes is not 1, 2, 4 or 8")
                return str(int.from_bytes(b, "little")).encode()
            return uint
        if name == "string":
            return lambda b: b.split(b"\0", 1)[0]
        if name == "hex":
            return lambda b: b.hex().encode()
        if name == "static_map":
            table = {str(k): str(v) for k, v in (opts.get("static_map") or {}).items()}
            allow = bool(opts.get("allow_unknown", False))

            def static_map(b: bytes) -> bytes:
                if not table:
                    return b"empty mapping"
                t = b.decode(errors="replace")
                if t in table:
                    return table[t].encode()
                return b if allow else b"unknown:" + b
            return static_map
        if name == "regexp":
            regs = [re.compile(str(p)) for p in opts.get("regexps") or []]

            def regexp(b: bytes) -> bytes | None:
                s = b.decode(errors="replace")
                for r in regs:
                    m = r.search(s)
                    if m is None or r.groups > 1:
                        continue
                    return (m.group(1) if r.groups == 1 else m.group(0)).encode()
                return _SKIP
            return regexp
        if name == "ksym":
            ks = self.ksyms()

            def ksym(b: bytes) -> bytes:
                addr = int.from_bytes(b[:8], "little")
                s = ks.exact(addr)
                if s is None:
                    ks.reload()
                    s = ks.exact(addr)
                return (s if s is not None else f"unknown_addr:0x{addr:x}").encode()
            return ksym
        if name == "kstack":
            ks = self.ksyms()

            def kstack(b: bytes) -> bytes:
                names = []
                for i in range(0, len(b) - len(b) % 8, 8):
                    a = int.from_bytes(b[i:i + 8], "little")
                    if a == 0:
                        break
                    names.append(ks.nearest(a))
                return "\n".join(names).encode()
            return kstack
        if name == "syscall":
            from .syscalls import syscall_name

            def syscall(b: bytes) -> bytes:
                n = int(b.decode())
                s = syscall_name(n)
                return (s if s and not s.startswith(("syscall_", "unknown")) else
                        f"unknown_syscall:{n}").encode()
            return syscall
        if name == "errno":
            return lambda b: _errno.errorcode.get(int(b.decode()),
                                                  f"unknown:{b.decode()}").encode()
        if name == "cgroup":
            cg = self.cgroups()
            return lambda b: cg.path(int(b.decode())).encode()
        if name == "majorminor":
            parts = _partitions()

            def majorminor(b: bytes) -> bytes:
                dev = int.from_bytes(b[:4], "little")
                # the kernel's new_encode_dev: minor low 8 bits, major, minor high bits
                major = (dev & 0xFFF00) >> 8
                minor = (dev & 0xFF) | ((dev >> 12) & 0xFFF00)
                return parts.get((major, minor), f"unknown:{major}:{minor}").encode()
            return majorminor
        if name == "inet_ip":
            def inet_ip(b: bytes) -> bytes:
                if len(b) == 4:
                    return str(ipaddress.IPv4Address(b)).encode()
                if len(b) == 16:
                    a = ipaddress.IPv6Address(b)
                    return str(a.ipv4_mapped or a).encode()
                raise BpfkitError(f"inet_ip decoder: {len(b)} bytes is neither 4 nor 16")
            return inet_ip
        if name == "ifname":
            def ifname(b: bytes) -> bytes:
                idx = int.from_bytes(b[:4], "little")
                try:
                    return socket.if_indextoname(idx).encode()
                except OSError:
                    return f"unknown:{idx}".encode()
            return ifname
        if name == "dname":
            return lambda b: _dname(b).encode()
        raise BpfkitError(f"unknown decoder {name!r}")


# --------------------------------------------------------------------------- exporter


@dataclass
class _Loaded:
    cfg: EEConfig
    coll: Any
    attached: dict[str, bool] = field(default_factory=dict)
    links: list[Any] = field(default_factory=list)
    decoders: dict[tuple[str, int], list[Decoder]] = field(default_factory=dict)


def _xdp_section(section: str) -> str | None:
    return section[4:] if section.startswith("xdp/") and section[4:] not in (
        "cpumap", "devmap") else None


def _perf_event_section(section: str) -> dict[str, int] | None:
    if not section.startswith("perf_event/"):
        return None
    out = {}
    for part in section[len("perf_event/"):].split(","):
        k, sep, v = part.partition("=")
        if not sep:
            raise ConfigError(f"section {section!r}: want perf_event/type=T,config=C,"
                              "frequency=F")
        out[k.strip()] = int(v, 0)
    if "type" not in out or "config" not in out:
        raise ConfigError(f"section {section!r}: type and config are required")
    return out


class EbpfExporter:
    """Load every config's object whole, auto-attach its programs, and read its maps.

    A load failure of any config is fatal (as in ebpf_exporter); an attach failure is
    logged and shows as ``ebpf_exporter_ebpf_program_attached 0``, unless ``strict``.
    """

    def __init__(self, configs: list[EEConfig], *, strict: bool = False,
                 constants: dict[str, Any] | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        self.configs = configs
        #: a bpfkit extension (``--const``): const volatile globals set in every object
        #: that has them; ebpf_exporter itself sets only ``kaddr_*``
        self.constants = dict(constants or {})
        self.strict = strict
        self.loaded: list[_Loaded] = []
        self.decoder_errors: dict[str, int] = {c.name: 0 for c in configs}
        self._dec = _Decoders()
        self._lock = threading.Lock()
        import sys
        self._log = log or (lambda m: print(f"bpfkit export: {m}", file=sys.stderr))

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> EbpfExporter:
        from .._consts import ProgramType
        from ..sections import SecFlag, SectionDef, registered_sections
        from ..spec import CollectionSpec
        custom = [SectionDef("xdp/", ProgramType.XDP, "XDP", SecFlag.ATTACHABLE_OPT),
                  SectionDef("perf_event/", ProgramType.PERF_EVENT, None, SecFlag.NONE)]
        try:
            for cfg in self.configs:
                if not os.path.exists(cfg.object_path):
                    raise ConfigError(f"no object {cfg.object_path} beside the config "
                                      "(build it: clang -target bpf -g -O2 -c "
                                      f"{cfg.name}.bpf.c -o {cfg.name}.bpf.o)", cfg.source)
                with registered_sections(custom):
                    spec = CollectionSpec.from_file(cfg.object_path)
                self._check_maps(cfg, spec)
                consts = {k: v for k, v in self.constants.items() if k in spec.variables}
                if consts:
                    spec.set_constants(consts)
                for sym in cfg.kaddrs:
                    var = f"kaddr_{sym}"
                    addr = self._dec.ksyms().address(sym)
                    if addr is None:
                        raise ConfigError(f"kaddrs: no kernel symbol {sym!r} in /proc/kallsyms",
                                          cfg.source)
                    if var not in spec.variables:
                        raise ConfigError(f"kaddrs: the object has no global {var!r}",
                                          cfg.source)
                    spec.set_constants({var: addr})
                try:
                    coll = spec.load()
                except BpfkitError as e:
                    raise BpfkitError(f"config {cfg.name!r}: loading {cfg.object_path} "
                                      f"failed: {e}") from e
                lo = _Loaded(cfg, coll)
                self.loaded.append(lo)
                self._attach(lo)
                if cfg.cgroup_id_map:
                    self._fill_cgroup_map(lo)
                for m in cfg.metrics():
                    for i, lab in enumerate(m.labels):
                        lo.decoders[(m.name, i)] = [self._dec.make(n, o)
                                                    for n, o in lab.decoders]
        except BaseException:
            self.close()
            raise
        return self

    def _check_maps(self, cfg: EEConfig, spec: Any) -> None:
        for m in cfg.metrics():
            ms = spec.maps.get(m.name)
            if ms is None:
                raise ConfigError(f"metric {m.name!r}: the object has no map of that name "
                                  f"(maps: {', '.join(sorted(spec.maps))})", cfg.source)
            if not m.perf_event_array and ms.value_size != 8:
                raise ConfigError(f"metric {m.name!r}: map value is {ms.value_size} bytes; "
                                  "ebpf_exporter reads u64 values", cfg.source)
            if m.labels and not m.perf_event_array:
                need = sum(lab.size + lab.padding for lab in m.labels)
                percpu_cpu = m.labels[-1].name == "cpu"
                if percpu_cpu:
                    need -= m.labels[-1].size + m.labels[-1].padding
                if need != ms.key_size and not (percpu_cpu and need == 0):
                    raise ConfigError(f"metric {m.name!r}: label sizes and paddings add up "
                                      f"to {need} bytes, the map key is {ms.key_size}",
                                      cfg.source)

    def _attach(self, lo: _Loaded) -> None:
        for name, prog in lo.coll.programs.items():
            section = prog.spec.section if getattr(prog, "spec", None) else ""
            try:
                ifname = _xdp_section(section)
                pe = _perf_event_section(section)
                if ifname is not None:
                    lo.links.append(prog.attach_xdp(ifname))
                elif pe is not None:
                    lo.links.extend(self._attach_perf_event(prog, pe))
                else:
                    link = prog.attach()
                    lo.links.extend(link if isinstance(link, list) else [link])
                lo.attached[name] = True
            except (BpfkitError, OSError) as e:
                lo.attached[name] = False
                if self.strict:
                    raise BpfkitError(f"config {lo.cfg.name!r}: program {name!r} ({section}) "
                                      f"did not attach: {e}") from e
                self._log(f"config {lo.cfg.name}: program {name} ({section}) did not attach: "
                          f"{e}")

    @staticmethod
    def _attach_perf_event(prog: Any, pe: dict[str, int]) -> list[Any]:
        from ..attach.cgroup import attach_perf_event, open_perf_events_all_cpus
        events = open_perf_events_all_cpus(pe["type"], pe["config"],
                                           sample_freq=pe.get("frequency", 0))
        links: list[Any] = []
        try:
            for ev in events:
                links.append(attach_perf_event(prog, ev))
        except BaseException:
            for x in links:
                x.close()
            for ev in events[len(links):]:
                ev.close()
            raise
        return links

    def _fill_cgroup_map(self, lo: _Loaded) -> None:
        cim = lo.cfg.cgroup_id_map or {}
        mp = lo.coll.maps.get(str(cim["name"]))
        if mp is None:
            raise ConfigError(f"cgroup_id_map: the object has no map {cim['name']!r}",
                              lo.cfg.source)
        regs = [re.compile(str(r)) for r in cim.get("regexps") or []]
        cg = self._dec.cgroups()
        cg.walk()
        for cgid, path in cg.paths.items():
            if any(r.search(path) for r in regs):
                try:
                    if str(cim.get("type", "hash")) == "hash":
                        mp.update(cgid, 1)
                except (BpfkitError, OSError) as e:
                    self._log(f"cgroup_id_map {cim['name']}: cannot add {path}: {e}")

    def close(self) -> None:
        for lo in self.loaded:
            for link in lo.links:
                try:
                    link.close()
                except (BpfkitError, OSError):
                    pass
            try:
                lo.coll.close()
            except (BpfkitError, OSError):
                pass
        self.loaded.clear()

    def __enter__(self) -> EbpfExporter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- reading

    def _rows(self, lo: _Loaded, m: EEMetric) -> list[tuple[tuple[str, ...], int]] | None:
        """(label values, value) per map row, or None when the map read/decoding failed."""
        mp = lo.coll.maps[m.name]
        labels = m.labels
        percpu = bool(getattr(mp, "percpu", False))
        by_cpu = percpu and bool(labels) and labels[-1].name == "cpu"
        key_labels = labels[:-1] if by_cpu else labels
        rows: list[tuple[tuple[str, ...], int]] = []
        try:
            items = list(mp.items_raw())
        except (BpfkitError, OSError):
            return None
        for kb, vb in items:
            kb = bytes(kb)
            values: list[tuple[bytes, int]]
            if percpu:
                vals = [int.from_bytes(bytes(v)[:8], "little") for v in vb]
                if by_cpu:
                    if not key_labels and kb == b"\0\0\0\0":
                        kb = b""
                    values = [(kb + cpu.to_bytes(2, "little"), v) for cpu, v in enumerate(vals)]
                else:
                    values = [(kb, v) for v in vals]
            else:
                values = [(kb, int.from_bytes(bytes(vb)[:8], "little"))]
            for key, v in values:
                if not labels:
                    if key != b"\0\0\0\0":
                        raise BpfkitError(f"map {m.name!r}: a metric with no labels reads "
                                          "key 0 only")
                    rows.append(((), v))
                    continue
                out: list[str] = []
                off = 0
                skip = False
                for i, lab in enumerate(labels):
                    if off + lab.size > len(key):
                        raise BpfkitError(f"map {m.name!r}: key is {len(key)} bytes, labels "
                                          "want more")
                    b: bytes | None = key[off:off + lab.size]
                    off += lab.size + lab.padding
                    for dec in lo.decoders[(m.name, i)]:
                        assert b is not None
                        b = dec(b)
                        if b is None:
                            skip = True
                            break
                    if skip:
                        break
                    assert b is not None
                    out.append(b.decode(errors="replace"))
                if not skip:
                    rows.append((tuple(out), v))
        return rows

    def _counter(self, lo: _Loaded, m: EEMetric) -> MetricFamily:
        fam = MetricFamily(PREFIX + m.name, "counter", m.help)
        try:
            rows = self._rows(lo, m)
        except (BpfkitError, ValueError, UnicodeDecodeError):
            rows = None
        if rows is None:
            self.decoder_errors[lo.cfg.name] += 1
            return fam
        agg: dict[tuple[str, ...], int] = {}
        for labels, v in rows:
            agg[labels] = agg.get(labels, 0) + v
        names = [lab.name for lab in m.labels]
        series = [_sorted_labels(names, labels) for labels in agg]
        for lab, v in sorted(zip(series, agg.values(), strict=True),
                             key=lambda s: list(s[0].values())):
            fam.add(lab, float(v))
        return fam

    def _histogram(self, lo: _Loaded, m: EEMetric) -> MetricFamily:
        fam = MetricFamily(PREFIX + m.name, "histogram", m.help)
        try:
            rows = self._rows(lo, m)
        except (BpfkitError, ValueError, UnicodeDecodeError):
            rows = None
        if rows is None:
            self.decoder_errors[lo.cfg.name] += 1
            return fam
        groups: dict[tuple[str, ...], dict[int, int]] = {}
        for labels, v in rows:
            try:
                idx = int(labels[-1], 0)
            except ValueError:
                return fam  # ebpf_exporter skips the histogram for this scrape
            g = groups.setdefault(labels[:-1], {})
            g[idx] = g.get(idx, 0) + v
        names = [lab.name for lab in m.labels[:-1]]
        mult = m.bucket_multiplier
        for labels in sorted(groups, key=lambda lv: list(_sorted_labels(names, lv).values())):
            g = groups[labels]
            buckets: list[tuple[float, int]] = []
            count = 0
            if m.bucket_type == "fixed":
                for k in m.bucket_keys:
                    count += g.get(int(k), 0)
                    buckets.append((k * mult, count))
                total = g.get(int(m.bucket_keys[-1]) + 1, 0) * mult
            else:
                for i in range(m.bucket_min, m.bucket_max + 1):
                    count += g.get(i, 0)
                    if m.bucket_type == "exp2":
                        le = float(2 ** i) * mult
                    elif m.bucket_type == "exp2zero":
                        le = 0.0 if i == 0 else float(2 ** (i - 1)) * mult
                    else:
                        le = float(i) * mult
                    buckets.append((le, count))
                total = g.get(m.bucket_max + 1, 0) * mult
            base = _sorted_labels(names, labels)
            for le, c in buckets:
                fam.samples.append(Sample(fam.name + "_bucket", {**base, "le": go_float(le)},
                                          float(c)))
            fam.samples.append(Sample(fam.name + "_bucket", {**base, "le": "+Inf"},
                                      float(count)))
            fam.samples.append(Sample(fam.name + "_sum", base, float(total)))
            fam.samples.append(Sample(fam.name + "_count", base, float(count)))
        return fam

    def collect(self) -> list[MetricFamily]:
        with self._lock:
            fams: list[MetricFamily] = []
            for lo in self.loaded:
                for m in lo.cfg.counters:
                    if not m.perf_event_array:
                        fams.append(self._counter(lo, m))
                for m in lo.cfg.histograms:
                    fams.append(self._histogram(lo, m))
            fams += self._health()
            fams.sort(key=lambda f: f.name)
            return fams

    def _health(self) -> list[MetricFamily]:
        from .. import __version__
        enabled = MetricFamily(PREFIX + "enabled_configs", "gauge",
                               "The set of enabled configs")
        info = MetricFamily(PREFIX + "ebpf_program_info", "gauge",
                            "Info about ebpf programs")
        attached = MetricFamily(PREFIX + "ebpf_program_attached", "gauge",
                                "Whether a program is attached")
        dec = MetricFamily(PREFIX + "decoder_errors_total", "counter",
                           "How many times has decoders encountered errors")
        build = MetricFamily(PREFIX + "build_info", "gauge",
                             "A metric with a constant '1' value labeled by version, revision, "
                             "branch, goversion from which ebpf_exporter was built, and the "
                             "goos and goarch for the build.")
        build.add({"version": __version__, "revision": "bpfkit", "branch": "",
                   "goversion": "", "goos": "linux", "goarch": os.uname().machine}, 1)
        runs = MetricFamily(PREFIX + "ebpf_program_run_count_total", "counter",
                            "How many times has the program been executed")
        rtime = MetricFamily(PREFIX + "ebpf_program_run_time_seconds", "counter",
                             "How long has the program been executing")
        stats_on = False
        try:
            with open("/proc/sys/kernel/bpf_stats_enabled") as f:
                stats_on = f.read().strip() == "1"
        except OSError:
            pass
        for lo in sorted(self.loaded, key=lambda lo: lo.cfg.name):
            enabled.add({"name": lo.cfg.name}, 1)
            for pname, prog in lo.coll.programs.items():
                try:
                    pi = prog.info()
                except (KernelError, OSError):
                    continue
                pid = str(pi.id)
                info.add({"config": lo.cfg.name, "id": pid, "program": pname,
                          "tag": bytes(pi.tag).hex() if not isinstance(pi.tag, str)
                          else pi.tag}, 1)
                attached.add({"id": pid}, 1 if lo.attached.get(pname) else 0)
                if stats_on:
                    runs.add({"id": pid}, pi.run_cnt)
                    rtime.add({"id": pid}, pi.run_time_ns / 1e9)
        for name in sorted(self.decoder_errors):
            dec.add({"config": name}, self.decoder_errors[name])
        out = [enabled, info, attached, dec, build]
        if stats_on:
            out += [runs, rtime]
        return out


def _sorted_labels(names: list[str], values: tuple[str, ...]) -> dict[str, str]:
    """Label pairs in name order, as client_golang's MakeLabelPairs sorts them."""
    return dict(sorted(zip(names, values, strict=True)))


def render_go(families: list[MetricFamily]) -> str:
    """client_golang's text format: families by name, numbers as Go writes them."""
    lines: list[str] = []
    for fam in sorted(families, key=lambda f: f.name):
        if not fam.samples:
            continue
        lines.append(f"# HELP {fam.name} {fam.help}")
        lines.append(f"# TYPE {fam.name} {fam.type}")
        for s in fam.samples:
            lab = ",".join(f'{k}="{_esc(v)}"' for k, v in s.labels.items())
            lines.append(f"{s.name}{'{' + lab + '}' if lab else ''} {_go_value(s.value)}")
    return "\n".join(lines) + ("\n" if lines else "")


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _go_value(v: float) -> str:
    if v == 1:
        return "1"
    if v == 0:
        return "0"
    return go_float(v)
