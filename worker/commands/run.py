"""`marketo-worker run CONFIG [--dry-run]`: the worker process (worker.app), or its dry run
(worker.dryrun: the same loop with a writer that sends nothing to Marketo)."""

from __future__ import annotations

import argparse
import asyncio

from worker.commands.command import Command, config_parser
from worker.commands.exit_codes import ExitCode
from worker.settings import Settings


def arguments(argv: list[str]) -> argparse.Namespace:
    """Parse `run CONFIG [--dry-run]`."""
    parser = config_parser(
        "run",
        description="Run the worker until SIGTERM or SIGINT, then flush, commit and leave the "
        "consumer group.",
        epilog="exit codes: 0 stopped by SIGTERM or SIGINT; 1 an unexpected error; "
        "2 configuration or start-up error (Kafka, topics or Marketo)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="evaluate and buffer, send nothing to Marketo"
    )
    return parser.parse_args(argv)


def run(args: argparse.Namespace, settings: Settings) -> ExitCode:
    """Run until SIGTERM or SIGINT (a start-up ConfigError is the runner's exit 2)."""
    from worker import app, dryrun  # the composition roots: not imported for `run --help`

    return ExitCode(asyncio.run(dryrun.run_dry(settings) if args.dry_run else app.run(settings)))


def _sends_to_marketo(args: argparse.Namespace) -> bool:
    return not args.dry_run


COMMAND = Command(arguments, run, credentials=_sends_to_marketo, logs=True)
main = COMMAND.main
