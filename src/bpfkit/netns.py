"""Network namespaces without ``ip netns exec``.

Why not ``ip netns exec``: it remounts ``/sys`` inside the namespace, hiding bpffs,
cgroups and tracefs.  We enter namespaces with ``setns(2)`` on the *calling thread* only
(a thread's netns is per thread), and always come back to the namespace we left.

A namespace reference (``NetnsRef``) is a name under ``/run/netns``, a path to an nsfs file
(``/run/netns/X``, ``/proc/PID/ns/net``), an open fd, a :class:`NetNS`, or ``None`` for
the calling thread's current namespace.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import itertools
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from typing import Any, Union

from .errors import BpfkitError, KernelError, NotFound, kernel_error
from .syscall import libc

__all__ = ["NetNS", "NetnsRef", "create", "delete", "enter", "exists",
           "netns_inode", "open_netns", "current_netns_path", "NETNS_RUN_DIR",
           "netns_cookie", "netns_identity", "same_netns", "find_netns"]

CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = "/run/netns"
MS_BIND = 0x1000
MS_REC = 0x4000
MS_SHARED = 1 << 20
MNT_DETACH = 2

NetnsRef = Union[str, int, "os.PathLike[str]", "NetNS", None]

_counter = itertools.count()


def _libc_call(fn: Any, *args: Any, command: str, obj: str | None = None) -> int:
    ret = fn(*args)
    if ret < 0:
        raise kernel_error(command, ctypes.get_errno(), obj=obj)
    return int(ret)


def current_netns_path() -> str:
    """The nsfs file of the *calling thread's* netns (``/proc/self`` is the main thread's)."""
    return "/proc/thread-self/ns/net"


def _path_of(ref: str | os.PathLike[str]) -> str:
    s = os.fspath(ref)
    if "/" not in s:
        return os.path.join(NETNS_RUN_DIR, s)
    return s


def open_netns(ref: NetnsRef) -> int:
    """Open a new fd on the namespace ``ref`` names; the caller closes it."""
    if ref is None:
        return os.open(current_netns_path(), os.O_RDONLY | os.O_CLOEXEC)
    if isinstance(ref, NetNS):
        return os.open(ref.path, os.O_RDONLY | os.O_CLOEXEC)
    if isinstance(ref, int):
        return os.dup(ref)
    path = _path_of(ref)
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NotFound("open netns", errno.ENOENT, obj=path,
                       hint="no such network namespace") from None


def netns_inode(ref: NetnsRef = None) -> int:
    """Inode number identifying a netns (what bpf link info reports as ``netns_ino``)."""
    if isinstance(ref, int):
        return os.fstat(ref).st_ino
    fd = open_netns(ref)
    try:
        return os.fstat(fd).st_ino
    finally:
        os.close(fd)


SO_NETNS_COOKIE = 71


def netns_cookie(ref: NetnsRef = None) -> int | None:
    """The kernel's cookie of a netns (getsockopt SO_NETNS_COOKIE on a socket made inside
    it, Linux 5.14+): unlike the nsfs inode number it is never reused.  None if the kernel
    does not have it."""
    with enter(ref):
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                raw = s.getsockopt(socket.SOL_SOCKET, SO_NETNS_COOKIE, 8)
        except OSError:
            return None
    return int.from_bytes(raw, "little")


def netns_identity(ref: NetnsRef = None) -> dict[str, int]:
    """What names a netns across processes and time, for records that outlive us: its
    inode and device, and the cookie where the kernel has one.  Without a cookie (kernels
    before 5.14) the inode may be reused by a later namespace, so the users of an identity
    check a marker of their own as well (the interface they attached to)."""
    fd = open_netns(ref) if not isinstance(ref, int) else os.dup(ref)
    try:
        st = os.fstat(fd)
        out = {"ino": st.st_ino, "dev": st.st_dev}
        cookie = netns_cookie(fd)
        if cookie is not None:
            out["cookie"] = cookie
        return out
    finally:
        os.close(fd)


def same_netns(fd: int, ident: dict[str, Any]) -> bool:
    """Whether ``fd`` is the namespace ``ident`` (from :func:`netns_identity`) named."""
    st = os.fstat(fd)
    if st.st_ino != ident.get("ino") or ("dev" in ident and st.st_dev != ident["dev"]):
        return False
    if "cookie" in ident:
        return netns_cookie(fd) == ident["cookie"]
    return True


def find_netns(ident: dict[str, Any], hint: str | None = None) -> int | None:
    """An fd on the namespace ``ident`` names if it still exists anywhere (a path under
    /run/netns, ``hint``, or a process's ``/proc/PID/ns/net``), else None: a namespace that
    is gone took its attachments with it."""
    candidates = [hint] if hint else []
    candidates.append(current_netns_path())
    with contextlib.suppress(OSError):
        candidates += [os.path.join(NETNS_RUN_DIR, n) for n in os.listdir(NETNS_RUN_DIR)]
    with contextlib.suppress(OSError):
        candidates += [f"/proc/{p}/ns/net" for p in os.listdir("/proc") if p.isdigit()]
    tried: set[tuple[int, int]] = set()
    for path in candidates:
        try:
            st = os.stat(path)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in tried or st.st_ino != ident.get("ino"):
            continue
        tried.add((st.st_dev, st.st_ino))
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            if same_netns(fd, ident):
                return fd
        except (OSError, BpfkitError):
            pass
        os.close(fd)
    return None


def setns(fd: int, nstype: int = CLONE_NEWNET) -> None:
    """Move the calling thread into the namespace ``fd`` refers to."""
    _libc_call(libc.setns, fd, nstype, command="setns", obj=f"fd {fd}")


@contextlib.contextmanager
def enter(ref: NetnsRef) -> Iterator[None]:
    """Run the ``with`` body in netns ``ref`` on this thread, then return to where we were.

    ``None`` is a no-op, so callers can pass an optional namespace straight through.
    """
    if ref is None:
        yield
        return
    target = open_netns(ref)
    try:
        home = os.open(current_netns_path(), os.O_RDONLY | os.O_CLOEXEC)
        try:
            if os.fstat(home).st_ino == os.fstat(target).st_ino:
                yield
                return
            setns(target)
            try:
                yield
            finally:
                setns(home)
        finally:
            os.close(home)
    finally:
        os.close(target)


def exists(name: str) -> bool:
    return os.path.exists(_path_of(name))


def _make_run_dir_shared() -> None:
    """Like iproute2: make /run/netns a shared mount so other mount namespaces see our mounts."""
    os.makedirs(NETNS_RUN_DIR, mode=0o755, exist_ok=True)
    d = NETNS_RUN_DIR.encode()
    if libc.mount(b"none", d, b"none", ctypes.c_ulong(MS_SHARED | MS_REC), None) == 0:
        return
    if ctypes.get_errno() != errno.EINVAL:  # EINVAL: not a mount point yet
        return
    if libc.mount(d, d, b"none", ctypes.c_ulong(MS_BIND | MS_REC), None) == 0:
        libc.mount(b"none", d, b"none", ctypes.c_ulong(MS_SHARED | MS_REC), None)


def _create_native(path: str) -> None:
    """unshare(CLONE_NEWNET) in a throw-away thread and bind-mount its netns onto ``path``."""
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
    os.close(fd)
    result: list[BaseException] = []

    def worker() -> None:
        try:
            _libc_call(libc.unshare, CLONE_NEWNET, command="unshare(CLONE_NEWNET)")
            src = f"/proc/self/task/{threading.get_native_id()}/ns/net".encode()
            _libc_call(libc.mount, src, path.encode(), b"none", ctypes.c_ulong(MS_BIND), None,
                       command="mount --bind", obj=path)
        except BaseException as e:  # reported in the calling thread
            result.append(e)

    t = threading.Thread(target=worker, name="bpfkit-netns-create")
    t.start()
    t.join()
    if result:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise result[0]


def create(name: str) -> str:
    """Create the named netns ``/run/netns/NAME`` (as ``ip netns add`` would); return its path."""
    if "/" in name or not name:
        raise BpfkitError(f"invalid netns name {name!r}")
    path = _path_of(name)
    if os.path.exists(path):
        raise kernel_error("create netns", errno.EEXIST, obj=path)
    _make_run_dir_shared()
    try:
        _create_native(path)
    except KernelError as e:
        ip = shutil.which("ip")
        if ip is None or e.errno == errno.EEXIST:
            raise
        r = subprocess.run([ip, "netns", "add", name], capture_output=True, text=True)
        if r.returncode != 0:
            raise kernel_error("ip netns add", e.errno, obj=name,
                               detail=r.stderr.strip() or None) from e
    return path


def delete(name: str) -> None:
    """Unmount and remove a named netns (it dies once no process or fd holds it)."""
    path = _path_of(name)
    if libc.umount2(path.encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):
            raise kernel_error("umount", err, obj=path)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


class NetNS:
    """A named network namespace we own: ``with NetNS.create() as ns: with ns.enter(): ...``."""

    def __init__(self, name: str, *, owned: bool = False) -> None:
        self.name = name
        self.path = _path_of(name)
        self.owned = owned

    @classmethod
    def create(cls, name: str | None = None) -> NetNS:
        """Create a fresh namespace (a unique ``bpfkit-PID-N`` name when none is given)."""
        if name is None:
            name = f"bpfkit-{os.getpid()}-{next(_counter)}"
        create(name)
        return cls(name, owned=True)

    def enter(self) -> contextlib.AbstractContextManager[None]:
        return enter(self)

    def open(self) -> int:
        """A new fd on the namespace (the caller closes it)."""
        return open_netns(self)

    @property
    def inode(self) -> int:
        return netns_inode(self)

    @property
    def closed(self) -> bool:
        return not os.path.exists(self.path)

    def close(self) -> None:
        """Delete the namespace if we created it."""
        if self.owned:
            self.owned = False
            delete(self.name)

    def __enter__(self) -> NetNS:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __fspath__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return f"<NetNS {self.name!r}>"



