"""Compile BPF C sources with clang, the way libbpf users do.

Why here: tools, tests and ``bpfkit build``/``bpfkit run`` all need the same flags
(target, -g -O2, the arch define for ``bpf_tracing.h``) and a ``vmlinux.h`` generated
from the running kernel's BTF and cached, so that a user only writes the C file.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from .errors import BpfkitError

__all__ = ["BuildError", "find_clang", "compile_bpf", "vmlinux_header", "target_arch", "cache_dir"]

_ARCH = {"x86_64": "x86", "aarch64": "arm64", "arm64": "arm64", "s390x": "s390",
         "ppc64le": "powerpc", "riscv64": "riscv", "loongarch64": "loongarch", "armv7l": "arm"}
_MULTIARCH = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu",
              "s390x": "s390x-linux-gnu", "ppc64le": "powerpc64le-linux-gnu",
              "riscv64": "riscv64-linux-gnu"}


class BuildError(BpfkitError):
    """The compiler failed; ``output`` holds its messages as it printed them."""

    def __init__(self, message: str, output: str = "") -> None:
        self.output = output
        super().__init__(message + (f"\n{output.rstrip()}" if output else ""))


#: bpfkit's overlay headers (bpf/bpf_helpers.h, bpf_tracing.h, bpf_core_read.h): each
#: includes the system libbpf header it shadows, then adds what newer libbpf releases define.
INCLUDE_DIR = Path(__file__).resolve().parent / "include"


def target_arch() -> str:
    """The ``__TARGET_ARCH_*`` name bpf_tracing.h expects for this machine."""
    return _ARCH.get(platform.machine(), platform.machine())


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    d = Path(base) / "bpfkit"
    d.mkdir(parents=True, exist_ok=True)
    return d


def find_clang() -> str:
    """clang-19 (Debian's), else any clang on PATH."""
    env = os.environ.get("BPFKIT_CLANG")
    if env:
        return env
    for name in ("clang-19", "clang-20", "clang-18", "clang"):
        p = shutil.which(name)
        if p:
            return p
    raise BuildError(
        "no clang found: compiling BPF C (`bpfkit build`, `bpfkit run FILE.c`) needs clang "
        "and libbpf's headers. Install them with your distribution's packages (Debian/Ubuntu: "
        "apt-get install clang libbpf-dev; Fedora: dnf install clang libbpf-devel; Alpine: "
        "apk add clang libbpf-dev), or point BPFKIT_CLANG at a clang. Prebuilt objects "
        "(`bpfkit run FILE.o`), the tools and `bpfkit export`'s built-in configs need no "
        "compiler.")


def vmlinux_header(btf_path: str = "/sys/kernel/btf/vmlinux") -> Path:
    """A vmlinux.h for the running kernel, generated from its BTF once and cached."""
    st = os.stat(btf_path)
    key = hashlib.sha256(f"{btf_path}:{st.st_size}:{os.uname().release}:{os.uname().version}"
                         .encode()).hexdigest()[:16]
    d = cache_dir() / f"vmlinux-{key}"
    header = d / "vmlinux.h"
    if header.exists():
        return d
    d.mkdir(parents=True, exist_ok=True)
    from .btf import Spec
    from .btf.cdump import dump_c
    text = dump_c(Spec.load_file(btf_path) if btf_path != "/sys/kernel/btf/vmlinux"
                  else Spec.kernel())
    tmp = header.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(header)
    return d


def compile_bpf(src: str | os.PathLike[str], out: str | os.PathLike[str] | None = None, *,
                include_dirs: Sequence[str | os.PathLike[str]] = (),
                defines: Sequence[str] = (), vmlinux: bool | None = None,
                extra_flags: Sequence[str] = (), bigendian: bool = False) -> Path:
    """Compile ``src`` to a BPF object (clang -target bpf -g -O2); return its path.

    ``vmlinux``: add the directory of a generated vmlinux.h to the include path (default:
    when the source includes "vmlinux.h").  Compiler errors raise BuildError with the
    compiler's output as it printed it.
    """
    srcp = Path(src)
    if not srcp.exists():
        raise BuildError(f"no such source file: {srcp}")
    outp = Path(out) if out else srcp.with_name(srcp.name.removesuffix(".c") + ".o")
    if vmlinux is None:
        vmlinux = "vmlinux.h" in srcp.read_text(errors="replace")
    cmd = [find_clang(), "-target", "bpfeb" if bigendian else "bpf", "-g", "-O2",
           f"-D__TARGET_ARCH_{target_arch()}", "-Wall", "-Wno-unused-function",
           "-Wno-compare-distinct-pointer-types", f"-I{INCLUDE_DIR}"]
    multi = _MULTIARCH.get(platform.machine())
    if multi and os.path.isdir(f"/usr/include/{multi}"):
        cmd.append(f"-I/usr/include/{multi}")
    cmd.append(f"-I{srcp.parent}")
    for inc in include_dirs:
        cmd.append(f"-I{inc}")
    if vmlinux:
        cmd.append(f"-I{vmlinux_header()}")
    for d in defines:
        cmd.append(f"-D{d}")
    cmd += list(extra_flags)
    cmd += ["-c", str(srcp), "-o", str(outp)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"clang failed to compile {srcp}", proc.stderr)
    return outp
