#!/usr/bin/env python3
"""Fill a 1M-entry hash map, then dump it with batch operations and with per-key lookups.

Prints entries/s for both and their ratio (batch / per-key). Run as root:
    .venv/bin/python bench/maps.py [N]
"""

from __future__ import annotations

import ctypes
import sys
import time

from _summary import record

from bpfkit import Map, MapType


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    # typed like a BTF-defined map (u32 -> u64): the batch dump returns decoded ints
    with Map.create(MapType.HASH, 4, 8, n, name="bench", key=ctypes.c_uint32,
                    value=ctypes.c_uint64) as m:
        t0 = time.perf_counter()
        chunk = 65536
        for start in range(0, n, chunk):
            m.update_batch((i, i * 7) for i in range(start, min(n, start + chunk)))
        fill = time.perf_counter() - t0

        t0 = time.perf_counter()
        batch = m.items_batch(chunk=65536)
        t_batch = time.perf_counter() - t0
        assert len(batch) == n, len(batch)
        k0, v0 = batch[0]
        assert isinstance(k0, int) and v0 == k0 * 7, batch[0]

        t0 = time.perf_counter()
        count = 0
        for k in m._raw_keys():
            if m._lookup_raw(k) is not None:
                count += 1
        t_single = time.perf_counter() - t0
        assert count == n, count

    print(f"fill (update_batch):      {n / fill:12,.0f} entries/s")
    print(f"dump, batch lookup:       {n / t_batch:12,.0f} entries/s  ({t_batch:.2f} s)")
    print(f"dump, get_next_key+lookup:{n / t_single:12,.0f} entries/s  ({t_single:.2f} s)")
    print(f"ratio batch / per-key:    {t_single / t_batch:12.1f}x")
    record("1M-entry map dump, batch vs per-key", n / t_batch, "entries/s",
           peer="per-key lookups", peer_value=n / t_single, ratio=t_single / t_batch,
           target=">= 10x", ok=t_single / t_batch >= 10)
    record("1M-entry map dump, decoded entries/s", n / t_batch, "entries/s",
           target=">= 3 M/s", ok=n / t_batch >= 3e6)


if __name__ == "__main__":
    main()
