"""The `marketo-worker` command line: finds the command and runs it; decides nothing itself.

Every command of `worker.commands` goes through `run_command`: parse its arguments, load the
settings, run, and turn a configuration error (found loading or while running) into exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from worker.commands.exit_codes import ExitCode
from worker.errors import ConfigError

if TYPE_CHECKING:
    from worker.commands.command import Command


def run_command(command: Command, argv: list[str]) -> ExitCode:
    """Run one command: parse `argv`, load the settings it names, run; exit 2 on a ConfigError."""
    args = command.arguments(argv)
    # imported here so that other commands (the sandbox) do not pay for pydantic and the rules
    from worker.config_file import load_settings

    try:
        settings = load_settings(args.config, require_credentials=command.credentials(args))
        if command.logs:
            from worker.telemetry.logging import configure

            configure(settings.telemetry.log_level, settings.telemetry.log_format)
        return command.run(args, settings)
    except ConfigError as exc:  # the file, or found at start-up against Kafka or Marketo
        print(exc, file=sys.stderr)
        return ExitCode.USAGE


def _configured(module: str) -> Callable[[list[str]], ExitCode]:
    """The command `worker.commands.<module>`, imported only when asked for."""

    def run(argv: list[str]) -> ExitCode:
        command: Command = importlib.import_module(f"worker.commands.{module}").COMMAND
        return run_command(command, argv)

    return run


def _sandbox(argv: list[str]) -> ExitCode:
    """The sandbox is a program of its own (`python -m worker.sandbox`) that reads no config."""
    from worker.sandbox.cli import main

    return ExitCode(main(argv))


COMMANDS: dict[str, tuple[Callable[[list[str]], ExitCode], str]] = {
    "run": (_configured("run"), "run the worker: run CONFIG [--dry-run]"),
    "resync": (
        _configured("resync"),
        "repair lists that drifted from the audiences: resync CONFIG [--audience ID] [--dry-run]",
    ),
    "replay-dlq": (
        _configured("replay_dlq"),
        "re-publish dead letters that now decode: replay-dlq CONFIG [--dry-run]",
    ),
    "import-audience": (
        _configured("import_audience"),
        "publish a CSV as audience membership events: import-audience CONFIG AUDIENCE FILE",
    ),
    "create-topics": (
        _configured("create_topics"),
        "create the topics a config names: create-topics CONFIG [--partitions N]",
    ),
    "generate": (
        _configured("generate"),
        "publish realistic events: generate CONFIG --rate N",
    ),
    "sandbox": (_sandbox, "run the local Marketo sandbox (a stand-in Marketo REST API)"),
    "explain": (
        _configured("explain"),
        "show a profile's state and each audience's verdict: explain CONFIG PROFILE_ID [--json]",
    ),
    "status": (
        _configured("status"),
        "each list's members, changes pending and calls left: status CONFIG [--json]",
    ),
    "validate": (_configured("validate"), "check a configuration file: validate CONFIG [--online]"),
}


def main(argv: list[str] | None = None) -> ExitCode:
    """Dispatch `marketo-worker COMMAND ...` to the command's own parser."""
    args = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="marketo-worker",
        description="Keeps Marketo Engage static lists equal to audiences, from Kafka.",
    )
    parser.add_argument("command", choices=sorted(COMMANDS), help="see COMMAND --help")
    if args[:1] == ["--version"]:
        print(f"marketo-worker {_version()}")
        return ExitCode.OK
    if not args or args[0] in {"-h", "--help"}:
        parser.print_help()
        for name, (_, summary) in sorted(COMMANDS.items()):
            print(f"  {name:<16} {summary}")
        print("\n  --version        print the version and exit")
        print("\nexit codes: 0 success, 2 usage or configuration error; others: COMMAND --help")
        return ExitCode.OK if args else ExitCode.USAGE
    command = parser.parse_args(args[:1]).command
    run, _ = COMMANDS[command]
    return run(args[1:])


def _version() -> str:
    """The installed package's version (pyproject.toml's), or `unknown` when run from a copy of
    the sources that was never installed."""
    try:
        return importlib.metadata.version("marketo-audience-worker")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


if __name__ == "__main__":
    raise SystemExit(main())
