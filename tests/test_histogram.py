"""Histogram text and data, from lists and from real maps (per-CPU values summed)."""

from __future__ import annotations

import ctypes
import io

import pytest

from bpfkit import Map, MapType
from bpfkit.errors import BpfkitError
from bpfkit.histogram import (
    Bucket,
    Histogram,
    format_linear_hist,
    format_log2_hist,
    histograms_from_map,
    linear_buckets,
    log2_buckets,
    log2_slot,
    print_linear_hist,
    print_log2_hist,
)

BCC_LOG2 = """\
     usecs               : count     distribution
         0 -> 1          : 0        |                                        |
         2 -> 3          : 1        |**                                      |
         4 -> 7          : 5        |**********                              |
         8 -> 15         : 20       |****************************************|
        16 -> 31         : 3        |******                                  |"""


def test_log2_text_like_bcc() -> None:
    assert format_log2_hist([0, 1, 5, 20, 3, 0, 0], "usecs") == BCC_LOG2
    # BCC's own bpf_log2l numbering is one higher, with an unprinted value-0 slot
    assert format_log2_hist([0, 0, 1, 5, 20, 3], "usecs", style="bcc") == BCC_LOG2
    assert format_log2_hist([], "usecs") == ""
    assert format_log2_hist([0, 0], "usecs") == ""


def test_log2_wide_values_use_wide_columns() -> None:
    c = [0] * 40
    c[35] = 2
    text = format_log2_hist(c, "ns")
    assert text.splitlines()[0].startswith("               ns")
    assert "34359738368 -> 68719476735" in text
    assert "|" + "*" * 20 + "|" in text


def test_bpftrace_style() -> None:
    text = format_log2_hist({1: 1, 3: 4}, output="bpftrace")
    lines = text.splitlines()
    assert lines[0].startswith("[0, 2)") and lines[0].endswith("|" + " " * 52 + "|")
    assert lines[3].startswith("[8, 16)") and "@" * 52 in lines[3]
    big = format_log2_hist({10: 1, 20: 2}, output="bpftrace")
    assert "[1K, 2K)" in big and "[1M, 2M)" in big
    lin = format_linear_hist([3, 0, 7], "ms", step=5, output="bpftrace")
    assert lin.splitlines()[2].startswith("[10, 15)")


def test_linear_text_and_data() -> None:
    text = format_linear_hist([3, 0, 7], "ms", step=5)
    assert text.splitlines() == [
        "     ms            : count     distribution",
        "        0          : 3        |*****************                       |",
        "        5          : 0        |                                        |",
        "        10         : 7        |****************************************|",
    ]
    assert linear_buckets([1, 2], step=10, start=100) == [Bucket(100, 109, 1),
                                                          Bucket(110, 119, 2)]
    with pytest.raises(BpfkitError):
        linear_buckets([1], step=0)


def test_buckets_percentiles_and_slots() -> None:
    b = log2_buckets([1, 2, 3, 0, 0])
    assert b == [Bucket(0, 1, 1), Bucket(2, 3, 2), Bucket(4, 7, 3)]
    h = Histogram("log2", b, val_type="usecs")
    assert h.total == 6 and h.percentile(50) == 3 and h.percentile(51) == 7 and h.percentile(10) == 1
    assert h.to_dict()["buckets"][1] == {"low": 2, "high": 3, "count": 2}
    assert [log2_slot(v) for v in (0, 1, 2, 3, 4, 1023, 1024)] == [0, 0, 1, 1, 2, 9, 10]
    with pytest.raises(BpfkitError):
        log2_buckets({-1: 3})
    with pytest.raises(BpfkitError):
        log2_buckets([1], style="nope")


@pytest.mark.requires_root
def test_from_array_and_percpu_maps() -> None:
    with Map.create(MapType.ARRAY, 4, 8, 8) as m:
        for slot, n in ((1, 4), (2, 8), (3, 2)):
            m[slot] = n.to_bytes(8, "little")
        [h] = histograms_from_map(m, "log2", val_type="usecs")
        assert [x.count for x in h.buckets] == [0, 4, 8, 2]
        out = io.StringIO()
        text = print_log2_hist(m, "usecs", file=out)
        assert out.getvalue() == text + "\n" and "4 -> 7" in text
    with Map.create(MapType.PERCPU_ARRAY, 4, 8, 4, value=ctypes.c_uint64) as pm:
        pm[2] = [5] * pm.ncpus
        [h] = histograms_from_map(pm, "linear", step=10)
        assert h.buckets[-1] == Bucket(20, 29, 5 * pm.ncpus)
        assert "20" in print_linear_hist(pm, "ms", step=10, file=False)


class SecKey(ctypes.Structure):
    _fields_ = [("disk", ctypes.c_char * 8), ("slot", ctypes.c_uint32)]


@pytest.mark.requires_root
def test_sections_from_hash_map_keys() -> None:
    with Map.create(MapType.HASH, ctypes.sizeof(SecKey), 8, 64, key=SecKey,
                    value=ctypes.c_uint64) as m:
        m[SecKey(b"sda", 2)] = 3
        m[SecKey(b"sda", 4)] = 1
        m[SecKey(b"vdb", 0)] = 9
        hs = histograms_from_map(m)
        assert [h.section for h in hs] == ["sda", "vdb"]
        assert [b.count for b in hs[0].buckets] == [0, 0, 3, 0, 1]
        text = print_log2_hist(m, "usecs", "disk", file=False)
        assert "\ndisk = sda\n" in text and "\ndisk = vdb\n" in text
    # tuple keys and a custom splitter work without a map
    hs = histograms_from_map({("a", 0): 1, ("b", 1): 2})
    assert [h.section for h in hs] == ["a", "b"]
    hs = histograms_from_map({7: 1}, split_key=lambda k: ("x", k - 7))
    assert hs[0].section == "x" and hs[0].buckets == [Bucket(0, 1, 1)]
