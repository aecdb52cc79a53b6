#!/usr/bin/env python3
"""A resumable mutation fuzzer for bpfkit's parsers (``make fuzz``), standard library only.

Every parser that reads untrusted bytes has a *target* here: a function that feeds it one
input and walks the result the way bpfkit's own callers do.  The contract each target checks
is the one users rely on: any input either parses or raises a
:class:`bpfkit.errors.ParseError` subclass naming the problem, within a time and memory bound
proportional to the input.  Anything else (another exception, a timeout, a memory blow-up,
a dead worker) is a *finding*.

Design, and why:

* one worker process does the parsing (``--worker``), so a run never takes more than one CPU;
  it runs under ``RLIMIT_AS`` (a hard backstop) and arms ``setitimer`` per input (the time
  bound); every 16th input is also measured with :mod:`tracemalloc` against the memory bound.
  The parent is a watchdog: if the worker dies or stops making progress, the input it was
  running (always written to ``current`` first) becomes a finding and a new worker starts;
* seeds are real objects (the shipped tool objects, this machine's ld.so.cache, kallsyms,
  the exporter's configs...), mutated by byte/integer/splice/text operators; an input whose
  outcome (success, or the normalised error message) is new joins the corpus, so the corpus
  drifts towards inputs that reach different checks;
* everything lives in a gitignored directory (``.fuzz/`` by default): ``corpus/<target>/``,
  ``findings/<target>/`` (the input and its traceback) and ``stats.json`` (inputs run per
  target), so a run resumes where the last one stopped and the totals accumulate.

The test suite imports :data:`TARGETS` and :func:`run_one` (tests/test_fuzz.py) and runs each
target for a bounded, deterministic number of inputs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import resource
import selectors
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from bpfkit.errors import ParseError  # noqa: E402

DEFAULT_DIR = ROOT / ".fuzz"
OBJ_DIR = ROOT / "src" / "bpfkit" / "tools" / "bpf"

# Per-input bounds: time = TIME_BASE + TIME_PER_BYTE * len, memory = MEM_BASE + MEM_PER_BYTE * len.
TIME_BASE = 1.0
TIME_PER_BYTE = 20e-6
MEM_BASE = 64 << 20
MEM_PER_BYTE = 256
MAX_INPUT = 256 << 10


class Timeout(BaseException):
    """Raised by the per-input CPU timer; a BaseException so that parsers' ``except Exception``
    cannot swallow it."""


# ------------------------------------------------------------------------------ targets

def _obj_paths() -> list[Path]:
    return sorted(OBJ_DIR.glob("*.bpf.o"))


def _section(data: bytes, name: str) -> bytes:
    from bpfkit.elf import ElfFile
    sec = ElfFile(data).section(name)
    return b"" if sec is None else sec.data()


def t_elf(data: bytes) -> None:
    """The ELF reader, as the loader, uprobes and the symbolizer use it."""
    from bpfkit.elf import ElfFile
    with ElfFile(data) as f:
        for s in f.sections:
            s.data()
        for g in f.segments:
            g.data()
        f.symbols()
        f.dynamic_symbols()
        f.find_symbol("main")
        for idx in f.relocation_sections().values():
            f.relocations(idx)
        f.notes()
        f.build_id()
        f.debuglink()
        for g in f.segments[:4]:
            try:
                f.vaddr_to_offset(g.vaddr)
            except ParseError:
                pass


def t_elf_mini(data: bytes) -> None:
    """The section look-up the BTF loader uses (through bpfkit.elf, the one ELF reader)."""
    from bpfkit.btf.parse import elf_section
    elf_section(data, ".BTF")
    elf_section(data, ".BTF.ext")


def t_btf(data: bytes) -> None:
    """Raw BTF: decode every type, then what ``bpfkit btf dump`` does (C and raw)."""
    from bpfkit.btf.cdump import dump_c, dump_raw
    from bpfkit.btf.parse import Spec
    spec = Spec.from_bytes(data)
    for tid in range(1, len(spec)):
        spec.type(tid)
        spec.type_name(tid)
        try:
            spec.sizeof(tid)
        except ParseError:
            pass
    dump_raw(spec)
    dump_c(spec)


_EXT_SPEC: list[object] = []


def _ext_spec() -> object:
    if not _EXT_SPEC:
        from bpfkit.btf.parse import Spec
        obj = (OBJ_DIR / "opensnoop.bpf.o").read_bytes()
        _EXT_SPEC.append(Spec.from_bytes(_section(obj, ".BTF")))
    return _EXT_SPEC[0]


def t_btf_ext(data: bytes) -> None:
    """BTF.ext (func/line info, CO-RE relocations) against opensnoop's BTF."""
    from bpfkit.btf.ext import parse_btf_ext
    ext = parse_btf_ext(data, _ext_spec())  # type: ignore[arg-type]
    for recs in (ext.func_info, ext.line_info, ext.core_relos):
        for lst in recs.values():
            for r in lst:
                getattr(r, "accessors", None)


def t_spec(data: bytes) -> None:
    """CollectionSpec.from_bytes: the whole object parser (ELF + BTF + BTF.ext + relocations)."""
    from bpfkit.spec import CollectionSpec
    spec = CollectionSpec.from_bytes(data)
    for v in spec.variables.values():
        try:
            v.value  # noqa: B018 - decoding through BTF is part of what users do
        except ParseError:
            pass


def _usdt_elf(note: bytes, base_addr: int = 0x1000) -> bytes:
    """A minimal ELF64 holding ``.note.stapsdt`` and ``.stapsdt.base``."""
    names = b"\0.note.stapsdt\0.stapsdt.base\0.shstrtab\0"
    secs = [(0, 0, 0, b"", 0, 0), (1, 7, 0, note, 0, 4), (15, 1, base_addr, b"\0", 0x2, 1),
            (29, 3, 0, names, 0, 1)]
    body = bytearray(64)
    offs = []
    for _, _, _, d, _, _ in secs:
        offs.append(len(body))
        body += d
        body += b"\0" * (-len(body) % 8)
    shoff = len(body)
    for (nm, typ, addr, d, flags, align), off in zip(secs, offs, strict=True):
        body += struct.pack("<IIQQQQIIQQ", nm, typ, flags, addr, off if d else 0, len(d), 0, 0,
                            align, 0)
    hdr = b"\x7fELF\x02\x01\x01" + bytes(9) + struct.pack(
        "<HHIQQQIHHHHHH", 2, 62, 1, 0, 0, shoff, 0, 64, 0, 0, 64, len(secs), len(secs) - 1)
    body[:64] = hdr
    return bytes(body)


def t_usdt(data: bytes) -> None:
    """USDT notes (``.note.stapsdt`` and the argument specs), as attach_usdt reads them."""
    from bpfkit.attach.usdt import parse_usdt_notes
    from bpfkit.elf import ElfFile
    with ElfFile(_usdt_elf(data)) as f:
        parse_usdt_notes(f)


def t_ldcache(data: bytes) -> None:
    """glibc's /etc/ld.so.cache (library name -> path, for uprobes on "libc")."""
    from bpfkit.attach.uprobe import parse_ld_so_cache
    parse_ld_so_cache(data)


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def t_yamlite(data: bytes) -> None:
    """The exporter's YAML subset, then the config checker on the result."""
    from bpfkit.export.config import parse_config
    parse_config(_text(data), "<fuzz>", base_dir="/nonexistent", env={})


def t_kallsyms(data: bytes) -> None:
    """/proc/kallsyms lines."""
    from bpfkit.host.kallsyms import parse_kallsyms
    parse_kallsyms(data)
    parse_kallsyms(data, text_only=False)


def t_tracefs(data: bytes) -> None:
    """tracefs/sysfs text: trace_pipe lines, CPU lists, PMU format bits, kprobe blacklists."""
    from bpfkit.host.cpus import parse_cpu_list
    from bpfkit.host.tracefs import _parse_format_bit
    from bpfkit.readers.tracepipe import parse_line
    text = _text(data)
    for line in text.splitlines()[:256]:
        try:
            parse_line(line)
        except ParseError:
            pass
    _parse_format_bit(text)
    parse_cpu_list(text)


def t_netlink(data: bytes) -> None:
    """Netlink attribute streams (replies of the kernel, parsed for tc/xdp/links)."""
    from bpfkit.netlink import _parse_filter, _parse_link, parse_attrs
    parse_attrs(data)
    _parse_link(data)
    _parse_filter(data)


# ------------------------------------------------------------------------------- seeds

def _seed_objects() -> list[bytes]:
    return [p.read_bytes() for p in _obj_paths()]


def _seed_sections(name: str) -> Callable[[], list[bytes]]:
    def seeds() -> list[bytes]:
        out = [_section(d, name) for d in _seed_objects()]
        return [s for s in out if s]
    return seeds


def _seed_ext() -> list[bytes]:
    return [_section((OBJ_DIR / "opensnoop.bpf.o").read_bytes(), ".BTF.ext")]


_USDT_C = b"""
#include <sys/sdt.h>
int main(int argc, char **argv) {
    long x = argc; char *s = argv[0];
    DTRACE_PROBE2(fuzz, two, x, s);
    DTRACE_PROBE3(fuzz, three, x, s, x + 1);
    DTRACE_PROBE(fuzz, none);
    return 0;
}
"""


def _seed_usdt() -> list[bytes]:
    """Notes of a program compiled with <sys/sdt.h>; a hand-made note without gcc."""
    out = []
    gcc = shutil.which("gcc")
    if gcc and os.path.exists("/usr/include/x86_64-linux-gnu/sys/sdt.h") or \
            os.path.exists("/usr/include/sys/sdt.h"):
        with tempfile.TemporaryDirectory() as d:
            src, exe = os.path.join(d, "u.c"), os.path.join(d, "u")
            Path(src).write_bytes(_USDT_C)
            r = subprocess.run([gcc or "gcc", "-O1", "-o", exe, src], capture_output=True)
            if r.returncode == 0:
                out.append(_section(Path(exe).read_bytes(), ".note.stapsdt"))
    desc = struct.pack("<QQQ", 0x1139, 0x1000, 0) + b"fuzz\0probe\0-4@%edi 8@-8(%rbp) -4@$5\0"
    out.append(struct.pack("<III", 8, len(desc), 3) + b"stapsdt\0" + desc
               + b"\0" * (-len(desc) % 4))
    return [o for o in out if o]


def _seed_file(path: str, limit: int = 64 << 10) -> Callable[[], list[bytes]]:
    def seeds() -> list[bytes]:
        try:
            with open(path, "rb") as f:
                return [f.read(limit)]
        except OSError:
            return []
    return seeds


def _seed_kallsyms() -> list[bytes]:
    try:
        with open("/proc/kallsyms", "rb") as f:
            lines = [f.readline() for _ in range(20000)]
    except OSError:
        lines = []
    mods = [ln for ln in lines if b"[" in ln][:50]
    return [b"".join(lines[:200]), b"".join(lines[5000:5100]) + b"".join(mods),
            b"ffffffff81000000 T _text\nffffffffc0000000 t foo\t[mod]\n"]


def _seed_yaml() -> list[bytes]:
    cfgs = sorted((ROOT / "src" / "bpfkit" / "export" / "configs").glob("*.yaml"))
    return [p.read_bytes() for p in cfgs] + [
        b"a: {b: [1, 2, 'x'], c: \"q\\n\"}\nlist:\n  - |\n    text\n  - >-\n    folded\n"]


def _seed_tracefs() -> list[bytes]:
    return [
        b"            bash-1234    [001] d..31  1234.567890: bpf_trace_printk: hello 42\n"
        b"   <idle>-0       ( 0) [000] .Ns.  5.000001: bpf_trace_printk: x\n",
        b"0-1,3,5-7\n", b"config:0\n", b"config:12-15\n", b"0\n"]


def _seed_netlink() -> list[bytes]:
    def attr(t: int, p: bytes) -> bytes:
        return struct.pack("=HH", 4 + len(p), t) + p + b"\0" * (-len(p) % 4)
    link = bytes(16) + attr(3, b"eth0\0") + attr(4, struct.pack("=I", 1500)) + attr(
        43 | 0x8000, attr(1, struct.pack("=I", 7)) + attr(2, struct.pack("=I", 2)))
    filt = bytes(20) + attr(1, b"bpf\0") + attr(2 | 0x8000, attr(1, struct.pack("=I", 5))
                                               + attr(3, b"prog:[tc]\0"))
    return [link, filt]


@dataclass(frozen=True)
class Target:
    name: str
    run: Callable[[bytes], None]
    seeds: Callable[[], list[bytes]]
    text: bool = False


TARGETS: dict[str, Target] = {t.name: t for t in [
    Target("elf", t_elf, _seed_objects),
    Target("elf_mini", t_elf_mini, _seed_objects),
    Target("btf", t_btf, _seed_sections(".BTF")),
    Target("btf_ext", t_btf_ext, _seed_ext),
    Target("spec", t_spec, _seed_objects),
    Target("usdt", t_usdt, _seed_usdt),
    Target("ldcache", t_ldcache, _seed_file("/etc/ld.so.cache")),
    Target("yamlite", t_yamlite, _seed_yaml, text=True),
    Target("kallsyms", t_kallsyms, _seed_kallsyms, text=True),
    Target("tracefs", t_tracefs, _seed_tracefs, text=True),
    Target("netlink", t_netlink, _seed_netlink),
]}


def t_dwarf(data: bytes) -> None:
    """DWARF (.debug_info/abbrev/str/line...) of an object: DIEs, BTF conversion, lines."""
    from bpfkit.dwarf import DebugInfo
    from bpfkit.elf import ElfFile
    with ElfFile(data) as f:
        info = DebugInfo.from_elf(f)
    spec = info.to_btf()
    for tid in range(1, len(spec)):
        spec.type_name(tid)
    info.lines()


TARGETS["dwarf"] = Target("dwarf", t_dwarf, _seed_objects)


# ----------------------------------------------------------------------- running one input

def warm_up(target: Target, seeds: list[bytes]) -> None:
    """Run a seed once without the timer, so that importing the parser's modules (slow on a
    busy machine) is not charged to the first input's time bound."""
    for s in seeds[:1]:
        try:
            target.run(s)
        except Exception:  # noqa: BLE001, S110 - only the imports matter here
            pass


@dataclass
class Outcome:
    kind: str            # "ok", "parse" (a ParseError: fine) or "finding"
    signature: str       # normalised outcome, for corpus novelty and finding dedup
    detail: str = ""     # traceback of a finding
    seconds: float = 0.0
    peak: int = -1       # tracemalloc peak in bytes, -1 when not measured


def time_limit(n: int) -> float:
    return TIME_BASE + TIME_PER_BYTE * n


def mem_limit(n: int) -> int:
    return MEM_BASE + MEM_PER_BYTE * n


def _on_alarm(signum: int, frame: object) -> None:
    raise Timeout()


_NUM = re.compile(r"0x[0-9a-fA-F]+|\d+")


def _normalise(msg: str) -> str:
    return _NUM.sub("N", msg)[:60]


def _where(tb: BaseException) -> str:
    frames = traceback.extract_tb(tb.__traceback__)
    own = [f for f in frames if "bpfkit" in f.filename] or frames
    if not own:
        return "?"
    f = own[-1]
    return f"{Path(f.filename).name}:{f.lineno}"


def run_one(target: Target, data: bytes, *, measure_memory: bool = False) -> Outcome:
    """Run one input under the time bound (and the memory bound when asked).

    The bound is on this process's CPU time (ITIMER_PROF), not the wall clock: on a machine
    shared with test suites a wall-clock timer reports the load, not the parser."""
    old = signal.signal(signal.SIGPROF, _on_alarm)
    limit = time_limit(len(data))
    if measure_memory:
        tracemalloc.start()
    t0 = time.perf_counter()
    try:
        try:
            signal.setitimer(signal.ITIMER_PROF, limit)
            target.run(data)
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
        out = Outcome("ok", "ok")
    except ParseError as e:
        out = Outcome("parse", f"{type(e).__name__}: {_normalise(str(e))}")
        cause = e.__cause__
        if cause is not None and not isinstance(cause, (ParseError, OSError)):
            # a catch-all turned a Python error into a ParseError: the message names the
            # exception, not the problem in the input
            out = Outcome("finding", f"wrapped {type(cause).__name__}@{_where(cause)}",
                          "".join(traceback.format_exception(e)))
        elif not str(e).strip():
            out = Outcome("finding", f"{type(e).__name__} without a message@{_where(e)}",
                          "".join(traceback.format_exception(e)))
    except Timeout as e:
        out = Outcome("finding", f"timeout>{limit:.1f}s@{_where(e)}",
                      "".join(traceback.format_exception(e)))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # noqa: BLE001 - anything else is what we are hunting
        out = Outcome("finding", f"{type(e).__name__}@{_where(e)}",
                      "".join(traceback.format_exception(e)))
    finally:
        signal.signal(signal.SIGPROF, old)
    out.seconds = time.perf_counter() - t0
    if measure_memory:
        out.peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        if out.peak > mem_limit(len(data)) and out.kind != "finding":
            out = Outcome("finding", f"memory>{mem_limit(len(data)) >> 20}MiB",
                          f"peak {out.peak} bytes for a {len(data)}-byte input", out.seconds,
                          out.peak)
    return out


# ------------------------------------------------------------------------------ mutation

_I8 = (0, 1, 0x7F, 0x80, 0xFF)
_I32 = (0, 1, 2, 7, 8, 0x40, 0x7F, 0x1000, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000,
        0xFFFFFFF0, 0xFFFFFFFF)
_I64 = (0x7FFFFFFFFFFFFFFF, 0x8000000000000000, 0xFFFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFC0,
        1 << 32, 1 << 40)
_TOKENS = (b"\n", b" ", b"  ", b"\t", b":", b"-", b"- ", b"[", b"]", b"{", b"}", b",", b"'",
           b'"', b"#", b"|", b">", b"&a", b"*a", b"!!", b"\\", b"0x", b"-1", b"99999999999999999",
           b"1e999", b"nan", b"1" * 4400, b"[" * 100, b"{a: " * 70, b"\xff\xfe", b"\xc3", b"\x00", b"%rax", b"@", b"(", b")", b"$",
           b"config:", b"[LOST 3 EVENTS]", b"T", b"ffffffff")


def mutate(rng: random.Random, data: bytes, corpus: list[bytes], text: bool) -> bytes:
    b = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4, 6))):
        n = len(b)
        op = rng.randrange(12 if text else 10)
        if n == 0:
            b += rng.randbytes(rng.randrange(1, 16))
            continue
        i = rng.randrange(n)
        if op == 0:
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[i] = rng.choice(_I8)
        elif op == 2:
            b[i] = rng.randrange(256)
        elif op in (3, 4):
            w, vals = (4, _I32) if op == 3 else (8, _I64 + _I32)
            i &= ~(w - 1)
            if i + w <= n:
                v = rng.choice(vals)
                if rng.random() < 0.2:
                    v = (v + rng.randrange(-4, 5)) % (1 << (8 * w))
                b[i:i + w] = v.to_bytes(w, rng.choice(("little", "big")))
        elif op == 5:
            j = min(n, i + rng.randrange(1, 64))
            del b[i:j]
        elif op == 6:
            j = min(n, i + rng.randrange(1, 64))
            b[i:i] = b[i:j] * rng.randrange(1, 4)
        elif op == 7:
            del b[rng.randrange(n):]
        elif op == 8 and corpus:
            other = rng.choice(corpus)
            if other:
                k = rng.randrange(len(other))
                b[i:i + rng.randrange(1, 256)] = other[k:k + rng.randrange(1, 256)]
        elif op == 9:
            b[i:i] = rng.randbytes(rng.randrange(1, 9))
        else:  # text: tokens, duplicated or dropped lines
            if op == 10:
                b[i:i] = rng.choice(_TOKENS)
            else:
                lines = bytes(b).split(b"\n")
                k = rng.randrange(len(lines))
                if rng.random() < 0.5:
                    lines.insert(k, lines[rng.randrange(len(lines))])
                else:
                    del lines[k]
                b = bytearray(b"\n".join(lines))
    return bytes(b[:MAX_INPUT])


# -------------------------------------------------------------------------------- state

class Store:
    """The on-disk state: corpus, findings and counters, shared by parent and worker."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.corpus_dir = root / "corpus"
        self.findings_dir = root / "findings"
        self.stats_path = root / "stats.json"
        self.current = root / "current"
        root.mkdir(parents=True, exist_ok=True)

    def corpus(self, target: Target) -> list[bytes]:
        d = self.corpus_dir / target.name
        if not d.is_dir() or not any(d.iterdir()):
            d.mkdir(parents=True, exist_ok=True)
            for s in target.seeds():
                self.add(target.name, s, "seed")
        return [p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()]

    def add(self, target: str, data: bytes, tag: str) -> None:
        d = self.corpus_dir / target
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{tag}-{hashlib.sha1(data).hexdigest()[:16]}").write_bytes(data)

    def finding(self, target: str, sig: str, data: bytes, detail: str) -> bool:
        """Record a finding; False when this signature was already known."""
        d = self.findings_dir / target
        d.mkdir(parents=True, exist_ok=True)
        h = hashlib.sha1(sig.encode()).hexdigest()[:12]
        if (d / f"{h}.bin").exists():
            return False
        (d / f"{h}.bin").write_bytes(data)
        (d / f"{h}.txt").write_text(f"{sig}\n\n{detail}")
        return True

    def load_stats(self) -> dict[str, dict[str, int]]:
        try:
            return json.loads(self.stats_path.read_text())
        except (OSError, ValueError):
            return {}

    def save_stats(self, stats: dict[str, dict[str, int]]) -> None:
        tmp = self.stats_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(stats, indent=1, sort_keys=True))
        os.replace(tmp, self.stats_path)


# ------------------------------------------------------------------------------- worker

def worker(root: Path, names: list[str], seed: int, slice_s: float) -> None:
    """Fuzz the targets round-robin, ``slice_s`` seconds each; one JSON line per slice."""
    store = Store(root)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as f:
        vm = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    cap = vm + (1 << 30)
    resource.setrlimit(resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY
                                            else min(cap, hard), hard))
    cur = os.open(store.current, os.O_WRONLY | os.O_CREAT, 0o644)
    targets = [TARGETS[n] for n in names]
    corpora = {t.name: store.corpus(t) for t in targets}
    for t in targets:
        warm_up(t, corpora[t.name])
    seen: dict[str, set[str]] = {t.name: set() for t in targets}
    rnd = 0
    while True:
        for t in targets:
            rng = random.Random(f"{seed}/{t.name}/{rnd}")
            corpus = corpora[t.name]
            counts = {"inputs": 0, "ok": 0, "parse": 0, "findings": 0, "new_findings": 0,
                      "corpus_added": 0}
            slowest = 0.0
            peak = 0
            end = time.monotonic() + slice_s
            while time.monotonic() < end:
                data = mutate(rng, rng.choice(corpus), corpus, t.text) if corpus else b""
                os.ftruncate(cur, 0)
                os.pwrite(cur, t.name.encode() + b"\n" + data, 0)
                out = run_one(t, data, measure_memory=counts["inputs"] % 16 == 0)
                counts["inputs"] += 1
                counts[out.kind if out.kind != "finding" else "findings"] += 1
                slowest = max(slowest, out.seconds)
                peak = max(peak, out.peak)
                if out.kind == "finding":
                    if store.finding(t.name, out.signature, data, out.detail):
                        counts["new_findings"] += 1
                    if out.signature.startswith(("MemoryError", "memory>")):
                        sys.stdout.write(json.dumps({"target": t.name, **counts}) + "\n")
                        sys.stdout.flush()
                        os._exit(3)  # a fresh worker: the heap may be fragmented
                elif out.signature not in seen[t.name]:
                    seen[t.name].add(out.signature)
                    if len(corpus) < 400 and rnd > 0:
                        corpus.append(data)
                        store.add(t.name, data, "new")
                        counts["corpus_added"] += 1
            sys.stdout.write(json.dumps({"target": t.name, "slowest": round(slowest, 3),
                                         "peak": peak, **counts}) + "\n")
            sys.stdout.flush()
        rnd += 1


# ------------------------------------------------------------------------------- parent

def recheck(root: Path) -> int:
    """Run every recorded finding again; those that no longer fail (fixed, or a false alarm)
    move to ``fixed/``.  Returns how many still fail."""
    store = Store(root)
    still = 0
    for binf in sorted(store.findings_dir.glob("*/*.bin")):
        name = binf.parent.name
        target = TARGETS.get(name)
        if target is None:
            continue
        warm_up(target, target.seeds())
        out = run_one(target, binf.read_bytes(), measure_memory=True)
        first = binf.with_suffix(".txt").read_text().splitlines()[0]
        if out.kind == "finding":
            still += 1
            print(f"  still fails  {name}/{binf.stem}: {out.signature}")
            continue
        dest = root / "fixed" / name
        dest.mkdir(parents=True, exist_ok=True)
        for f in (binf, binf.with_suffix(".txt")):
            os.replace(f, dest / f.name)
        print(f"  now passes   {name}/{binf.stem} (was {first}; now {out.kind}, "
              f"{out.seconds * 1000:.0f} ms)")
    return still


def _summary(stats: dict[str, dict[str, int]], names: list[str]) -> str:
    total = sum(stats.get(n, {}).get("inputs", 0) for n in names)
    finds = sum(stats.get(n, {}).get("findings", 0) for n in names)
    per = "  ".join(f"{n} {stats.get(n, {}).get('inputs', 0)}" for n in names)
    return f"inputs {total}, findings {finds} | {per}"


def parent(args: argparse.Namespace) -> int:
    root = Path(args.dir)
    store = Store(root)
    names = args.targets.split(",") if args.targets else list(TARGETS)
    for n in names:
        if n not in TARGETS:
            print(f"fuzz: unknown target {n!r} (have: {', '.join(TARGETS)})", file=sys.stderr)
            return 2
    stats = store.load_stats()
    start_total = sum(s.get("inputs", 0) for s in stats.values())
    stop_at = (start_total + args.inputs) if args.inputs else None
    deadline = time.monotonic() + args.time if args.time else None
    print(f"fuzz: state in {root}; resuming at {_summary(stats, names)}", flush=True)
    t0 = time.monotonic()
    last_print = 0.0
    generation = stats.get("_run", {}).get("generation", 0)
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping:
        generation += 1
        cmd = [sys.executable, __file__, "--worker", "--dir", str(root), "--targets",
               ",".join(names), "--seed", str(args.seed * 100003 + generation),
               "--slice", str(args.slice)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                preexec_fn=lambda: os.nice(10))
        assert proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        buf = b""
        started = time.monotonic()
        while not stopping:
            ready = sel.select(timeout=1.0)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    rep = json.loads(line)
                    s = stats.setdefault(rep["target"], {})
                    for k in ("inputs", "ok", "parse", "findings", "new_findings",
                              "corpus_added"):
                        s[k] = s.get(k, 0) + rep.get(k, 0)
                    s["slowest_ms"] = max(s.get("slowest_ms", 0),
                                          int(1000 * rep.get("slowest", 0)))
                    s["peak_kib"] = max(s.get("peak_kib", 0), rep.get("peak", 0) >> 10)
                    if rep.get("new_findings"):
                        print(f"fuzz: NEW FINDING in {rep['target']} "
                              f"(see {root / 'findings' / rep['target']})", flush=True)
            try:
                age = time.time() - os.stat(store.current).st_mtime
            except OSError:
                age = 0.0
            if age > args.watchdog and proc.poll() is None:
                proc.kill()
                break
            if time.monotonic() - started > args.restart_every:
                break  # a fresh worker picks up code changed since it started
            total = sum(s.get("inputs", 0) for k, s in stats.items() if k != "_run")
            if (stop_at and total >= stop_at) or (deadline and time.monotonic() > deadline):
                stopping = True
            if time.monotonic() - last_print > args.print_every:
                last_print = time.monotonic()
                rate = (total - start_total) / max(time.monotonic() - t0, 1e-9)
                print(f"fuzz: {_summary(stats, names)}  ({rate:.0f}/s)", flush=True)
                stats["_run"] = {"generation": generation}
                store.save_stats(stats)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        rc = proc.returncode
        if not stopping and rc not in (0, 3, -signal.SIGTERM):
            # the worker died or hung: what it was running is a finding
            try:
                raw = store.current.read_bytes()
                tname, data = raw.split(b"\n", 1)
                why = "hung (watchdog)" if rc == -signal.SIGKILL else f"worker died rc={rc}"
                if store.finding(tname.decode(), why, data, why):
                    print(f"fuzz: NEW FINDING in {tname.decode()}: {why}", flush=True)
                s = stats.setdefault(tname.decode(), {})
                s["findings"] = s.get("findings", 0) + 1
            except (OSError, ValueError):
                pass
        sel.close()
        proc.stdout.close()
    stats["_run"] = {"generation": generation}
    store.save_stats(stats)
    print(f"fuzz: stopped; totals: {_summary(stats, names)}", flush=True)
    for n in names:
        s = stats.get(n, {})
        print(f"  {n:9} inputs {s.get('inputs', 0):>9}  ok {s.get('ok', 0):>8}  "
              f"parse errors {s.get('parse', 0):>8}  findings {s.get('findings', 0):>4}  "
              f"corpus +{s.get('corpus_added', 0):<4} slowest {s.get('slowest_ms', 0)} ms  "
              f"peak {s.get('peak_kib', 0)} KiB", flush=True)
    listing = sorted(store.findings_dir.glob("*/*.txt")) if store.findings_dir.is_dir() else []
    if listing:
        print(f"fuzz: {len(listing)} distinct findings on disk:")
        for p in listing:
            print(f"  {p.parent.name}/{p.stem}: {p.read_text().splitlines()[0]}")
    return 1 if listing else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", default=os.environ.get("FUZZ_DIR", str(DEFAULT_DIR)),
                    help="state directory (corpus, findings, stats); default .fuzz/")
    ap.add_argument("--targets", default="", help="comma-separated (default: all): "
                    + ", ".join(TARGETS))
    ap.add_argument("--inputs", type=int, default=0, help="stop after this many more inputs")
    ap.add_argument("--time", type=float, default=0, help="stop after this many seconds")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--slice", type=float, default=2.0, help="seconds per target per round")
    ap.add_argument("--watchdog", type=float, default=60.0,
                    help="kill a worker whose current input ran this long")
    ap.add_argument("--print-every", type=float, default=10.0)
    ap.add_argument("--restart-every", type=float, default=600.0,
                    help="start a new worker this often (seconds)")
    ap.add_argument("--recheck", action="store_true",
                    help="run the recorded findings again; move those that pass to fixed/")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.recheck:
        return 1 if recheck(Path(args.dir)) else 0
    if args.worker:
        worker(Path(args.dir), args.targets.split(","), args.seed, args.slice)
        return 0
    return parent(args)


if __name__ == "__main__":
    sys.exit(main())
