"""`marketo-worker status CONFIG`: how far each list is from its audience, and the calls left.

Reads every partition of the state topic (read only: no group joined, nothing written) and
prints, per configured audience, the members wanted, those in Marketo (acknowledged), the
pending adds and removes, and the Marketo calls and time that settling them takes at the
configured budget (`marketo.budget`: calls per window, for the whole group); the counting is
worker.core.progress. Audiences the state holds memberships of but the configuration no longer
names are listed as not configured. Exit 0 when printed, 2 for a configuration or Kafka problem.

`--json` prints one object:

    {"state_topic": str, "profiles": int, "unreadable": int,
     "budget": {"calls_per_window": int, "window_s": float, "batch": int},
     "audiences": [{"audience": str, "name": str | null, "configured": bool,
                    "wanted": int, "in_marketo": int,
                    "pending_adds": int, "pending_removes": int,
                    "calls": {"lead_syncs": int, "list_adds": int, "list_removes": int,
                              "total": int} | null,
                    "seconds_left": float | null,
                    "lane": "rest" | "bulk" | null}, ...],
     "total": {"pending_adds": int, "pending_removes": int, "calls": {...},
               "seconds_left": float}}

`unreadable` counts states that do not decode (they count nowhere else); `calls` and
`seconds_left` are null for an audience not configured (the worker sends nothing for it); the
total's calls share lead syncs between lists, so they can be fewer than the audiences' sum.
`lane` is the way the audience's pending adds go when a worker restores them (a backlog): `bulk`
(one bulk import with the list's id) at `flush.bulk_threshold` adds or more, the worker's own
test, never with `match_only`; else `rest` (lead syncs and list adds); null with nothing pending or
not configured. Removals always go by REST; `calls` and `seconds_left` count the REST lane's.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson

from worker.commands.command import Command, config_parser
from worker.commands.exit_codes import ExitCode
from worker.core import snapshot
from worker.core.drift import RepairCalls
from worker.core.ids import AudienceId
from worker.core.outbox import takes_bulk
from worker.core.profile import ProfileState
from worker.core.progress import AudienceProgress, Progress, progress, seconds_for
from worker.errors import ConfigError
from worker.kafka.changelog import RestoreInterrupted, read_partition
from worker.kafka.replay import partition_count
from worker.settings import Settings


def arguments(argv: list[str]) -> argparse.Namespace:
    """Parse `status CONFIG [--json] [--timeout-s S]`."""
    parser = config_parser(
        "status",
        description="Show each audience's members wanted and in Marketo, the changes pending, "
        "and the calls and time left at the configured budget.",
        epilog="exit codes: 0 the status was printed; 2 configuration error or Kafka unreachable",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--timeout-s", type=float, default=60.0, help="give up reading after")
    return parser.parse_args(argv)


def run(args: argparse.Namespace, settings: Settings) -> ExitCode:
    """Read the state topic, count, print (a Kafka problem is the runner's exit 2)."""
    unreadable = _Unreadable()
    states = read_states(settings, time.monotonic() + args.timeout_s, unreadable)
    configured = [AudienceId(a.id) for a in settings.audiences]
    counted = progress(states, configured, settings.flush.max_batch)
    found = report(settings, counted, unreadable.count)
    print(orjson.dumps(found, option=orjson.OPT_INDENT_2).decode() if args.json else text(found))
    return ExitCode.OK


@dataclass(slots=True)
class _Unreadable:
    count: int = 0


def read_states(
    settings: Settings, deadline: float, unreadable: _Unreadable
) -> Iterator[ProfileState]:
    """Every profile's newest state, a partition at a time (one partition's encoded image in
    memory, not every decoded state); ConfigError on Kafka problems."""
    config = settings.kafka.client_config()
    topic = settings.kafka.state_topic
    partitions = partition_count(config, topic)
    if partitions is None:
        raise ConfigError(f"kafka.state_topic: {topic!r} does not exist (has the worker run?)")
    for partition in range(partitions):
        codec = snapshot.StateCodec()  # decodes the layouts the partition names
        try:
            batches = read_partition(config, topic, partition, lambda: time.monotonic() > deadline)
            image = snapshot.read_image(batches, codec)
        except RestoreInterrupted:
            raise ConfigError(f"timed out reading partition {partition} of {topic!r}") from None
        except Exception as exc:  # noqa: BLE001 -- librdkafka errors; confluent_kafka stays in kafka/
            raise ConfigError(f"cannot read {topic!r}: {exc}") from None
        for data in image.states.values():
            try:
                yield codec.decode(data)
            except msgspec.DecodeError:
                unreadable.count += 1


def report(settings: Settings, counted: Progress, unreadable: int) -> dict[str, Any]:
    """The status as a JSON-ready dict (the shape is the module docstring's)."""
    budget = settings.marketo.budget
    names = {a.id: a.name for a in settings.audiences}
    threshold = settings.bulk_threshold()

    def lane(item: AudienceProgress) -> str | None:
        if not item.configured or not (item.pending_adds or item.pending_removes):
            return None
        return "bulk" if takes_bulk(item.pending_adds, threshold) else "rest"

    def left(calls: RepairCalls | None) -> float | None:
        if calls is None:
            return None
        return seconds_for(calls.total, budget.calls_per_window, budget.window_s)

    audiences = [
        {
            "audience": item.audience,
            "name": names.get(item.audience),
            "configured": item.configured,
            "wanted": item.wanted,
            "in_marketo": item.in_marketo,
            "pending_adds": item.pending_adds,
            "pending_removes": item.pending_removes,
            "calls": _calls(item.calls),
            "seconds_left": left(item.calls),
            "lane": lane(item),
        }
        for item in counted.audiences
    ]
    configured = [item for item in counted.audiences if item.configured]
    return {
        "state_topic": settings.kafka.state_topic,
        "profiles": counted.profiles,
        "unreadable": unreadable,
        "budget": {
            "calls_per_window": budget.calls_per_window,
            "window_s": budget.window_s,
            "batch": settings.flush.max_batch,
        },
        "audiences": audiences,
        "total": {
            "pending_adds": sum(item.pending_adds for item in configured),
            "pending_removes": sum(item.pending_removes for item in configured),
            "calls": _calls(counted.calls),
            "seconds_left": left(counted.calls),
        },
    }


def _calls(calls: RepairCalls | None) -> dict[str, int] | None:
    if calls is None:
        return None
    return {
        "lead_syncs": calls.syncs,
        "list_adds": calls.adds,
        "list_removes": calls.removes,
        "total": calls.total,
    }


_COLUMNS = (
    "audience",
    "wanted",
    "in Marketo",
    "pending adds",
    "pending removes",
    "calls",
    "time",
    "lane",
)


def text(found: dict[str, Any]) -> str:
    """The status for a terminal: a header line and one aligned row per audience, then the total;
    an audience not configured says so in place of its calls and time."""
    budget = found["budget"]
    rows: list[tuple[str, ...]] = [_COLUMNS]
    for item in found["audiences"]:
        counts = [str(item[k]) for k in ("wanted", "in_marketo", "pending_adds", "pending_removes")]
        if item["configured"]:
            counts += [str(item["calls"]["total"]), _duration(item["seconds_left"])]
            counts.append(item["lane"] or "-")
        rows.append((item["audience"], *counts))
    total = found["total"]
    pending = (str(total["pending_adds"]), str(total["pending_removes"]))
    calls = (str(total["calls"]["total"]), _duration(total["seconds_left"]))
    rows.append(("total", "", "", *pending, *calls, ""))
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(len(_COLUMNS))]
    lines = [
        f"state topic {found['state_topic']}: {found['profiles']} profiles"
        + (f", {found['unreadable']} unreadable" if found["unreadable"] else "")
        + f"; budget {budget['calls_per_window']} calls per {budget['window_s']:g} s",
    ]
    for row in rows:
        numbers = [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=False)]
        note = ["  not configured"] if len(row) < len(_COLUMNS) else []
        lines.append("  ".join([row[0].ljust(widths[0]), *numbers, *note]).rstrip())
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    """`42s`, `3m 05s`, `2h 07m`: rounded up, a pending call never shows as no time."""
    whole = int(-(-seconds // 1))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


COMMAND = Command(arguments, run)
main = COMMAND.main
