"""Reading the histogram maps of the scheduler, block and irq tools: one log2 histogram
per section of a ``struct hist_key {u32 id; u32 slot;}`` map (``bk_events.h``), drained
each interval the way BCC clears its tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..histogram import Histogram, counts_from_items, log2_buckets
from ..manager import Manager


def _split_id_slot(k: Any) -> tuple[Any, int]:
    return int(k.id), int(k.slot)


def drain_log2(m: Manager, map_name: str, unit: str, *, clear: bool = True,
               split: Callable[[Any], tuple[Any, int]] | None = None) -> list[Histogram]:
    """The map's histograms (sections sorted), emptied unless ``clear`` is false."""
    hmap = m.map(map_name)
    items = list(hmap.items())
    if clear:
        hmap.clear()
    groups = counts_from_items(items, split or _split_id_slot)
    return [Histogram("log2", log2_buckets(groups[s]), section=s, val_type=unit)
            for s in sorted(groups, key=lambda s: (str(type(s)), s))]
