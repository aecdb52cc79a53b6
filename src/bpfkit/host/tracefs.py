"""tracefs: where it is (mounting it if needed), tracepoint ids, the kprobe/uprobe PMUs and
legacy probe events (``kprobe_events``/``uprobe_events``), which are recorded so that
``bpfkit cleanup`` can remove those a killed process left."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import re
from typing import Any

from .. import cleanup
from ..errors import AttachError, NotFound, PermissionDenied, kernel_error
from .mounts import _mount, find_mount

_tracefs_cache: str | None = None


def tracefs_path(*, mount: bool = True) -> str:
    """Where tracefs is: /proc/mounts, else the usual paths, mounting it if we can."""
    global _tracefs_cache
    if _tracefs_cache and os.path.exists(os.path.join(_tracefs_cache, "events")):
        return _tracefs_cache
    cands: list[str] = []
    m = find_mount("tracefs")
    if m:
        cands.append(m)
    dbg = find_mount("debugfs")
    if dbg:
        cands.append(os.path.join(dbg, "tracing"))
    cands += ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
    denied: list[str] = []
    for c in cands:
        try:
            os.stat(os.path.join(c, "events"))
        except PermissionError:
            denied.append(c)
            continue
        except OSError:
            continue
        _tracefs_cache = c
        return c
    if denied or (m and not os.access(m, os.R_OK | os.X_OK)):
        where = denied[0] if denied else (m or "")
        try:
            st = os.stat(where)
            how = f"mode {st.st_mode & 0o7777:04o}, owner uid {st.st_uid} gid {st.st_gid}"
        except OSError:
            how = "not readable"
        raise PermissionDenied(
            "tracefs access", errno.EACCES, obj=f"tracefs at {where}",
            detail=f"tracefs is mounted but this process cannot read it ({how})",
            hint="run as root, or let this user read tracefs (e.g. 'mount -o remount,mode=755 "
                 f"{where}', or a group with access); CAP_BPF and CAP_PERFMON do not grant "
                 "file access")
    if mount and os.geteuid() == 0 and os.path.isdir("/sys/kernel/tracing"):
        if _mount("tracefs", "/sys/kernel/tracing", "tracefs") and \
                os.path.exists("/sys/kernel/tracing/events"):
            _tracefs_cache = "/sys/kernel/tracing"
            return _tracefs_cache
    raise AttachError("tracefs is not mounted and could not be mounted: run "
                      "'mount -t tracefs tracefs /sys/kernel/tracing' as root")


def tracefs_file(*parts: str) -> str:
    return os.path.join(tracefs_path(), *parts)


def tracepoint_id(category: str, name: str) -> int:
    """The perf config of a tracepoint: tracefs events/<category>/<name>/id."""
    if not category or not name or "/" in category or "/" in name or ".." in (category, name):
        raise AttachError(f"invalid tracepoint {category!r}/{name!r}")
    path = tracefs_file("events", category, name, "id")
    try:
        with open(path) as f:
            return int(f.read().strip())
    except FileNotFoundError:
        raise NotFound("tracepoint lookup", errno.ENOENT, obj=f"tracepoint {category}/{name}",
                       hint=f"no such tracepoint (see {tracefs_file('available_events')})")
    except (OSError, ValueError) as e:
        raise AttachError(f"cannot read {path}: {e}") from None


_PMU_DIR = "/sys/bus/event_source/devices"


@functools.cache
def pmu_type(name: str) -> int | None:
    """The dynamic PMU type number of ``kprobe``/``uprobe`` (None if the PMU is absent)."""
    try:
        with open(os.path.join(_PMU_DIR, name, "type")) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


@functools.cache
def pmu_retprobe_bit(name: str) -> int | None:
    """Bit of ``config`` that asks for a return probe (format/retprobe says ``config:N``)."""
    try:
        with open(os.path.join(_PMU_DIR, name, "format", "retprobe")) as f:
            text = f.read().strip()
    except OSError:
        return None
    return _parse_format_bit(text)


def _parse_format_bit(text: str) -> int | None:
    if not text.startswith("config:"):
        return None
    spec = text.split(":", 1)[1]
    try:
        return int(spec.split("-")[0])
    except ValueError:
        return None


_event_counter = 0


PROBE_EVENT_KIND = "tracefs_probe_event"


def _registry() -> Any:
    """The stale-attachment registry (:mod:`bpfkit.cleanup`)."""
    return cleanup


def _remove_event_line(events_file: str, group: str, name: str) -> bool:
    """Write ``-:group/name`` to kprobe_events/uprobe_events; True if it is gone."""
    path = tracefs_file(events_file)
    try:
        _write_line(path, f"-:{group}/{name}\n")
        return True
    except FileNotFoundError:
        return True
    except OSError as e:
        return e.errno == errno.ENOENT


def _write_line(path: str, line: str) -> None:
    """One write(2) with O_APPEND (Python's "a" mode seeks, which tracefs refuses)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _clean_stale_event(rec: Any) -> None:
    """Registry cleaner: remove the probe event of a bpfkit process that died (for an
    intent, the event may never have been made: then there is nothing to do)."""
    data = rec.data
    if not _remove_event_line(str(data["file"]), str(data["group"]), str(data["name"])):
        raise AttachError(f"cannot remove stale probe event {data['group']}/{data['name']}")


_EVENT_NAME = re.compile(r"bpfkit_(\d+)_(\d+)_[0-9a-f]+_\d+")


def _event_owner_dead(name: str) -> bool:
    """Whether an event named by :func:`add_probe_event` belongs to a process that is gone
    (its pid is free, or now names a process with another start time)."""
    m = _EVENT_NAME.fullmatch(name)
    if m is None:
        return False  # not a name we make: not ours to judge
    return cleanup._start_time(int(m.group(1))) != int(m.group(2))  # None: gone or a zombie


def reclaim_stale_events(events_file: str) -> list[str]:
    """Remove the probe events of dead bpfkit processes in ``events_file`` (kprobe_events or
    uprobe_events), whether or not a record of them survived; returns their names.  An
    event some live process still uses is busy and stays."""
    try:
        with open(tracefs_file(events_file)) as f:
            lines = f.read().splitlines()
    except (OSError, AttachError):
        return []
    gone = []
    for line in lines:
        head = line.split(None, 1)[0] if line.strip() else ""
        group, _, name = head.partition(":")[2].partition("/")
        if name and _event_owner_dead(name):
            try:
                _write_line(tracefs_file(events_file), f"-:{group}/{name}\n")
            except OSError:
                continue  # busy (a perf event of a live process) or already gone
            gone.append(f"{group}/{name}")
    return gone


def _register_cleaner() -> None:
    reg = _registry()
    if reg is not None:
        reg.register_cleaner(PROBE_EVENT_KIND, _clean_stale_event)


class ProbeEvent:
    """A kprobe/uprobe event created through tracefs; ``remove()`` deletes it."""

    def __init__(self, events_file: str, group: str, name: str, token: object) -> None:
        self.events_file = events_file
        self.group = group
        self.name = name
        self._token = token
        self.removed = False

    @property
    def tracepoint_id(self) -> int:
        return tracepoint_id(self.group, self.name)

    def remove(self) -> None:
        if self.removed:
            return
        self.removed = True
        _remove_event_line(self.events_file, self.group, self.name)
        reg = _registry()
        if reg is not None and self._token is not None:
            try:
                reg.forget(self._token)
            except OSError:
                pass


def add_probe_event(events_file: str, prefix: str, target: str, *, group: str) -> ProbeEvent:
    """Create ``<prefix>:<group>/bpfkit_<pid>_<n> <target>`` in kprobe_events/uprobe_events.

    ``prefix`` is ``p``, ``r`` or ``r<maxactive>``.  The event is recorded in the
    stale-attachment registry so a crashed process's events can be removed later.
    """
    global _event_counter
    path = tracefs_file(events_file)
    if not os.path.exists(path):
        raise NotFound("tracefs probe event", errno.ENOENT, obj=events_file,
                       hint=f"{path} does not exist: this kernel lacks the probe type")
    if events_file not in _reclaimed:
        _reclaimed.add(events_file)
        reclaim_stale_events(events_file)
    _event_counter += 1
    # pid + start time + a per-process random part: no two processes (nor a process and
    # a dead one whose pid it reused) ever make the same name, so no EEXIST
    name = f"bpfkit_{os.getpid()}_{_my_start()}_{_RANDOM}_{_event_counter}"
    line = f"{prefix}:{group}/{name} {target}\n"
    token = None
    reg = _registry()
    if reg is not None:
        try:  # intent first: a kill right after the write still leaves a record
            token = reg.record(PROBE_EVENT_KIND, {"file": events_file, "group": group,
                                                  "name": name}, module=__name__,
                               state="intent")
        except OSError:
            token = None
    try:
        _write_line(path, line)
    except OSError as e:
        if token is not None:
            reg.forget(token)
        detail = _last_error_log()
        raise kernel_error(f"write {events_file}", e.errno or errno.EINVAL,
                           obj=line.strip(), detail=detail or None,
                           hint="the kernel rejected the probe definition (bad symbol, "
                                "offset or path?)") from None
    if token is not None:
        with contextlib.suppress(OSError):
            reg.confirm(token)
    return ProbeEvent(events_file, group, name, token)


_reclaimed: set[str] = set()
_RANDOM = os.urandom(3).hex()


def _my_start() -> int:
    return cleanup.process_start_time() or 0


def _reset_after_fork() -> None:
    global _RANDOM
    _RANDOM = os.urandom(3).hex()
    _reclaimed.clear()


os.register_at_fork(after_in_child=_reset_after_fork)


def _last_error_log() -> str:
    try:
        with open(tracefs_file("error_log")) as f:
            lines = [ln.strip() for ln in f.read().splitlines() if ln.strip()]
        return lines[-2] if len(lines) >= 2 else (lines[-1] if lines else "")
    except (OSError, AttachError):
        return ""


_register_cleaner()
