"""The import-audience progress line: bar, percent, counts, rate and time left."""

from __future__ import annotations

import io

from worker.commands.import_audience import _Counts, _Progress, progress_line


def test_progress_line_shows_bar_percent_counts_rate_and_eta() -> None:
    """A quarter of the file in 10 s: a quarter of the bar, 25%, and 30 s left."""
    line = progress_line(250, 1000, rows=1_000, bad=2, elapsed_s=10.0, width=8)
    assert line == "[##------]  25%  1,000 rows, 2 bad, 100 rows/s, ETA 0:30"


def test_progress_line_eta_counts_hours() -> None:
    """A long import shows hours, minutes and seconds left."""
    assert progress_line(1, 1000, rows=1, bad=0, elapsed_s=10.0).endswith("ETA 2:46:30")


def test_progress_line_before_any_byte_has_no_eta() -> None:
    """Nothing read yet: the time left is unknown."""
    assert progress_line(0, 1000, rows=0, bad=0, elapsed_s=1.0).endswith("ETA ?")


def test_progress_line_never_passes_100_percent() -> None:
    """The buffer may read ahead of the rows: the bar stops at full."""
    line = progress_line(2000, 1000, rows=5, bad=0, elapsed_s=1.0, width=4)
    assert line.startswith("[####] 100%")


def test_progress_line_without_a_size_shows_counts_only() -> None:
    """A pipe has no size: no bar, no percent, no ETA, and a single row is singular."""
    assert progress_line(0, 0, rows=1, bad=1, elapsed_s=1.0) == "1 row, 1 bad, 1 rows/s"


def test_progress_off_a_terminal_writes_plain_lines() -> None:
    """When stderr is not a terminal, progress comes as whole lines without carriage returns."""
    stream = io.StringIO()
    progress = _Progress(stream, 100, lambda: 50)
    progress.next_draw = 0.0  # due now
    progress.update(_Counts(rows=3))
    assert stream.getvalue().startswith("progress: [")
    assert "\r" not in stream.getvalue()
