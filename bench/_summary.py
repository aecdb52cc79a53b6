"""Shared by the bench scripts: append one result row for ``bench/all.py``'s table.

Why: each script stays runnable alone (it prints its own detail), while ``make bench``
collects the headline figure of each, with the peer measured in the same run and the
target, into one table. Rows go to the JSON-lines file named by BPFKIT_BENCH_SUMMARY.
"""

from __future__ import annotations

import json
import os


def record(figure: str, ours: float, unit: str, *, peer: str = "", peer_value: float | None = None,
           ratio: float | None = None, target: str = "", ok: bool | None = None) -> None:
    """One row: ``ours`` in ``unit``; ``ratio`` = ours/peer as the target states it."""
    path = os.environ.get("BPFKIT_BENCH_SUMMARY")
    if not path:
        return
    row = {"figure": figure, "ours": ours, "unit": unit, "peer": peer,
           "peer_value": peer_value, "ratio": ratio, "target": target, "ok": ok}
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")
