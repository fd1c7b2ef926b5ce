"""The import-audience command: a CSV of people becomes membership events.

Streams the file row by row (any size), publishes one event per good row to the input topic,
reports bad rows with their line numbers and goes on. Deciding what a row means is
worker/core/uploads.py; this module only reads, reports and produces.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from worker.commands.command import Command, config_parser
from worker.commands.exit_codes import ExitCode
from worker.core.ids import AudienceId
from worker.core.uploads import (
    BadRow,
    Header,
    Status,
    UploadEvent,
    next_ts_ms,
    parse_header,
    records,
    to_event,
)
from worker.errors import ConfigError
from worker.kafka.events_producer import EventsProducer
from worker.settings import Settings

_PROGRESS_EVERY_S = 0.2
_PLAIN_PROGRESS_EVERY_S = 10.0  # a log file, not a terminal: a line now and then


@dataclass(frozen=True, slots=True)
class _Target:
    """Where and what each row becomes: the audience, its status, the event size limit."""

    audience: AudienceId
    status: Status
    max_bytes: int


@dataclass(slots=True)
class _Counts:
    """How far the run got: rows read and rows refused."""

    rows: int = 0
    bad: int = 0


class _Progress:
    """Progress on stderr: a `\\r` bar with percent and ETA on a terminal, else a plain line every
    few seconds; bad-row notes either way."""

    def __init__(self, stream: TextIO, total_bytes: int, position: Callable[[], int]) -> None:
        self.stream = stream
        self.bar = stream.isatty()
        self.total_bytes = total_bytes
        self.position = position
        self.started = time.monotonic()
        every_s = _PROGRESS_EVERY_S if self.bar else _PLAIN_PROGRESS_EVERY_S
        self.every_s = every_s
        self.next_draw = self.started + every_s  # a rate needs some time to mean much

    def update(self, counts: _Counts) -> None:
        now = time.monotonic()
        if now < self.next_draw:
            return
        self.next_draw = now + self.every_s
        line = progress_line(
            self.position(), self.total_bytes, counts.rows, counts.bad, now - self.started
        )
        if self.bar:
            self.stream.write(f"\r{line}\x1b[K")
        else:
            self.stream.write(f"progress: {line}\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        self.clear()
        print(text, file=self.stream)

    def clear(self) -> None:
        if self.bar:
            self.stream.write("\r\x1b[K")


def progress_line(
    done_bytes: int, total_bytes: int, rows: int, bad: int, elapsed_s: float, width: int = 24
) -> str:
    """`[#####-----]  42%  1,234 rows, 5 bad, 980 rows/s, ETA 0:12` for a file read this far;
    without a size (a pipe) only the counts and the rate."""
    rate = rows / max(elapsed_s, 1e-3)
    counts = f"{rows:,} {_plural(rows, 'row')}, {bad:,} bad, {rate:,.0f} rows/s"
    if total_bytes <= 0:
        return counts
    fraction = min(done_bytes / total_bytes, 1.0)
    filled = int(fraction * width)
    bar = "#" * filled + "-" * (width - filled)
    eta = _clock(elapsed_s * (1 - fraction) / fraction) if fraction > 0 else "?"
    return f"[{bar}] {fraction:4.0%}  {counts}, ETA {eta}"


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _plural(count: int, noun: str) -> str:
    return noun if count == 1 else noun + "s"


def run(args: argparse.Namespace, settings: Settings) -> ExitCode:
    """Import the file for the audience (a ConfigError, nothing published, is the runner's
    exit 2)."""
    audience = _upload_audience(settings, args.audience_id)
    target = _Target(
        audience, "exited" if args.exit else "realized", settings.kafka.max_event_bytes
    )
    try:
        # -sig: Excel writes a BOM; surrogateescape: a row with bad bytes is one bad row
        handle = args.file.open(newline="", encoding="utf-8-sig", errors="surrogateescape")
    except OSError as exc:
        print(f"cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return ExitCode.USAGE
    with handle:
        return _import(settings, target, handle, _Progress(sys.stderr, *_file_size(handle)))


def _file_size(handle: TextIO) -> tuple[int, Callable[[], int]]:
    """The file's size and how far it has been read (its byte buffer's position, which reads
    ahead of the rows by a chunk at most); 0 when it is not a regular file (a pipe)."""
    buffer = getattr(handle, "buffer", None)
    try:
        size = os.fstat(handle.fileno()).st_size
    except (OSError, ValueError):
        size = 0
    if buffer is None or not size:
        return 0, lambda: 0
    return size, buffer.tell


def arguments(argv: list[str]) -> argparse.Namespace:
    """Parse `import-audience CONFIG AUDIENCE_ID FILE.csv [--exit]`."""
    parser = config_parser(
        "import-audience",
        description="Publish one membership event per CSV row for an `origin: upload` audience.",
        epilog="exit codes: 0 every row published; 1 some rows were bad (listed by line, the "
        "others published); 2 configuration, audience, file or header problem (nothing "
        "published); 3 Kafka refused some events; 130 interrupted",
    )
    parser.add_argument("audience_id", help="an audience of the config with origin: upload")
    parser.add_argument(
        "file", type=Path, help="CSV with a header: email, [profile_id], [ecid], ..."
    )
    parser.add_argument(
        "--exit", action="store_true", help="the people in the file exit the audience"
    )
    return parser.parse_args(argv)


def _upload_audience(settings: Settings, audience_id: str) -> AudienceId:
    for audience in settings.audiences:
        if audience.id == audience_id:
            if audience.origin != "upload":
                raise ConfigError(
                    f"audience {audience_id!r} has origin {audience.origin!r}: "
                    "only audiences with origin: upload take uploads"
                )
            return AudienceId(audience_id)
    known = ", ".join(a.id for a in settings.audiences if a.origin == "upload") or "none"
    raise ConfigError(f"audience {audience_id!r} is not in the config (upload audiences: {known})")


def _import(settings: Settings, target: _Target, handle: TextIO, progress: _Progress) -> ExitCode:
    rows = records(handle)
    header = _header(rows)  # a ConfigError here or at the topic check: nothing published yet
    producer = EventsProducer(settings.kafka.client_config(), settings.kafka.topic)
    producer.check_topic(timeout_s=15)
    counts = _Counts()
    interrupted = False
    try:
        _publish(header, rows, producer, target, progress, counts)
    except KeyboardInterrupt:
        interrupted = True
        progress.note(f"interrupted after {counts.rows} {_plural(counts.rows, 'row')}")
    while producer.flush(0.5) > 0:
        progress.update(counts)
    progress.clear()
    return _summary(producer, counts, interrupted)


def _header(rows: Iterator[tuple[int, list[str] | BadRow]]) -> Header:
    first = next(rows, None)
    if first is None:
        raise ConfigError("the file is empty: it needs a header row with an email column")
    line, cells = first
    header = parse_header(cells) if isinstance(cells, list) else cells.reason
    if isinstance(header, str):
        raise ConfigError(f"line {line}: {header}")
    return header


def _publish(
    header: Header,
    rows: Iterator[tuple[int, list[str] | BadRow]],
    producer: EventsProducer,
    target: _Target,
    progress: _Progress,
    counts: _Counts,
) -> None:
    last_ts_ms = 0
    for line, cells in rows:
        counts.rows += 1
        ts_ms = next_ts_ms(time.time_ns() // 1_000_000, last_ts_ms)
        result = cells if isinstance(cells, BadRow) else _event(header, cells, line, target, ts_ms)
        if isinstance(result, BadRow):
            counts.bad += 1
            progress.note(f"line {result.line}: {result.reason}")
        else:
            producer.produce(result.key, result.value)
            last_ts_ms = ts_ms
        progress.update(counts)


def _event(
    header: Header, cells: list[str], line: int, target: _Target, ts_ms: int
) -> UploadEvent | BadRow:
    return to_event(
        header,
        cells,
        line=line,
        audience=target.audience,
        status=target.status,
        ts_ms=ts_ms,
        max_bytes=target.max_bytes,
    )


def _summary(producer: EventsProducer, counts: _Counts, interrupted: bool) -> ExitCode:
    imported, bad = producer.delivered, counts.bad
    print(f"imported {imported} {_plural(imported, 'row')}, {bad} bad {_plural(bad, 'row')}")
    if producer.failed:
        print(
            f"{producer.failed} events were not published: {producer.first_error}",
            file=sys.stderr,
        )
        return ExitCode.NOT_PUBLISHED
    if interrupted:
        return ExitCode.INTERRUPTED
    return ExitCode.INCOMPLETE if counts.bad else ExitCode.OK


COMMAND = Command(arguments, run)
main = COMMAND.main
