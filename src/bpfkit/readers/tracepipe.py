"""Reading ``bpf_trace_printk`` output from tracefs ``trace_pipe``.

trace_pipe is one system-wide, consuming stream: every reader steals lines from the
others and every process's printk output is mixed in.  So lines are parsed into
:class:`TraceLine` and filtered (pid, task name, message text) here, and reads never
block longer than the timeout asked for.
"""

from __future__ import annotations

import os
import re
import select
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..errors import BpfkitError, ParseError

__all__ = ["TraceLine", "TracePipe", "parse_line", "tracefs_dir", "trace_print"]

# "  python3-1234    [001] d..31  4567.123456: bpf_trace_printk: message"
# also "<...>-1234 (  1234) [001] ..." with the tgid option, and 4 or 5 flag columns.
_LINE = re.compile(
    r"^\s*(?P<task>.*?)-(?P<pid>\d{1,10})\s+(?:\(\s*(?P<tgid>-+|\d{1,10})\)\s+)?"
    r"\[(?P<cpu>\d{1,10})\]\s+(?:(?P<flags>[^\s\[\]]{4,6})\s+)?(?P<ts>\d{1,20}\.\d{1,20}):\s+"
    r"(?P<event>[^:\s]+):\s?(?P<msg>.*)$")
_LOST = re.compile(r"CPU:(\d+) \[LOST (\d+) EVENTS\]")


@dataclass(frozen=True)
class TraceLine:
    """One parsed trace_pipe line; ``timestamp`` in seconds (the trace clock)."""

    task: str
    pid: int
    cpu: int
    flags: str
    timestamp: float
    message: str
    event: str = "bpf_trace_printk"
    tgid: int | None = None
    raw: str = ""


def parse_line(line: str) -> TraceLine:
    """Parse one line; raises ParseError when it is not a trace event line."""
    text = line.rstrip("\n")
    m = _LINE.match(text)
    if m is None:
        raise ParseError(f"not a trace_pipe event line: {text[:120]!r}")
    tg = m.group("tgid")
    tgid = int(tg) if tg and tg.strip("-") else None
    return TraceLine(task=m.group("task"), pid=int(m.group("pid")), cpu=int(m.group("cpu")),
                     flags=m.group("flags") or "", timestamp=float(m.group("ts")),
                     message=m.group("msg"), event=m.group("event"), tgid=tgid, raw=text)


def tracefs_dir() -> str:
    """Where tracefs is mounted (mounted on /sys/kernel/tracing if needed and allowed)."""
    from ..host.tracefs import tracefs_path  # lazy: only when a pipe is opened
    return tracefs_path()


class TracePipe:
    """A non-blocking reader of trace_pipe with filters.

    ``pid`` keeps lines of that thread id, ``task`` lines of that command name,
    ``match`` lines whose message contains the text (or matches the compiled regex),
    ``event`` (default ``bpf_trace_printk``; None for all) lines of that event.
    Lines that do not parse are kept only when no filter is set (as raw lines with
    pid -1); ``lost`` counts the events the kernel reported dropped.
    """

    def __init__(self, *, pid: int | None = None, task: str | None = None,
                 match: str | re.Pattern[str] | None = None,
                 event: str | None = "bpf_trace_printk", path: str | None = None) -> None:
        self.path = path or os.path.join(tracefs_dir(), "trace_pipe")
        self.pid = pid
        self.task = task
        self.match = match
        self.event = event
        self.lost = 0
        self._buf = b""
        try:
            self._fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            raise BpfkitError(f"cannot open {self.path}: {e.strerror}") from None
        self._poll = select.poll()
        self._poll.register(self._fd, select.POLLIN)

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def __enter__(self) -> TracePipe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass

    def _keep(self, t: TraceLine) -> bool:
        if self.pid is not None and t.pid != self.pid:
            return False
        if self.task is not None and t.task != self.task:
            return False
        if self.event is not None and t.event != self.event:
            return False
        if self.match is not None:
            if isinstance(self.match, str):
                return self.match in t.message
            return self.match.search(t.message) is not None
        return True

    def _filtered(self) -> bool:
        return any(x is not None for x in (self.pid, self.task, self.match))

    def _read_chunk(self, timeout: float | None) -> list[str]:
        if self._fd < 0:
            raise ValueError("TracePipe is closed")
        ms = None if timeout is None else max(int(timeout * 1000), 0)
        if not self._poll.poll(ms):
            return []
        try:
            data = os.read(self._fd, 1 << 16)
        except BlockingIOError:
            return []
        self._buf += data
        *lines, self._buf = self._buf.split(b"\n")
        return [ln.decode(errors="replace") for ln in lines if ln]

    def _convert(self, line: str) -> TraceLine | None:
        try:
            t = parse_line(line)
        except ParseError:
            m = _LOST.search(line)
            if m:
                self.lost += int(m.group(2))
                return None
            if self._filtered():
                return None
            return TraceLine("", -1, -1, "", 0.0, line, event="", raw=line)
        return t if self._keep(t) else None

    def lines(self, timeout: float | None = 1.0) -> Iterator[TraceLine]:
        """Yield matching lines; stop after ``timeout`` seconds with no new data."""
        while True:
            chunk = self._read_chunk(timeout)
            if not chunk and not self._buf:
                return
            if not chunk:
                # Partial line and no more data within the timeout: give up on waiting.
                if not self._poll.poll(0):
                    return
                continue
            for ln in chunk:
                t = self._convert(ln)
                if t is not None:
                    yield t

    def __iter__(self) -> Iterator[TraceLine]:
        return self.lines(None)

    def read(self, timeout: float = 1.0, count: int | None = None,
             until: Callable[[TraceLine], bool] | None = None) -> list[TraceLine]:
        """Collect matching lines for up to ``timeout`` seconds (or ``count`` of them, or
        until ``until(line)`` is true)."""
        import time
        out: list[TraceLine] = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return out
            for ln in self._read_chunk(left):
                t = self._convert(ln)
                if t is None:
                    continue
                out.append(t)
                if (count is not None and len(out) >= count) or (until and until(t)):
                    return out


def trace_print(fmt: str = "{task}-{pid} [{cpu}] {timestamp:.6f}: {message}",
                timeout: float | None = None, **filters: object) -> None:
    """Print trace_pipe lines until Ctrl-C (or ``timeout`` idle seconds), like BCC's."""
    with TracePipe(**filters) as tp:  # type: ignore[arg-type]
        try:
            for t in tp.lines(timeout):
                print(fmt.format(**t.__dict__))
        except KeyboardInterrupt:
            pass
