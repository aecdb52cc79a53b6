"""Ready tools: the classic eBPF examples as ``bpfkit <tool>`` commands.

Each tool is a BPF C source in ``bpf/`` (built into the committed ``.bpf.o`` by
``tools/build_objects.py``, so an installed bpfkit needs no compiler) plus a module
here defining a :class:`bpfkit.tools.base.Tool` subclass registered in ``TOOLS``.
"""

from __future__ import annotations

import importlib
from typing import Any

# tool name -> (module in this package defining ``TOOL``, one-line help).  Kept static so
# ``bpfkit --help`` lists the tools without importing them.
TOOL_MODULES: dict[str, tuple[str, str]] = {
    "execsnoop": ("execsnoop", "trace exec() calls: pid, ppid, uid, return code, argv"),
    "opensnoop": ("opensnoop", "trace open() calls: process, flags, file, errors"),
    "writesize": ("writesize", "log2 histogram of write() sizes per pid, uid and comm"),
    "netrx": ("netrx", "packets received per device: name, count, bytes"),
    "syscount": ("syscount", "count syscalls per syscall or process: errors, latency"),
    "mkdirsnoop": ("mkdirsnoop", "trace directory creation with the return value"),
    "tcpconnect": ("tcpconnect", "trace new TCP connections: src:port -> dst:port"),
    "bashreadline": ("bashreadline", "print commands typed in bash (uretprobe on readline)"),
    "sockfilter": ("sockfilter", "count packets per protocol seen by a socket filter"),
    "tcpstates": ("tcpstates", "TCP socket operations per connection in a cgroup (sockops)"),
    "pktcount": ("pktcount", "packets and bytes per direction and protocol on an interface"),
    "profile": ("profile", "on-CPU sampling profiler with stacks, folded output, flame graph"),
    "progtrace": ("progtrace", "how often and how long other BPF programs run"),
    "hookcost": ("hookcost", "what each kind of hook costs per event on this kernel"),
    "killsnoop": ("killsnoop", "trace signals sent with kill(): sender, signal, target, result"),
    "statsnoop": ("statsnoop", "trace stat() calls: process, path, result"),
    "syncsnoop": ("syncsnoop", "trace sync(), fsync() and other flushes to storage"),
    "capable": ("capable", "trace security capability checks: capability, process, verdict"),
    "runqlat": ("runqlat", "run queue (scheduler) latency as a histogram"),
    "cpudist": ("cpudist", "on-CPU (or off-CPU) time per scheduling as a histogram"),
    "offcputime": ("offcputime", "summarize off-CPU time by kernel and user stack"),
    "biolatency": ("biolatency", "block device I/O latency as a histogram"),
    "biosnoop": ("biosnoop", "trace block device I/O: process, disk, sector, size, latency"),
    "bitesize": ("bitesize", "block I/O sizes as a histogram per process name"),
    "softirqs": ("softirqs", "time spent in soft interrupts, per vector"),
    "hardirqs": ("hardirqs", "time spent in hard interrupt handlers, per handler"),
    "gethostlatency": ("gethostlatency", "latency of host name lookups (getaddrinfo...) in libc"),
    "tcplife": ("tcplife", "trace TCP sessions as they close: bytes, duration"),
    "tcpretrans": ("tcpretrans", "trace TCP retransmissions: connection and state"),
    "mountsnoop": ("mountsnoop", "trace mount() and umount() calls with their arguments"),
    "oomkill": ("oomkill", "trace out-of-memory kills: trigger, victim, pages"),
    "sslsniff": ("sslsniff", "capture the plaintext of OpenSSL reads and writes (TLS without a CA)"),
    "funccount": ("funccount", "count calls of user functions matching a pattern (uprobes)"),
    "exitsnoop": ("exitsnoop", "trace process exits: age, exit code or terminating signal"),
}


def load_tool(name: str) -> Any:
    """The Tool instance for ``name`` (imported lazily: start-up stays fast)."""
    mod = importlib.import_module(f"{__name__}.{TOOL_MODULES[name][0]}")
    return mod.TOOL


def all_tools() -> list[Any]:
    return [load_tool(n) for n in TOOL_MODULES]
