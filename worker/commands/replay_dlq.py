"""`marketo-worker replay-dlq CONFIG`: re-publish dead letters that decode under the current config.

Reads the dead-letter topic once (group `<group_id>.replay-dlq`, so a second run starts where this
one stopped); records that still fail are reported and left in the topic, where a run with
`--from-beginning` reads them again after a further fix (records it replays twice are harmless:
the worker keeps each profile's newest event). Never touches Marketo.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TextIO

import structlog

from worker.commands.command import Command, config_parser
from worker.commands.exit_codes import ExitCode
from worker.core.events import TsWindow, decode
from worker.errors import ConfigError, PoisonMessage
from worker.kafka.replay import DeadLetter, DeadLetterReader, InputRepublisher, partition_count
from worker.settings import Settings

log = structlog.get_logger("worker.replay")
SAMPLES = 5  # failing records shown with their position
FLUSH_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class Failure:
    """A dead letter that still does not decode: where it was first read (or, without the
    dead letter's source headers, where it is) and why."""

    where: str
    kind: str
    message: str


@dataclass(slots=True)
class Summary:
    """What a replay did (filled while it reads)."""

    replayed: int = 0
    failing: Counter[str] = field(default_factory=Counter)
    samples: list[Failure] = field(default_factory=list)
    complete: bool = True
    delivered: bool = True


def arguments(argv: list[str]) -> argparse.Namespace:
    """Parse `replay-dlq CONFIG [--dry-run] [--max N] [--from-beginning]`."""
    parser = config_parser(
        "replay-dlq",
        description="Re-publish dead letters that are valid under the current configuration.",
        epilog="exit codes: 0 every dead letter read was replayed; 1 some still fail (listed; "
        "they stay in the topic) or were not all delivered; 2 configuration error or Kafka "
        "unreachable",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="report what would be replayed; publish nothing"
    )
    parser.add_argument("--max", type=int, default=None, help="handle at most N dead letters")
    parser.add_argument(
        "--from-beginning",
        action="store_true",
        help="read every dead letter again, not only those after the last run",
    )
    args = parser.parse_args(argv)
    if args.max is not None and args.max < 1:
        parser.error("--max must be at least 1")
    return args


def run(args: argparse.Namespace, settings: Settings) -> ExitCode:
    """Replay once and print the summary (Kafka only: no Marketo credentials needed)."""
    summary = replay(
        settings, dry_run=args.dry_run, limit=args.max, from_beginning=args.from_beginning
    )
    print_summary(summary, dry_run=args.dry_run, out=sys.stdout)
    return ExitCode.OK if summary.delivered and not summary.failing else ExitCode.INCOMPLETE


def replay(
    settings: Settings, *, dry_run: bool, limit: int | None, from_beginning: bool = False
) -> Summary:
    """Read the dead letters once; publish (unless `dry_run`) and commit the ones that decode."""
    k = settings.kafka
    config = settings.kafka.client_config()
    partitions = partition_count(config, k.topic)
    if partitions is None:
        raise ConfigError(f"kafka.topic: input topic {k.topic!r} does not exist")
    group = f"{k.group_id}.replay-dlq"
    reader = DeadLetterReader(config, k.dead_letter_topic, group, from_beginning=from_beginning)
    publisher = None if dry_run else InputRepublisher(config, k.topic)
    summary = Summary()
    try:
        for index, record in enumerate(reader.read()):
            _handle(record, settings, summary, publisher, partitions)
            if limit is not None and index + 1 >= limit:
                break
        summary.complete = reader.complete
        if publisher is not None:
            # commit after the input has every replayed record: a crash replays again, never loses
            summary.delivered = publisher.flush(FLUSH_TIMEOUT_S)
            if summary.delivered:
                reader.commit()
    finally:
        reader.close()
    return summary


def _handle(
    record: DeadLetter,
    settings: Settings,
    summary: Summary,
    publisher: InputRepublisher | None,
    partitions: int,
) -> None:
    k, dlq = settings.kafka, settings.kafka.dead_letter_topic
    earliest_ms, max_future_ms = k.ts_bounds_ms()
    # the worker's own bounds: a record it would dead-letter again is reported, not replayed
    window = TsWindow.around(
        int(time.time() * 1000), earliest_ms=earliest_ms, max_future_ms=max_future_ms
    )
    try:
        decode(record.key, record.value, max_bytes=k.max_event_bytes, ts_window=window)
    except PoisonMessage as exc:
        summary.failing[exc.kind] += 1
        if len(summary.samples) < SAMPLES:
            summary.samples.append(Failure(_position(record, dlq), exc.kind, str(exc)))
        return
    summary.replayed += 1
    if publisher is not None:
        # the partition it was first read from keeps the profile's events (and its state) together
        source = record.source_partition
        target = source if source is not None and 0 <= source < partitions else None
        publisher.publish(
            record.key, record.value, target, f"{dlq}:{record.partition}:{record.offset}"
        )
        log.debug("dlq.replayed", partition=record.partition, offset=record.offset, to=target)


def _position(record: DeadLetter, dlq: str) -> str:
    """`topic partition P offset O` of the source record, else of the dead letter itself."""
    topic, partition, offset = record.source_topic, record.source_partition, record.source_offset
    if topic is None or partition is None or offset is None:
        return f"dead letter {dlq} partition {record.partition} offset {record.offset}"
    return f"{topic} partition {partition} offset {offset}"


def print_summary(summary: Summary, *, dry_run: bool, out: TextIO) -> None:
    """Print replayed N, still failing M by kind, and the first failing positions."""
    verb = "would replay" if dry_run else "replayed"
    failing = sum(summary.failing.values())
    print(f"{verb} {summary.replayed}, still failing {failing}", file=out)
    for kind, count in sorted(summary.failing.items()):
        print(f"  {kind}: {count}", file=out)
    for sample in summary.samples:
        print(f"  {sample.where}: {sample.kind}: {sample.message}", file=out)
    if failing:
        print("they stay in the topic: after a further fix, run with --from-beginning", file=out)
    if not summary.delivered:
        print("replayed records were not all delivered: nothing committed, run again", file=out)
    if not summary.complete:
        print("stopped early: no record arrived for a while; run again to continue", file=out)


COMMAND = Command(arguments, run, logs=True)
main = COMMAND.main
