"""Numbers and keys a user types: one sentence and exit 2, never a traceback or a bad filter."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bpfkit import Map, MapType

BPFKIT = shutil.which("bpfkit", path=str(Path(sys.executable).parent)) or "bpfkit"


def bpfkit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BPFKIT, *args], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("args,needle", [
    (["syscount", "-i", "-1"], "is not a positive number"),
    (["syscount", "-d", "-1"], "is not a number >= 0"),
    (["writesize", "-1"], "is not a positive number"),
    (["syscount", "--top", "-3"], "is not a positive integer"),
    (["profile", "--top", "0"], "is not a positive integer"),
    (["tcpstates", "-P", "99999"], "is not a port number"),
    (["tcpconnect", "-P", "-5"], "is not a port number"),
    (["hookcost", "-n", "-1"], "is not a positive integer"),
    (["hookcost", "--cpu", "-2"], "is not an integer from 0"),
    (["progtrace", "-i", "-1"], "is not a positive integer below 2^32"),
    (["opensnoop", "-p", "99999999999"], "is not a positive integer below 2^32"),
    (["execsnoop", "--duration", "nan"], "is not a number >= 0"),
    (["killsnoop", "-s", "999"], "out of range"),
    (["top", "-i", "-1", "--once"], "is not a positive number of seconds"),
    (["map", "lookup", "99999999999", "1"], "map id 99999999999 is out of range"),
    (["prog", "show", "0"], "program id 0 is out of range"),
])
def test_bad_numbers_exit_2_in_one_sentence(args: list[str], needle: str) -> None:
    p = bpfkit(*args)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert needle in p.stderr and "Traceback" not in p.stderr


@pytest.mark.requires_root
@pytest.mark.parametrize("key,needle", [
    ("0x1ffffffff", "does not fit in the map's 4-byte key"),
    ("-2147483649", "does not fit in the map's 4-byte key"),
    ("1 2 3", "3 bytes given, the map's key is 4 bytes"),
    ("1 2 3 300", "each byte must be 0 to 255"),
    ("hex:0102", "2 bytes given"),
    ("hex:zz", "not hex bytes"),
    ("twelve", "want an integer"),
])
def test_map_keys_that_do_not_fit_the_key_type(key: str, needle: str) -> None:
    with Map.create(MapType.HASH, key_size=4, value_size=8, max_entries=4) as m:
        mid = str(m.info().id)
        m[(7).to_bytes(4, "little")] = bytes(8)
        for cmd in (["map", "lookup", mid, key], ["map", "delete", mid, key],
                    ["map", "update", mid, key, "1"]):
            p = bpfkit(*cmd)
            assert p.returncode == 2, (cmd, p.stderr)
            assert needle in p.stderr and "Traceback" not in p.stderr
            assert len(p.stderr.strip().splitlines()) == 1
        p = bpfkit("map", "update", mid, "7", "0x1" + "0" * 16)
        assert p.returncode == 2 and "does not fit in the map's 8-byte value" in p.stderr
        p = bpfkit("map", "update", mid, "7", "-1")  # a negative value that fits: all ones
        assert p.returncode == 0, p.stderr
        assert m[(7).to_bytes(4, "little")] == b"\xff" * 8
