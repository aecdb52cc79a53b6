"""Speed of the BTF codecs: decoding/encoding a ring-buffer-style event and a kernel struct.

Run: .venv/bin/python bench/codec.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import timeit
from pathlib import Path

from bpfkit.btf import Spec, Struct
from bpfkit.btf.codec import BTFCodec

SRC = Path(__file__).resolve().parent.parent / "tests" / "bpf" / "codec_types.bpf.c"


def per_call_us(fn: object, n: int) -> float:
    return min(timeit.repeat(fn, number=n, repeat=5)) / n * 1e6  # type: ignore[arg-type]


def main() -> int:
    with tempfile.TemporaryDirectory() as d:
        obj = Path(d) / "codec_types.o"
        subprocess.run(["clang-19", "-target", "bpf", "-g", "-O2",
                        "-I/usr/include/x86_64-linux-gnu", "-c", str(SRC), "-o", str(obj)],
                       check=True)
        spec = Spec.load_file(obj)
    ev = BTFCodec(spec, "event")
    data = ev.encode({"pid": 1234, "ppid": 1, "comm": "python3", "ts": 10**12})
    print(f"event ({ev.size} B: u32 pid, u32 ppid, char comm[16], u64 ts)")
    print(f"  decode      {per_call_us(lambda: ev.decode(data), 200000):6.2f} us")
    rec = ev.decode(data)
    print(f"  encode      {per_call_us(lambda: ev.encode(rec), 100000):6.2f} us")
    fl = BTFCodec(spec, "flags")
    fdata = fl.encode({"a": 1, "b": -2, "col": 7, "wide": 99})
    print(f"flags ({fl.size} B, 6 bitfields + enum) decode "
          f"{per_call_us(lambda: fl.decode(fdata), 100000):6.2f} us")
    mx = BTFCodec(spec, "mixed")
    mdata = bytes(mx.size)
    print(f"mixed ({mx.size} B, unions, 100 nested structs) decode "
          f"{per_call_us(lambda: mx.decode(mdata), 5000):6.2f} us")
    k = Spec.kernel()
    ts = BTFCodec(k, k.find("task_struct", Struct).id)
    tdata = bytes(ts.size)
    print(f"kernel task_struct ({ts.size} B) decode "
          f"{per_call_us(lambda: ts.decode(tdata), 200):8.1f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
