"""Loaded BPF programs: load from instructions, verifier errors, test runs, info.

The loader (``bpfkit.loader``) turns a ``ProgramSpec`` into the arguments of
:meth:`Program.load`; this module knows nothing of ELF.
"""

from __future__ import annotations

import ctypes
import errno
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import syscall as sc
from . import verifier_log
from ._consts import AttachType, Cmd, ProgramType
from .errors import BpfkitError, KernelError, VerifierError, caps_for_program, missing_caps
from .fd import FDObject

__all__ = ["Program", "ProgramInfo", "TestRunResult", "load_program"]

LOG_START = 256 * 1024
LOG_MAX = (1 << 30) - 1  # the kernel caps log_size at UINT32_MAX >> 2


@dataclass
class TestRunResult:
    """What BPF_PROG_TEST_RUN returned."""

    __test__ = False
    retval: int
    data: bytes = b""
    context: bytes = b""
    duration_ns: int = 0

    @property
    def duration(self) -> int:
        return self.duration_ns


@dataclass
class ProgramInfo:
    """What the kernel reports about a program (BPF_OBJ_GET_INFO_BY_FD)."""

    id: int
    type: ProgramType | int
    name: str
    tag: str
    jited_size: int
    xlated_size: int
    map_ids: list[int] = field(default_factory=list)
    load_time: int = 0
    uid: int = 0
    btf_id: int = 0
    gpl_compatible: bool = False
    run_time_ns: int = 0
    run_cnt: int = 0
    recursion_misses: int = 0
    verified_insns: int = 0
    attach_btf_id: int = 0
    attach_btf_obj_id: int = 0

    @classmethod
    def from_fd(cls, fd: int) -> ProgramInfo:
        i = sc.obj_info(fd, sc.ProgInfo())
        n = i.nr_map_ids
        map_ids: list[int] = []
        if n:
            ids = (ctypes.c_uint32 * n)()
            j = sc.ProgInfo(nr_map_ids=n, map_ids=ctypes.addressof(ids))
            sc.obj_info(fd, j)
            map_ids = list(ids[: min(n, j.nr_map_ids)])
        try:
            pt: ProgramType | int = ProgramType(i.type)
        except ValueError:
            pt = i.type
        return cls(id=i.id, type=pt, name=i.name.decode(errors="replace"),
                   tag=bytes(i.tag).hex(), jited_size=i.jited_prog_len,
                   xlated_size=i.xlated_prog_len, map_ids=map_ids, load_time=i.load_time,
                   uid=i.created_by_uid, btf_id=i.btf_id,
                   gpl_compatible=bool(i.gpl_compatible & 1), run_time_ns=i.run_time_ns,
                   run_cnt=i.run_cnt, recursion_misses=i.recursion_misses,
                   verified_insns=i.verified_insns, attach_btf_id=i.attach_btf_id,
                   attach_btf_obj_id=i.attach_btf_obj_id)


def _encode(insns: Sequence[Any] | bytes) -> bytes:
    if isinstance(insns, (bytes, bytearray)):
        return bytes(insns)
    from . import asm
    return asm.encode(insns)  # type: ignore[arg-type]


def load_program(prog_type: int, insns: bytes, *, license: str = "GPL", name: str = "",
                 expected_attach_type: int = 0, flags: int = 0, kern_version: int = 0,
                 attach_btf_id: int = 0, attach_prog_fd: int = 0, attach_btf_obj_fd: int = 0,
                 ifindex: int = 0, btf_fd: int = 0, func_info: bytes = b"",
                 func_info_rec_size: int = 8, line_info: bytes = b"",
                 line_info_rec_size: int = 16, fd_array: Sequence[int] = (),
                 log_level: int = 0, log_size: int = 0) -> tuple[int, str]:
    """BPF_PROG_LOAD with the log off first; on failure reload with a growing log.

    Returns (fd, log).  Raises VerifierError with the one-line cause, or KernelError.
    """
    if len(insns) % 8:
        raise BpfkitError("instruction bytes must be a multiple of 8")
    sc.ensure_memlock()
    ibuf = ctypes.create_string_buffer(insns, len(insns))
    lic = sc.cstr(license)
    fi = ctypes.create_string_buffer(func_info, len(func_info)) if func_info else None
    li = ctypes.create_string_buffer(line_info, len(line_info)) if line_info else None
    fda = (ctypes.c_int32 * len(fd_array))(*fd_array) if fd_array else None
    label = f"program {name!r}" if name else "program"

    def attempt(level: int, size: int) -> tuple[int, int, ctypes.Array | None, int]:
        log = ctypes.create_string_buffer(size) if size else None
        a = sc.ProgLoadAttr(
            prog_type=prog_type, insn_cnt=len(insns) // 8, insns=ctypes.addressof(ibuf),
            license=ctypes.addressof(lic), log_level=level, log_size=size,
            log_buf=sc.addr(log), kern_version=kern_version, prog_flags=flags,
            prog_name=sc.name16(name), prog_ifindex=ifindex,
            expected_attach_type=expected_attach_type, prog_btf_fd=btf_fd,
            func_info_rec_size=func_info_rec_size if fi is not None else 0,
            func_info=sc.addr(fi), func_info_cnt=len(func_info) // func_info_rec_size if fi else 0,
            line_info_rec_size=line_info_rec_size if li is not None else 0,
            line_info=sc.addr(li), line_info_cnt=len(line_info) // line_info_rec_size if li else 0,
            attach_btf_id=attach_btf_id, attach_prog_fd=attach_prog_fd or attach_btf_obj_fd,
            fd_array=sc.addr(fda))
        for _ in range(5):
            r = sc._syscall(sc.SYS_BPF, Cmd.PROG_LOAD, ctypes.c_void_p(ctypes.addressof(a)),
                            ctypes.sizeof(a))
            if r >= 0:
                return int(r), 0, log, 0
            err = ctypes.get_errno()
            if err not in (errno.EAGAIN, errno.EINTR):
                break
        return -1, err, log, int(a.log_true_size)

    fd, err, logbuf, true_size = attempt(log_level, log_size)
    if fd >= 0:
        return fd, (logbuf.value.decode(errors="replace") if logbuf is not None else "")
    # Reload with a log so the user sees why; grow it while the kernel says it was too small.
    size = max(log_size, LOG_START)
    level = log_level or 1
    while True:
        fd, err2, logbuf, true_size = attempt(level, size)
        if fd >= 0:  # flaky first failure (e.g. EAGAIN exhaustion): accept the second load
            return fd, logbuf.value.decode(errors="replace") if logbuf is not None else ""
        text = logbuf.value.decode(errors="replace") if logbuf is not None else ""
        if err2 == errno.ENOSPC and size < LOG_MAX:
            size = max(size * 4, true_size + 1)
            continue
        break
    if text.strip():
        raise VerifierError(name or "?", err2, text, source=verifier_log.source_line(text))
    hint = None
    if err2 == errno.EPERM:
        try:
            pt = ProgramType(prog_type).name
            at = AttachType(expected_attach_type).name if expected_attach_type else None
        except ValueError:
            pt, at = str(prog_type), None
        lacking = missing_caps(caps_for_program(pt))
        if lacking:  # name what is missing: CAP_NET_ADMIN for tc/xdp, not CAP_BPF
            hint = (f"loading {pt} programs needs {' and '.join(caps_for_program(pt))}; this "
                    f"process lacks {' and '.join(lacking)}: run as root or grant "
                    f"{', '.join(lacking)}")
        else:
            hint = (f"the kernel refused program type {pt}"
                    + (f" with attach type {at}" if at else "")
                    + " before verification: this needs root/CAP_BPF (+CAP_PERFMON for "
                      "tracing, CAP_NET_ADMIN for networking), or the kernel does not allow "
                      "this program type (lockdown, missing CONFIG_FUNCTION_TRACER/BPF_LSM "
                      "for fentry/fexit/lsm)")
    raise sc.raise_errno(Cmd.PROG_LOAD, err2, label, hint=hint)


class Program(FDObject):
    """A program loaded into the kernel."""

    _kind = "program"

    def __init__(self, fd: int, *, type: int, name: str = "",
                 expected_attach_type: int = 0, section: str = "", log: str = "",
                 spec: Any = None) -> None:
        super().__init__(fd, name)
        try:
            self.type: ProgramType | int = ProgramType(type)
        except ValueError:
            self.type = type
        self.expected_attach_type = expected_attach_type
        self.section = section
        self.log = log
        self.spec = spec
        self.links: list[Any] = []
        self.collection: Any = None

    @classmethod
    def load(cls, prog_type: int, insns: Sequence[Any] | bytes, *, license: str = "GPL",
             name: str = "", expected_attach_type: int = 0, **kw: Any) -> Program:
        """Load instructions (``asm.Instruction`` list or raw bytes) as a program."""
        fd, log = load_program(int(prog_type), _encode(insns), license=license, name=name,
                               expected_attach_type=int(expected_attach_type), **kw)
        return cls(fd, type=prog_type, name=name, expected_attach_type=expected_attach_type,
                   log=log)

    @classmethod
    def from_fd(cls, fd: int) -> Program:
        info = ProgramInfo.from_fd(fd)
        return cls(fd, type=info.type, name=info.name)

    @classmethod
    def from_pin(cls, path: str) -> Program:
        return cls.from_fd(sc.obj_get(path))

    @classmethod
    def from_id(cls, prog_id: int) -> Program:
        return cls.from_fd(sc.get_fd_by_id(Cmd.PROG_GET_FD_BY_ID, prog_id))

    def info(self) -> ProgramInfo:
        return ProgramInfo.from_fd(self.fd)

    @property
    def id(self) -> int:
        return self.info().id

    @property
    def tag(self) -> str:
        return self.info().tag

    def xlated(self) -> bytes:
        """The instructions as the kernel holds them after verification (dump xlated)."""
        i = sc.obj_info(self.fd, sc.ProgInfo())
        n = i.xlated_prog_len
        buf = ctypes.create_string_buffer(n)
        sc.obj_info(self.fd, sc.ProgInfo(xlated_prog_len=n,
                                         xlated_prog_insns=ctypes.addressof(buf)))
        return buf.raw

    def test_run(self, data: bytes = b"", *, context: bytes | None = None, repeat: int = 0,
                 cpu: int | None = None, flags: int = 0, data_out_size: int | None = None,
                 context_out_size: int | None = None, batch_size: int = 0) -> TestRunResult:
        """Run the program in the kernel on ``data``/``context`` (BPF_PROG_TEST_RUN)."""
        din = ctypes.create_string_buffer(data, len(data)) if data else None
        out_n = data_out_size if data_out_size is not None else (len(data) + 256 if data else 0)
        dout = ctypes.create_string_buffer(out_n) if out_n else None
        cin = ctypes.create_string_buffer(context, len(context)) if context else None
        # raw_tp/tracing test runs reject a context out buffer: only give one where it works.
        no_ctx_out = self.type in (ProgramType.RAW_TRACEPOINT, ProgramType.TRACING)
        cout_n = context_out_size if context_out_size is not None else (
            len(context) if context and not no_ctx_out else 0)
        cout = ctypes.create_string_buffer(cout_n) if cout_n else None
        from ._consts import BPF_F_TEST_RUN_ON_CPU
        if cpu is not None:
            flags |= BPF_F_TEST_RUN_ON_CPU
        a = sc.TestRunAttr(prog_fd=self.fd, data_size_in=len(data), data_in=sc.addr(din),
                           data_size_out=out_n, data_out=sc.addr(dout), repeat=repeat,
                           ctx_size_in=len(context) if context else 0, ctx_in=sc.addr(cin),
                           ctx_size_out=cout_n, ctx_out=sc.addr(cout), flags=flags,
                           cpu=cpu or 0, batch_size=batch_size)
        sc.bpf(Cmd.PROG_TEST_RUN, a, obj=f"program {self.name!r}",
               hint="this program type may not support test runs, or data/context sizes are "
                    "wrong for it")
        return TestRunResult(
            retval=a.retval,
            data=dout.raw[: a.data_size_out] if dout is not None else b"",
            context=cout.raw[: a.ctx_size_out] if cout is not None else b"",
            duration_ns=a.duration)

    # ----------------------------------------------------------------- attaching
    # Thin wrappers over bpfkit.attach.*: every attach returns a Link, also kept in
    # ``self.links`` so closing the program detaches what it attached.

    def attach(self, **kw: Any) -> Any:
        """Attach to the hook the section names (libbpf auto-attach), with keyword targets
        for hooks a section cannot name (ifname=, cgroup=, sock=, map=, netns=...)."""
        from .attach.auto import attach_program
        return attach_program(self, **kw)

    def attach_tracepoint(self, category: str, name: str, cookie: int = 0) -> Any:
        from .attach.tracing import attach_tracepoint
        return attach_tracepoint(self, category, name, cookie)

    def attach_raw_tracepoint(self, name: str | None = None, cookie: int = 0) -> Any:
        from .attach.tracing import attach_raw_tracepoint
        return attach_raw_tracepoint(self, name, cookie)

    def attach_trace(self, target_prog: Any = None, **kw: Any) -> Any:
        from .attach.tracing import attach_trace
        return attach_trace(self, target_prog, **kw)

    def attach_lsm(self, cookie: int = 0) -> Any:
        from .attach.tracing import attach_lsm
        return attach_lsm(self, cookie)

    def attach_iter(self, **kw: Any) -> Any:
        from .attach.tracing import attach_iter
        return attach_iter(self, **kw)

    def attach_kprobe(self, func: str, offset: int = 0, retprobe: bool = False,
                      **kw: Any) -> Any:
        from .attach.tracing import attach_kprobe
        return attach_kprobe(self, func, offset, retprobe, **kw)

    def attach_ksyscall(self, name: str, retprobe: bool = False, cookie: int = 0) -> Any:
        from .attach.tracing import attach_ksyscall
        return attach_ksyscall(self, name, retprobe, cookie)

    def attach_kprobe_multi(self, patterns: Any = None, **kw: Any) -> Any:
        from .attach.tracing import attach_kprobe_multi
        return attach_kprobe_multi(self, patterns, **kw)

    def attach_uprobe(self, binary: str, symbol: str | None = None, offset: int = 0,
                      **kw: Any) -> Any:
        from .attach.uprobe import attach_uprobe
        return attach_uprobe(self, binary, symbol, offset, **kw)

    def attach_uprobe_multi(self, binary: str, symbols: Any = None, **kw: Any) -> Any:
        from .attach.uprobe import attach_uprobe_multi
        return attach_uprobe_multi(self, binary, symbols, **kw)

    def attach_usdt(self, binary: str, provider: str, name: str, **kw: Any) -> Any:
        from .attach.auto import attach_program
        return attach_program(self, binary=binary, provider=provider, name=name, **kw)

    def attach_perf_event(self, event: Any = None, **kw: Any) -> Any:
        from .attach.cgroup import attach_perf_event
        return attach_perf_event(self, event, **kw)

    def attach_cgroup(self, cgroup: str | int = "auto", attach_type: int | None = None,
                      **kw: Any) -> Any:
        from .attach.auto import attach_program
        if attach_type is not None:
            kw["attach_type"] = attach_type
        return attach_program(self, cgroup=cgroup, **kw)

    def attach_tcx(self, ifname: str | int, direction: str = "ingress", **kw: Any) -> Any:
        from .attach.net import attach_tcx
        return attach_tcx(self, ifname, direction, **kw)

    def attach_tc(self, ifname: str | int, direction: str = "ingress", **kw: Any) -> Any:
        from .attach.net import attach_tc
        return attach_tc(self, ifname, direction, **kw)

    def attach_xdp(self, ifname: str | int, **kw: Any) -> Any:
        from .attach.net import attach_xdp
        return attach_xdp(self, ifname, **kw)

    def attach_socket_filter(self, sock: Any) -> Any:
        from .attach.net import attach_socket_filter
        return attach_socket_filter(self, sock)

    def attach_sk_lookup(self, netns: Any = None) -> Any:
        from .attach.auto import attach_program
        return attach_program(self, **({"netns": netns} if netns is not None else {}))

    def attach_netfilter(self, **kw: Any) -> Any:
        from .attach.net import attach_netfilter
        return attach_netfilter(self, **kw)

    def attach_sockmap(self, map: Any, attach_type: int | None = None) -> Any:
        from .attach.net import attach_sockmap
        return attach_sockmap(self, map, attach_type if attach_type is not None
                              else int(self.expected_attach_type))

    def close(self) -> None:
        for link in list(self.links):
            try:
                link.close()
            except KernelError:
                pass
        self.links.clear()
        super().close()
