"""sslsniff: the plaintext of TLS traffic through OpenSSL, from uprobes on SSL_write (the
buffer at entry) and SSL_read (the buffer when it returns): no key and no CA needed.

SSL_write_ex/SSL_read_ex (OpenSSL 1.1.1+, what Python's ssl module calls) are probed too.
Output as BCC's: a ``FUNC TIME(s) COMM PID LEN`` line, then the data between
``----- DATA -----`` and ``----- END DATA -----`` (``--hexdump`` for binary data).
"""

from __future__ import annotations

import argparse
from typing import Any

from ..manager import Probe
from .base import TRACE_OPTIONS, Tool, plain

FUNCS = {0: "READ/RECV", 1: "WRITE/SEND"}


def _hexdump(data: bytes) -> str:
    lines = []
    for off in range(0, len(data), 16):
        chunk = data[off:off + 16]
        text = "".join(chr(c) if 32 <= c < 127 else "." for c in chunk)
        lines.append(f"{off:08x}  {chunk.hex(' '):<47}  |{text}|")
    return "\n".join(lines)


class SslSniff(Tool):
    name = "sslsniff"
    help = "capture the plaintext of OpenSSL reads and writes (TLS without a CA)"
    bcc = "sslsniff"
    events_map = "events"
    record = "event"
    options = TRACE_OPTIONS
    filters = {"pid": "targ_pid", "tid": "targ_tid", "uid": "targ_uid", "cgroup": "targ_cgid",
               "name": "targ_comm"}
    differs = ("OpenSSL only (--libssl picks the library; GnuTLS/NSS are not probed); -c PATH "
               "is a cgroup v2 path and -n the process name (BCC: -c comm); at most 8 KiB of "
               "each call is copied (LEN is the call's full length).")

    def add_args(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--libssl", default="libssl.so.3",
                       help="the OpenSSL library to probe (default libssl.so.3)")
        p.add_argument("--hexdump", action="store_true", help="show the data as a hex dump")
        p.add_argument("--no-data", action="store_true", help="only the call lines")

    def probes(self, args: argparse.Namespace) -> list[Probe]:
        kw: dict[str, Any] = {"binary": args.libssl}
        if args.pid:
            kw["pid"] = args.pid
        return [Probe("uprobe_write", uid="SSL_write", symbol="SSL_write", **kw),
                Probe("uprobe_read", uid="SSL_read", symbol="SSL_read", **kw),
                Probe("uretprobe_read", uid="SSL_read:ret", symbol="SSL_read", **kw),
                # OpenSSL 1.1.1+ (what Python's ssl module calls); absent from older ones
                Probe("uprobe_write_ex", uid="SSL_write_ex", symbol="SSL_write_ex",
                      optional=True, **kw),
                Probe("uprobe_read_ex", uid="SSL_read_ex", symbol="SSL_read_ex",
                      optional=True, **kw),
                Probe("uretprobe_read", uid="SSL_read_ex:ret", symbol="SSL_read_ex",
                      optional=True, **kw)]

    def header(self, args: argparse.Namespace) -> str:
        return f"{'FUNC':<12} {'TIME(s)':<18} {'COMM':<16} {'PID':<7} {'LEN':<6}"

    def data(self, rec: Any) -> bytes:
        return bytes(rec.buf)[:rec.buf_len]

    def format(self, rec: Any, args: argparse.Namespace) -> str:
        t = self.record_time(rec) - self._t0
        line = (f"{FUNCS.get(rec.rw, '?'):<12} {t:<18.9f} {plain(rec.comm):<16} "
                f"{rec.pid:<7} {rec.len:<6}")
        if args.no_data:
            return line
        d = self.data(rec)
        body = _hexdump(d) if args.hexdump else d.decode(errors="replace")
        cut = f" (first {rec.buf_len} of {rec.len} bytes)" if rec.buf_len < rec.len else ""
        return f"{line}\n----- DATA{cut} -----\n{body}\n----- END DATA -----"

    def to_json(self, rec: Any, args: argparse.Namespace) -> Any:
        d = self.data(rec)
        return {"func": "SSL_write" if rec.rw else "SSL_read", "pid": rec.pid, "tid": rec.tid,
                "uid": rec.uid, "comm": plain(rec.comm), "len": rec.len,
                "data": d.decode(errors="replace"), "data_hex": d.hex(),
                "truncated": rec.buf_len < rec.len}


TOOL = SslSniff()
