"""`marketo-worker validate CONFIG [--online]`: a configuration file checked offline; with
`--online` also against Marketo (credentials, fields, lists) and Kafka (reach, topics)."""

from __future__ import annotations

import argparse
import logging
import sys

from worker.commands.command import Command, config_parser
from worker.commands.exit_codes import ExitCode
from worker.settings import Settings


def arguments(argv: list[str]) -> argparse.Namespace:
    """Parse `validate CONFIG [--online]`."""
    parser = config_parser(
        "validate",
        description="Check a configuration file: every key, value and rule, offline; with "
        "--online also the credentials, fields and lists against Marketo.",
        epilog="exit codes: 0 valid; 2 invalid (every problem is printed) or an online check "
        "failed",
    )
    parser.add_argument(
        "--online", action="store_true", help="also check credentials and fields against Marketo"
    )
    return parser.parse_args(argv)


def run(args: argparse.Namespace, settings: Settings) -> ExitCode:
    """The file loaded is valid: say so, or check it online."""
    if args.online:
        from worker.telemetry.logging import configure

        configure("warning", "console")  # the verdict is the output, not the client's logs
        return validate_online(settings)
    print(f"config OK: {len(settings.audiences)} audiences, {len(settings.mapping)} mappings")
    return ExitCode.OK


def validate_online(settings: Settings) -> ExitCode:
    """Print the online problems (exit 2) or that all is OK."""
    # imported here: the offline check does not pay for the Kafka and Marketo clients
    from worker.kafka.logs import LOGGER as KAFKA_LOGGER
    from worker.startup.checks import online_problems

    # the verdict names a Kafka problem; librdkafka's reconnect lines would only bury it
    KAFKA_LOGGER.setLevel(logging.CRITICAL)
    kafka, problems = online_problems(settings)
    if problems:
        print("online checks failed:", *problems, sep="\n", file=sys.stderr)
        return ExitCode.USAGE
    created = ", ".join(kafka.to_create) or "none"
    print(
        f"kafka OK: input topic {settings.kafka.topic!r} has {kafka.partitions} partitions; "
        f"output topics start-up would create: {created}"
    )
    print(f"online checks OK: {len(settings.mapping)} mappings, {len(settings.audiences)} lists")
    return ExitCode.OK


def _online(args: argparse.Namespace) -> bool:
    return bool(args.online)


COMMAND = Command(arguments, run, credentials=_online)
main = COMMAND.main
