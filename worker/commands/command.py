"""A subcommand that reads a configuration file: its arguments and its run, for the runner."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from worker.commands.exit_codes import ExitCode

if TYPE_CHECKING:  # pydantic is imported when a command runs, not when the command line starts
    from worker.settings import Settings


def _not_required(_args: argparse.Namespace) -> bool:
    return False


@dataclass(frozen=True, slots=True)
class Command:
    """What `worker.cli.run_command` needs to run one command.

    `arguments` parses the command's argv into a namespace with a `config` path (a bad value is
    the parser's error, exit 2; its help epilog lists the exit codes); `run` does the work with
    the loaded settings. `credentials` says whether Marketo's must be set for these arguments;
    `logs` whether logging is configured from the settings before `run`.
    """

    arguments: Callable[[list[str]], argparse.Namespace]
    run: Callable[[argparse.Namespace, Settings], ExitCode]
    credentials: Callable[[argparse.Namespace], bool] = _not_required
    logs: bool = False

    def main(self, argv: list[str]) -> int:
        """Run the command through the one runner; return the process exit code."""
        from worker.cli import run_command  # the runner dispatches to commands: import it late

        return run_command(self, argv)


def config_parser(name: str, *, description: str, epilog: str) -> argparse.ArgumentParser:
    """`marketo-worker NAME`'s parser, with the CONFIG argument the runner loads."""
    parser = argparse.ArgumentParser(
        prog=f"marketo-worker {name}", description=description, epilog=epilog
    )
    parser.add_argument("config", type=Path, help="the YAML configuration file")
    return parser
