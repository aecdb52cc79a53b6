"""Getting records out of the kernel: ring buffers, perf buffers, user ring buffers and
the ``trace_pipe`` of ``bpf_printk``."""

from __future__ import annotations

from ._decode import RecordDecoder
from .perfbuf import PerfBuffer
from .ringbuf import (
    BPF_RINGBUF_BUSY_BIT,
    BPF_RINGBUF_DISCARD_BIT,
    BPF_RINGBUF_HDR_SZ,
    RecordBatch,
    RingBuffer,
)
from .tracepipe import TraceLine, TracePipe, parse_line, trace_print, tracefs_dir
from .user_ringbuf import UserRingBuffer, UserSample

__all__ = [
    "RingBuffer", "PerfBuffer", "UserRingBuffer", "UserSample", "RecordBatch", "RecordDecoder",
    "BPF_RINGBUF_BUSY_BIT", "BPF_RINGBUF_DISCARD_BIT", "BPF_RINGBUF_HDR_SZ",
    "TraceLine", "TracePipe", "parse_line", "trace_print", "tracefs_dir",
]
