#!/usr/bin/env python3
"""Build bpfkit's sdist and wheel reproducibly: the same tree gives the same bytes.

Why a script and not a bare ``python -m build``: setuptools stamps archives with the build
time (the gzip header of the sdist, file times taken from the work tree) and keeps the
uid/gid of whoever built them. Here the files that git tracks are staged in a temporary
directory with one timestamp (SOURCE_DATE_EPOCH, default: the last commit's time), built
there with no build isolation (so two builds use the same setuptools), and both archives
are rewritten in sorted order with fixed times and owners.

    python scripts/dist.py [--outdir dist]
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def source_date_epoch() -> int:
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env:
        return int(env)
    try:
        out = subprocess.run(["git", "log", "-1", "--format=%ct"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout.strip()
        return int(out)
    except (OSError, subprocess.CalledProcessError, ValueError):
        return 315532800  # 1980-01-01, the earliest time a zip file can hold


def tracked_files() -> list[str]:
    """The files git tracks (work-tree contents), so stray build output never ships."""
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True,
                         capture_output=True).stdout
    return sorted(p for p in out.decode().split("\0") if p and (ROOT / p).is_file())


def stage(dest: Path, epoch: int) -> None:
    for rel in tracked_files():
        src, dst = ROOT / rel, dest / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        os.chmod(dst, 0o755 if os.access(src, os.X_OK) else 0o644)
        os.utime(dst, (epoch, epoch))


def normalize_sdist(path: Path, epoch: int) -> None:
    with tarfile.open(path, "r:gz") as src:
        members = sorted(src.getmembers(), key=lambda m: m.name)
        payload = [(m, src.extractfile(m).read() if m.isfile() else None)  # type: ignore[union-attr]
                   for m in members]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as dst:
        for m, data in payload:
            m.mtime, m.uid, m.gid, m.uname, m.gname = epoch, 0, 0, "", ""
            m.mode = 0o755 if m.isdir() or m.mode & 0o111 else 0o644
            m.pax_headers = {}
            dst.addfile(m, io.BytesIO(data) if data is not None else None)
    with open(path, "wb") as f, gzip.GzipFile(filename="", mode="wb", fileobj=f,
                                              mtime=epoch, compresslevel=9) as gz:
        gz.write(raw.getvalue())


def normalize_wheel(path: Path, epoch: int) -> None:
    stamp = max(epoch, 315532800)
    import time
    date_time = time.gmtime(stamp)[:6]
    with zipfile.ZipFile(path) as src:
        entries = [(i, src.read(i.filename)) for i in src.infolist()]
    # RECORD last, as the wheel spec recommends; everything else in name order
    entries.sort(key=lambda e: (e[0].filename.endswith(".dist-info/RECORD"), e[0].filename))
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for info, data in entries:
            zi = zipfile.ZipInfo(info.filename, date_time=date_time)
            zi.external_attr = info.external_attr
            zi.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(zi, data)
    tmp.replace(path)


def build(outdir: Path) -> list[Path]:
    epoch = source_date_epoch()
    outdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(epoch), PYTHONHASHSEED="0")
    with tempfile.TemporaryDirectory(prefix="bpfkit-dist-") as tmp:
        src = Path(tmp) / "src"
        out = Path(tmp) / "out"
        stage(src, epoch)
        r = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--sdist",
                            "--wheel", "--outdir", str(out), str(src)], env=env,
                           capture_output=True, text=True)
        if r.returncode:
            sys.exit(f"dist: python -m build failed (pip install -e '.[dev]' provides it):\n"
                     f"{r.stdout}{r.stderr}")
        made = []
        for p in sorted(out.iterdir()):
            if p.name.endswith(".tar.gz"):
                normalize_sdist(p, epoch)
            elif p.name.endswith(".whl"):
                normalize_wheel(p, epoch)
            else:
                continue
            dest = outdir / p.name
            shutil.copyfile(p, dest)
            made.append(dest)
    return made


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--outdir", default=str(ROOT / "dist"))
    a = ap.parse_args()
    for p in build(Path(a.outdir)):
        print(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
