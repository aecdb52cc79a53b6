"""Reading a file a user named: regular files only, with a size cap.

``open(path).read()`` on a path from the command line reads ``/dev/zero`` until memory runs
out and blocks forever on a FIFO.  Object files, BTF files and configs are regular files, so
anything else is refused at once, and a file larger than the caller's cap is refused before a
byte is read.
"""

from __future__ import annotations

import os
import stat

from .errors import ParseError

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISSOCK, "a socket"))


def describe_mode(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def read_regular(path: str | os.PathLike[str], what: str, limit: int,
                 error: type[ParseError] = ParseError) -> bytes:
    """The bytes of regular file ``path`` (at most ``limit``); ``error`` names ``what``
    and the problem otherwise (OSError is converted too)."""
    p = os.fspath(path)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer before we can refuse it
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as e:
        raise error(f"cannot read {what} {p}: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(f"cannot read {what} {p}: it is {describe_mode(st.st_mode)}, not a "
                        "regular file")
        if st.st_size > limit:
            raise error(f"{what} {p} is {st.st_size} bytes, more than the {limit >> 20} MiB "
                        "this reader accepts")
        chunks = []
        total = 0
        while total <= limit:
            b = os.read(fd, min(1 << 20, limit + 1 - total))
            if not b:
                break
            chunks.append(b)
            total += len(b)
        if total > limit:  # the file grew while we read it
            raise error(f"{what} {p} is larger than the {limit >> 20} MiB this reader accepts")
        return b"".join(chunks)
    except OSError as e:
        raise error(f"cannot read {what} {p}: {e.strerror}") from None
    finally:
        os.close(fd)
