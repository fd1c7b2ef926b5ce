"""Giving freed heap memory back to the operating system, where the C library can.

A restore makes librdkafka fetch a whole partition through its own threads; glibc keeps what
they free in per-thread arenas, so resident memory stays at the restore's peak (measured: 1.1 GB
per million profiles of state instead of 330 MB). `malloc_trim` returns those pages. Other C
libraries (musl, macOS) lack it, and then this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable


def _find_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    trim: Callable[[int], int] | None = getattr(libc, "malloc_trim", None)
    return trim


_TRIM = _find_trim()


def release_free_memory() -> bool:
    """Return freed heap pages to the OS; False where the C library cannot."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True
