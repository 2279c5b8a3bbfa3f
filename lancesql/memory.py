"""Giving the C heap's free memory back to the system while a copy streams.

Lance's Rust code allocates through the C library's ``malloc``. glibc keeps what is
freed in per-thread arenas for reuse, and raises its thresholds after each large free, so
a long copy of image bytes (``CREATE TABLE ... AS SELECT``, ``INSERT ... SELECT``), which
allocates and frees tens of megabytes a batch on several threads, leaves the process's
resident memory creeping up with the rows copied although the live data stays the size of
a few batches. ``malloc_trim(0)`` hands every arena's free pages back; it changes no
setting of the process and is a no-op where the C library has no such function (musl,
macOS, Windows).
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable, Iterator

import pyarrow as pa

#: Bytes of batches streamed between two returns of free memory: a return costs a few
#: milliseconds plus the page faults of memory used again, so it is paid once per
#: hundreds of megabytes copied, not per batch.
RELEASE_EVERY_BYTES = 32 << 20


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_TRIM = _malloc_trim()


def release_free_memory() -> bool:
    """Give the C heap's free pages back to the system; whether anything could be done."""
    return _TRIM is not None and bool(_TRIM(0))


def releasing(batches: Iterator[pa.RecordBatch], every_bytes: int | None = None) -> Iterator[pa.RecordBatch]:
    """``batches``, returning free heap memory after each ``every_bytes`` of them
    (:data:`RELEASE_EVERY_BYTES` by default)."""
    every_bytes = RELEASE_EVERY_BYTES if every_bytes is None else every_bytes
    since = 0
    for batch in batches:
        yield batch
        since += batch.nbytes
        if since >= every_bytes:
            release_free_memory()
            since = 0
