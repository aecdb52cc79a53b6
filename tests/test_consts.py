"""``--const NAME=VALUE``: text parsed by the variable's BTF type, or refused in one sentence."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bpfkit import CollectionSpec
from bpfkit.errors import UsageError
from bpfkit.spec import ConstText

BPFKIT = shutil.which("bpfkit", path=str(Path(sys.executable).parent)) or "bpfkit"


@pytest.fixture
def spec(bpf_obj: Callable[[str], Path]) -> CollectionSpec:
    return CollectionSpec.from_file(bpf_obj("consts.bpf.c"))


GOOD = [
    ("targ_pid", "1234", 1234), ("targ_pid", "0x10", 16), ("targ_pid", "0o17", 15),
    ("targ_pid", "0b101", 5), ("targ_pid", "4294967295", 4294967295), ("targ_pid", " 7 ", 7),
    ("small", "-128", -128), ("small", "127", 127), ("port", "65535", 65535),
    ("big", "0xffffffffffffffff", 2**64 - 1), ("big", "1_000_000", 1000000),
    ("verbose", "true", True), ("verbose", "0", False), ("verbose", "on", True),
    ("letter", "x", ord("x")), ("letter", "65", 65),
    ("comm", "bash", "bash"), ("comm", "1234567", "1234567"),
    ("mode", "MODE_SLOW", 7), ("mode", "3", 3),
]


@pytest.mark.parametrize("name,text,want", GOOD)
def test_const_text_parsed_by_btf_type(spec: CollectionSpec, name: str, text: str,
                                       want: object) -> None:
    spec.set_constants({name: ConstText(text)})
    got = spec.variables[name].value
    if name == "letter":
        assert int.from_bytes(spec.variables[name].raw, "little", signed=True) == want
    else:
        assert got == want


BAD = [
    ("targ_pid", "abc", "'abc' is not an integer"),
    ("targ_pid", "", "empty value"),
    ("targ_pid", "-1", "out of range for"),
    ("targ_pid", "4294967296", "out of range for"),
    ("small", "128", "out of range for"),
    ("port", "65536", "out of range for"),
    ("verbose", "maybe", "is not a bool"),
    ("letter", "xy", "is not an integer"),
    ("comm", "12345678", "does not fit in"),
    ("mode", "MODE_TURBO", "is not an enumerator of"),
    ("pair", "1", "cannot be set from text"),
    ("targ_pid", "1.5", "is not an integer"),
]


@pytest.mark.parametrize("name,text,needle", BAD)
def test_const_text_refused_in_one_sentence(spec: CollectionSpec, name: str, text: str,
                                            needle: str) -> None:
    before = spec.variables[name].raw
    with pytest.raises(UsageError, match=needle) as e:
        spec.set_constants({name: ConstText(text)})
    assert "\n" not in str(e.value) and f"variable {name!r}" in str(e.value)
    assert spec.variables[name].raw == before  # nothing half-written


def test_python_strings_for_integers_are_parsed_not_written_as_bytes(
        spec: CollectionSpec) -> None:
    """The bug: "abc" written into an int as ASCII; now a str for an int is parsed."""
    spec.set_constants({"targ_pid": "42", "mode": "MODE_FAST"})
    assert spec.variables["targ_pid"].value == 42 and spec.variables["mode"].value == 3
    with pytest.raises(UsageError):
        spec.set_constants({"targ_pid": "abc"})
    spec.set_constants({"comm": "sh", "targ_pid": 7})  # plain Python values still work
    assert spec.variables["comm"].value == "sh"


@pytest.mark.parametrize("arg,needle", [("targ_pid=abc", "'abc' is not an integer"),
                                        ("targ_pid=", "empty value"),
                                        ("mode=MODE_TURBO", "not an enumerator"),
                                        ("=5", "expected NAME=VALUE")])
def test_run_const_errors_exit_2_without_traceback(bpf_obj: Callable[[str], Path], arg: str,
                                                   needle: str) -> None:
    p = subprocess.run([BPFKIT, "run", str(bpf_obj("consts.bpf.c")), "--const", arg,
                        "--duration", "0.1"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2, p.stderr
    assert needle in p.stderr and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
