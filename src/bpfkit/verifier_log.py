"""Reading the verifier's log, pure text in and facts out (one parser for every caller):
the one-line cause, the source line it points at, the failing instruction, the poisoned
call a CO-RE or kfunc relocation left, and the kfunc the kernel refused.

It sits with :mod:`bpfkit.errors` at the bottom layer because ``VerifierError`` builds its
message from it.
"""

from __future__ import annotations

import re

__all__ = ["summarize", "source_line", "failing_insn", "poisoned_call_slot", "unknown_call_id",
           "refused_kfunc"]

_STATS = ("processed ", "verification time", "stack depth", "max_states_per_insn",
          "peak_states", "mark_read", "; ")
_INSN_LINE = re.compile(r"^(\d+): \([0-9a-f]{2}\)")
_UNKNOWN_CALL = re.compile(r"unknown#(\d+)")
_KFUNC_REFUSED = re.compile(r"calling kernel function (\S+) is not allowed")


def summarize(log: str) -> str:
    """The log's most meaningful line: the last one that is not statistics."""
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.startswith(_STATS) or ln.startswith("-- BEGIN") or ln.startswith("-- END"):
            continue
        return ln
    return ""


def source_line(log: str) -> str | None:
    """The last source annotation (``; code @ file:line``) the verifier printed."""
    src = None
    for ln in log.splitlines():
        s = ln.strip()
        if s.startswith("; ") and "@ " in s:
            src = s[2:]
    return src


def failing_insn(log: str) -> int | None:
    """Index of the last instruction the verifier printed before giving up."""
    last = None
    for ln in log.splitlines():
        mt = _INSN_LINE.match(ln.strip())
        if mt:
            last = int(mt.group(1))
    return last


def poisoned_call_slot(log: str, poison_id: int) -> int | None:
    """The slot of the last ``call`` of helper ``poison_id`` (a relocation's poison marker)
    the log shows, if it complains about one."""
    if f"#{poison_id}" not in log:
        return None
    hits = re.findall(rf"^(\d+): \(85\) call [^\n]*#{poison_id}\s*$", log, re.M)
    return int(hits[-1]) if hits else None


def unknown_call_id(log: str) -> int | None:
    """The id of an ``unknown#N`` call the verifier refused (a poisoned kfunc call)."""
    m = _UNKNOWN_CALL.search(log)
    return int(m.group(1)) if m else None


def refused_kfunc(log: str) -> str | None:
    """The kernel function the verifier says this program type may not call."""
    m = _KFUNC_REFUSED.search(log)
    return m.group(1) if m else None
