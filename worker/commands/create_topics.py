"""`marketo-worker create-topics CONFIG`: create the topics a configuration names.

The worker never creates its input topic (a typo in `kafka.topic` must not start an empty
stream), so a new setup needs this once: the input topic with `--partitions`, then the
dead-letter, rejections and state topics exactly as the worker makes them at start-up (same
partition count as the input, the state topic compacted). Running it again changes nothing.
"""

from __future__ import annotations

import argparse
import time

from worker.commands.command import Command, config_parser
from worker.commands.exit_codes import ExitCode
from worker.errors import ConfigError
from worker.kafka.topics import create_topic_if_missing, ensure_topics, topic_partitions
from worker.settings import Settings

DEFAULT_PARTITIONS = 4  # room for four replicas; the count cannot shrink later
_VISIBLE_TIMEOUT_S = 30.0


def create_topics(settings: Settings, partitions: int) -> list[str]:
    """Create what is missing; return one line per topic saying what was done."""
    k = settings.kafka
    config = k.client_config()
    before = topic_partitions(config)
    create_topic_if_missing(config, k.topic, partitions)
    _wait_visible(config, k.topic)
    have = ensure_topics(config, k)
    roles = {
        k.topic: "input",
        k.dead_letter_topic: "dead letters",
        k.rejections_topic: "rejections",
        k.state_topic: "state, compacted",
    }
    lines = []
    for name, role in roles.items():
        done = (
            f"exists ({before[name]} partitions)"
            if name in before
            else f"created ({have} partitions)"
        )
        lines.append(f"{name}: {done}, {role}")
    if k.topic in before and before[k.topic] != partitions:
        lines.append(
            f"note: {k.topic!r} already had {before[k.topic]} partitions; --partitions "
            f"{partitions} applies only to a topic this command creates"
        )
    return lines


def _wait_visible(config: dict[str, str], topic: str) -> None:
    """Wait until the broker's metadata lists a topic just created (creation is asynchronous)."""
    deadline = time.monotonic() + _VISIBLE_TIMEOUT_S
    while topic not in topic_partitions(config):
        if time.monotonic() >= deadline:
            raise ConfigError(f"kafka.topic: {topic!r} was created but never appeared")
        time.sleep(0.2)  # the broker offers nothing to wait on: poll its metadata


def arguments(argv: list[str]) -> argparse.Namespace:
    """Parse `create-topics CONFIG [--partitions N]`."""
    parser = config_parser(
        "create-topics",
        description="Create the input, dead-letter, rejections and state topics of a config.",
        epilog="exit codes: 0 every topic exists (created or already there); 2 configuration "
        "error, Kafka unreachable or a topic that could not be created",
    )
    parser.add_argument(
        "--partitions",
        type=int,
        default=DEFAULT_PARTITIONS,
        help=f"partitions of a new input topic (default {DEFAULT_PARTITIONS}); "
        "the worker gives its own topics the same count",
    )
    args = parser.parse_args(argv)
    if args.partitions < 1:
        parser.error("--partitions must be at least 1")
    return args


def run(args: argparse.Namespace, settings: Settings) -> ExitCode:
    """Create the topics and say what was done (Kafka only: no Marketo credentials needed)."""
    print("\n".join(create_topics(settings, args.partitions)))
    return ExitCode.OK


COMMAND = Command(arguments, run)
main = COMMAND.main
