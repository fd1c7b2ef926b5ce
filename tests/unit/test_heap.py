"""The process heap helpers: the collector's pace, and freed memory returned to the OS."""

from __future__ import annotations

import gc
import platform
from collections.abc import Iterator

import pytest

from worker.heap import GC_THRESHOLDS, pace_collector, release_free_memory


@pytest.fixture
def default_thresholds() -> Iterator[None]:
    """Put the interpreter's thresholds back after the test."""
    saved = gc.get_threshold()
    yield
    gc.set_threshold(*saved)


@pytest.mark.usefixtures("default_thresholds")
def test_pace_collector_sets_the_measured_thresholds() -> None:
    """After pace_collector the collector runs at GC_THRESHOLDS, not CPython's default."""
    pace_collector()
    assert gc.get_threshold() == GC_THRESHOLDS


def test_release_free_memory_trims_where_glibc_is_the_c_library() -> None:
    """On glibc (this CI machine) malloc_trim is found and called; elsewhere it says it was not."""
    assert release_free_memory() is (platform.libc_ver()[0] == "glibc")
