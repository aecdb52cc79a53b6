"""bpfkit's pytest plugin (entry point ``pytest11: bpfkit``): test BPF programs with pytest.

Fixtures:

* ``bpf_object`` (module scope): a factory ``bpf_object("prog.bpf.c", constants={...})``
  that builds (clang) and loads an object once per test module and closes it after the
  module; relative paths are looked up beside the test file and in its ``bpf/`` directory.
* ``bpf_collection`` (module scope): the collection named by the module's ``BPF_OBJECT``
  (and ``BPF_CONSTANTS``), or by indirect parametrization.
* ``bpf_build`` (session scope): a factory that only compiles, returning the object path.
* ``veth_pair``: a :class:`~bpfkit.testing.net.VethPair` whose peer is in a fresh network
  namespace, deleted after the test.
* ``bpf_test_run``: :func:`run_xdp`, :func:`run_tc`, :func:`run_socket_filter` over
  BPF_PROG_TEST_RUN; build packets with :mod:`bpfkit.testing.packets`.
* ``bpf_leak_check``: fails a test that leaves file descriptors (maps, programs, links...)
  or bpffs pins behind.  Opt in per test, or for every test with the ini option
  ``bpf_leak_check = true``; pins are checked with ``bpf_leak_check_pins = true`` (bpffs
  is shared by every process, so only where nothing else pins meanwhile).  Markers
  ``allow_fd_leak`` / ``allow_pin_leak`` exempt a test.

Markers ``requires_root``, ``requires_kernel("5.15")`` and ``requires_feature("tcx")``
skip with the reason (the feature probes of :mod:`bpfkit.attach.features` say what the
kernel lacks).  ``--bpf-kernel 6.1`` re-runs the whole session inside that kernel under
QEMU through :mod:`bpfkit.testing.vm`.
"""

from __future__ import annotations

import gc
import hashlib
import os
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

__all__ = ["RunResult", "run_xdp", "run_tc", "run_socket_filter", "FEATURES", "XDP_ACTIONS",
           "TC_ACTIONS", "check_feature"]

XDP_ACTIONS = {0: "XDP_ABORTED", 1: "XDP_DROP", 2: "XDP_PASS", 3: "XDP_TX", 4: "XDP_REDIRECT"}
TC_ACTIONS = {-1: "TC_ACT_UNSPEC", 0: "TC_ACT_OK", 1: "TC_ACT_RECLASSIFY", 2: "TC_ACT_SHOT",
              3: "TC_ACT_PIPE", 4: "TC_ACT_STOLEN", 5: "TC_ACT_QUEUED", 6: "TC_ACT_REPEAT",
              7: "TC_ACT_REDIRECT", 8: "TC_ACT_TRAP"}
BPFFS = "/sys/fs/bpf"

# fds created by module/session-scoped fixtures: not leaks of the test that created them
_OWNED_FDS: Counter[tuple[Any, ...]] = Counter()


# ----------------------------------------------------------------------------- test runs

@dataclass
class RunResult:
    """What one BPF_PROG_TEST_RUN returned: ``action`` names the verdict."""

    retval: int
    action: str
    data: bytes
    duration_ns: int

    @property
    def dropped(self) -> bool:
        return self.action in ("XDP_DROP", "XDP_ABORTED", "TC_ACT_SHOT", "SOCKET_DROP")

    @property
    def passed(self) -> bool:
        return self.action in ("XDP_PASS", "TC_ACT_OK", "TC_ACT_UNSPEC", "SOCKET_KEEP_ALL") or \
            self.action.startswith("SOCKET_KEEP")


def _signed32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def run_xdp(prog: Any, packet: bytes, *, repeat: int = 1) -> RunResult:
    """Run an XDP program on an Ethernet frame; ``action`` is XDP_PASS/XDP_DROP/..."""
    r = prog.test_run(packet, repeat=repeat)
    return RunResult(r.retval, XDP_ACTIONS.get(r.retval, f"XDP_{r.retval}"), r.data,
                     r.duration_ns)


def run_tc(prog: Any, packet: bytes, *, repeat: int = 1) -> RunResult:
    """Run a tc/tcx (SCHED_CLS) program on an Ethernet frame; ``action`` is TC_ACT_*."""
    r = prog.test_run(packet, repeat=repeat)
    rv = _signed32(r.retval)
    return RunResult(rv, TC_ACTIONS.get(rv, f"TC_ACT_{rv}"), r.data, r.duration_ns)


def run_socket_filter(prog: Any, packet: bytes, *, repeat: int = 1) -> RunResult:
    """Run a socket filter on a packet; the verdict is how many bytes it keeps."""
    r = prog.test_run(packet, repeat=repeat)
    if r.retval == 0:
        action = "SOCKET_DROP"
    elif r.retval >= len(packet):
        action = "SOCKET_KEEP_ALL"
    else:
        action = f"SOCKET_KEEP_{r.retval}"
    return RunResult(r.retval, action, r.data, r.duration_ns)


class _Runner:
    xdp = staticmethod(run_xdp)
    tc = staticmethod(run_tc)
    socket_filter = staticmethod(run_socket_filter)


# ----------------------------------------------------------------------------- features

def _named_features() -> dict[str, Callable[[], Any]]:
    from .. import features as f
    return {"tcx": f.has_tcx, "kprobes": f.has_kprobes, "uprobes": f.has_uprobes,
            "kprobe_multi": f.has_kprobe_multi, "uprobe_multi": f.has_uprobe_multi,
            "bpf_cookie": f.has_bpf_cookie, "syscall_wrapper": f.has_syscall_wrapper}


FEATURES = ("tcx", "kprobes", "uprobes", "kprobe_multi", "uprobe_multi", "bpf_cookie",
            "syscall_wrapper", "btf", "prog:<TYPE>", "map:<TYPE>", "link:<TYPE>")
"""Names ``requires_feature`` accepts; TYPE is a ProgramType/MapType/LinkType name."""


def check_feature(name: str) -> tuple[bool, str]:
    """(supported, reason) for a ``requires_feature`` name; ValueError if the name is unknown."""
    if name == "btf":
        ok = os.path.exists("/sys/kernel/btf/vmlinux")
        return ok, "" if ok else "the kernel has no BTF (/sys/kernel/btf/vmlinux)"
    from .. import features as f
    from .._consts import LinkType, MapType, ProgramType
    kind, sep, tname = name.partition(":")
    if sep:
        table: dict[str, tuple[Any, Callable[[int], Any]]] = {
            "prog": (ProgramType, f.has_program_type), "map": (MapType, f.has_map_type),
            "link": (LinkType, f.has_link_type)}
        if kind not in table:
            raise ValueError(f"unknown feature kind {kind!r} in {name!r} (prog:, map:, link:)")
        enum, probe = table[kind]
        try:
            value = enum[tname.upper()]
        except KeyError:
            raise ValueError(f"unknown {enum.__name__} {tname!r} in requires_feature") from None
        feat = probe(int(value))
    else:
        named = _named_features()
        if name not in named:
            raise ValueError(f"unknown feature {name!r} (known: {', '.join(FEATURES)})")
        feat = named[name]()
    return bool(feat), str(getattr(feat, "reason", ""))


def _version_tuple(text: str) -> tuple[int, ...]:
    m = re.match(r"^(\d+)(?:\.(\d+))?(?:\.(\d+))?", str(text))
    if not m:
        raise ValueError(f"requires_kernel: bad version {text!r} (want like '5.15')")
    return tuple(int(g or 0) for g in m.groups())


# ----------------------------------------------------------------------------- hooks

def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("bpfkit", "bpfkit BPF testing")
    g.addoption("--bpf-kernel", metavar="VERSION", default=None,
                help="run the tests inside this kernel under QEMU (e.g. 6.1; needs "
                     "bpfkit.testing.vm)")
    parser.addini("bpf_leak_check", type="bool", default=False,
                  help="apply the bpf_leak_check fixture (fds, links, pins) to every test")
    parser.addini("bpf_leak_check_pins", type="bool", default=False,
                  help="the leak check also looks for new pins under /sys/fs/bpf (off by "
                       "default: bpffs is shared, so pins made meanwhile by other processes, "
                       "e.g. pytest-xdist workers, would be blamed on the test)")


def pytest_configure(config: pytest.Config) -> None:
    for line in (
        "requires_root: needs root to talk to the kernel (skipped otherwise)",
        "requires_kernel(version): needs at least this kernel version, e.g. '5.15'",
        "requires_feature(name): needs a kernel feature: " + ", ".join(FEATURES),
        "allow_fd_leak: the test deliberately keeps descriptors (subprocess pipes...)",
        "allow_pin_leak: the test deliberately leaves pins on bpffs",
    ):
        config.addinivalue_line("markers", line)


def _strip_option(args: list[str], opt: str) -> list[str]:
    out: list[str] = []
    skip = False
    for a in args:
        if skip:
            skip = False
            continue
        if a == opt:
            skip = True
            continue
        if a.startswith(opt + "="):
            continue
        out.append(a)
    return out


def _guest_kernel(version: str, known: tuple[str, ...]) -> str:
    """``6.1`` -> the first known Debian kernel of that series; a full version is kept."""
    for k in known:
        if k == version or k.startswith(version + ".") or k.startswith(version + "-"):
            return k
    return version


def pytest_cmdline_main(config: pytest.Config) -> int | None:
    kernel = config.getoption("bpf_kernel", None)
    if not kernel:
        return None
    from . import vm
    args = _strip_option(list(config.invocation_params.args), "--bpf-kernel")
    guest = _guest_kernel(str(kernel), tuple(getattr(vm, "DEFAULT_KERNELS", ())))
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
    print(f"bpfkit: running the tests in kernel {guest} under QEMU: {' '.join(cmd)}",
          flush=True)
    runner = vm.VM(cwd=str(config.invocation_params.dir),
                   echo=lambda line: print(line, flush=True))
    try:
        code, _out = runner.run(guest, cmd, timeout=3600)
    except vm.VMError as e:
        raise pytest.UsageError(f"--bpf-kernel {kernel}: {e}") from None
    return int(code)


def _validate_markers(item: pytest.Item) -> None:
    """Bad marker arguments are a usage error of the whole run, found at collection."""
    for m in item.iter_markers("requires_kernel"):
        if len(m.args) != 1:
            raise pytest.UsageError(f"{item.nodeid}: requires_kernel takes one version, "
                                    "like requires_kernel('5.15')")
        try:
            _version_tuple(m.args[0])
        except ValueError as e:
            raise pytest.UsageError(f"{item.nodeid}: {e}") from None
    known = set(FEATURES[:8])
    for m in item.iter_markers("requires_feature"):
        if not m.args:
            raise pytest.UsageError(f"{item.nodeid}: requires_feature needs a feature name")
        for name in m.args:
            kind = str(name).partition(":")[0]
            if str(name) not in known and (":" not in str(name) or
                                           kind not in ("prog", "map", "link")):
                raise pytest.UsageError(f"{item.nodeid}: unknown feature {name!r} for "
                                        f"requires_feature (known: {', '.join(FEATURES)})")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        _validate_markers(item)
    if not config.getini("bpf_leak_check"):
        return
    for item in items:
        names = getattr(item, "fixturenames", None)
        if names is not None and "bpf_leak_check" not in names:
            names.append("bpf_leak_check")


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("requires_root") and os.geteuid() != 0:
        pytest.skip("needs root: BPF programs and maps need CAP_BPF/CAP_SYS_ADMIN")
    for m in item.iter_markers("requires_kernel"):
        if not m.args:
            raise pytest.UsageError(f"{item.nodeid}: requires_kernel needs a version")
        from ..features import kernel_version
        want = _version_tuple(m.args[0])
        have = kernel_version()
        if tuple(have[:len(want)]) < want:
            pytest.skip(f"needs Linux {m.args[0]} or later; this kernel is "
                        f"{'.'.join(map(str, have))}")
    for m in item.iter_markers("requires_feature"):
        for name in m.args:
            try:
                ok, reason = check_feature(str(name))
            except ValueError as e:
                raise pytest.UsageError(f"{item.nodeid}: {e}") from None
            if not ok:
                pytest.skip(f"the kernel lacks {name}: {reason}")


# ----------------------------------------------------------------------------- leak check

FdId = tuple[Any, ...]


def _fds() -> set[int]:
    return {int(x) for x in os.listdir("/proc/self/fd")}


def _fd_identity(fd: int) -> FdId | None:
    """What an fd *is*, independent of its number: the kernel object id for bpf fds (maps,
    programs and links share one anonymous inode), else the file's (st_dev, st_ino).  A
    number reused between the snapshot and the check then cannot hide a leak, and a file
    recreated at the same path is a different file.  None if the fd is already closed."""
    try:
        st = os.fstat(fd)
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    if target.startswith("anon_inode:bpf"):
        kind = target.split(":", 1)[1].strip("[]")
        key = {"bpf-map": "map_id", "bpf-prog": "prog_id", "bpf_link": "link_id"}.get(kind)
        try:
            with open(f"/proc/self/fdinfo/{fd}") as f:
                for line in f:
                    k, _, v = line.partition(":")
                    if k.strip() == key:
                        return ("bpf", kind, int(v))
        except (OSError, ValueError):
            pass
    return ("file", st.st_dev, st.st_ino)


def _fd_snapshot() -> Counter[FdId]:
    """How many open fds refer to each object (a multiset: dup'ed fds count twice)."""
    out: Counter[FdId] = Counter()
    for fd in _fds():
        ident = _fd_identity(fd)
        if ident is not None:
            out[ident] += 1
    return out


def _leaked(before: Counter[FdId]) -> list[int]:
    """fd numbers of the objects that have more fds now than at the snapshot (fixture-owned
    objects aside); for each such object, its highest-numbered fds (the newest)."""
    by_ident: dict[FdId, list[int]] = {}
    for fd in sorted(_fds()):
        ident = _fd_identity(fd)
        if ident is not None:
            by_ident.setdefault(ident, []).append(fd)
    out = []
    for ident, fds in by_ident.items():
        extra = len(fds) - before.get(ident, 0) - _OWNED_FDS.get(ident, 0)
        if extra > 0:
            out += fds[-extra:]
    return sorted(out)


def _describe_fd(fd: int) -> str:
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""
    what = target
    if target.startswith("anon_inode:bpf"):
        info: dict[str, str] = {}
        try:
            with open(f"/proc/self/fdinfo/{fd}") as f:
                for line in f:
                    k, _, v = line.partition(":")
                    info[k.strip()] = v.strip()
        except OSError:
            pass
        keys = ("link_type", "link_id", "prog_id") if "link" in target else (
            "map_type", "map_id") if "map" in target else ("prog_type", "prog_id")
        extra = ", ".join(f"{k} {info[k]}" for k in keys if k in info)
        what = f"{target} ({extra})" if extra else target
    return f"{fd} -> {what}"


def _pins(root: str = BPFFS, limit: int = 20000) -> set[str]:
    out: set[str] = set()
    if not os.path.isdir(root):
        return out
    for dirpath, _dirs, files in os.walk(root):
        for n in files:
            out.add(os.path.join(dirpath, n))
        if len(out) > limit:
            break
    return out


@pytest.fixture
def bpf_leak_check(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test if it leaves fds (maps, programs, links, perf events) or pins behind."""
    check_fds = request.node.get_closest_marker("allow_fd_leak") is None
    check_pins = request.node.get_closest_marker("allow_pin_leak") is None and \
        bool(request.config.getini("bpf_leak_check_pins"))
    fds_before = _fd_snapshot() if check_fds else Counter()
    pins_before = _pins() if check_pins else set()
    yield
    problems = []
    if check_fds:
        gc.collect()
        leaked = _leaked(fds_before)
        desc = [d for d in (_describe_fd(fd) for fd in leaked) if d]
        links = [d for d in desc if "bpf_link" in d]
        if links:
            problems.append("BPF links still attached through leaked fds: " + ", ".join(links))
        others = [d for d in desc if "bpf_link" not in d]
        if others:
            problems.append("file descriptors leaked by the test: " + ", ".join(others))
    if check_pins:
        new = sorted(p for p in _pins() - pins_before if os.path.exists(p))
        if new:
            problems.append("bpffs pins left behind: " + ", ".join(new))
    if problems:
        pytest.fail("; ".join(problems))


# ----------------------------------------------------------------------------- objects

def _resolve_source(path: str | os.PathLike[str], base: Path) -> Path:
    p = Path(path)
    if p.is_absolute():
        return p
    for cand in (base / p, base / "bpf" / p, Path.cwd() / p):
        if cand.exists():
            return cand
    raise pytest.UsageError(f"BPF source/object {str(p)!r} not found beside {base} or in "
                            f"{base / 'bpf'}")


class _Builder:
    """Compile C sources once per content (source, headers beside it, flags)."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir

    def __call__(self, src: str | os.PathLike[str], *, base: Path | None = None,
                 include_dirs: tuple[str, ...] = (), defines: tuple[str, ...] = ()) -> Path:
        p = _resolve_source(src, base or Path.cwd())
        if not p.name.endswith(".c"):
            return p
        from ..build import compile_bpf
        h = hashlib.sha256(repr((str(p), include_dirs, defines)).encode())
        for f in sorted(p.parent.iterdir()):
            if f.suffix == ".h" or f == p:
                h.update(f.name.encode() + b"\0" + f.read_bytes())
        out = self.out_dir / f"{p.name[:-2]}-{h.hexdigest()[:12]}.o"
        if not out.exists():
            tmp = out.with_name(out.name + f".tmp{os.getpid()}")
            compile_bpf(p, tmp, include_dirs=include_dirs, defines=defines)
            tmp.replace(out)
        return out


@pytest.fixture(scope="session")
def bpf_build(tmp_path_factory: pytest.TempPathFactory) -> _Builder:
    """``bpf_build("prog.bpf.c") -> Path`` of the compiled object (cached per session)."""
    return _Builder(tmp_path_factory.mktemp("bpf-build"))


@pytest.fixture(scope="module")
def bpf_object(request: pytest.FixtureRequest, bpf_build: _Builder) -> Iterator[Callable[..., Any]]:
    """``bpf_object("prog.bpf.c", constants={...}, **load_kw)`` -> a loaded Collection,
    built and loaded once per module (same arguments, same collection), closed after it."""
    import bpfkit
    loaded: dict[str, Any] = {}
    owned: Counter[tuple[Any, ...]] = Counter()
    base = Path(str(request.path)).parent if getattr(request, "path", None) else Path.cwd()

    def factory(src: str | os.PathLike[str], *, constants: dict[str, Any] | None = None,
                include_dirs: tuple[str, ...] = (), defines: tuple[str, ...] = (),
                **load_kw: Any) -> Any:
        key = repr((str(src), sorted((constants or {}).items()), include_dirs, defines,
                    sorted(load_kw.items())))
        if key not in loaded:
            obj = bpf_build(src, base=base, include_dirs=include_dirs, defines=defines)
            before = _fd_snapshot()
            coll = bpfkit.load(str(obj), constants=constants or {}, **load_kw)
            new = _fd_snapshot() - before
            owned.update(new)
            _OWNED_FDS.update(new)
            loaded[key] = coll
        return loaded[key]

    try:
        yield factory
    finally:
        for coll in loaded.values():
            coll.close()
        _OWNED_FDS.subtract(owned)
        for ident in [i for i, n in _OWNED_FDS.items() if n <= 0]:
            del _OWNED_FDS[ident]


@pytest.fixture(scope="module")
def bpf_collection(request: pytest.FixtureRequest, bpf_object: Callable[..., Any]) -> Any:
    """The collection of the module's ``BPF_OBJECT`` (with ``BPF_CONSTANTS``), or of an
    indirect parameter (a path, or a dict of bpf_object arguments with ``src``)."""
    param = getattr(request, "param", None)
    if param is None:
        src = getattr(request.module, "BPF_OBJECT", None)
        if src is None:
            raise pytest.UsageError(f"{request.module.__name__}: bpf_collection needs a "
                                    "module-level BPF_OBJECT = 'prog.bpf.c'")
        return bpf_object(src, constants=getattr(request.module, "BPF_CONSTANTS", None))
    if isinstance(param, dict):
        kw = dict(param)
        return bpf_object(kw.pop("src"), **kw)
    return bpf_object(param)


@pytest.fixture
def veth_pair() -> Iterator[Any]:
    """A veth pair: ``host`` end here, ``peer`` end in a fresh netns; removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create network namespaces and veth pairs")
    from .net import VethPair
    pair = VethPair().open()
    try:
        yield pair
    finally:
        pair.close()


@pytest.fixture
def bpf_test_run() -> _Runner:
    """``bpf_test_run.xdp(prog, frame)``, ``.tc(...)``, ``.socket_filter(...)`` -> RunResult."""
    return _Runner()
