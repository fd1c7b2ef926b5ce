"""The `marketo-worker` command line: parses arguments and hands over; decides nothing itself."""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys
from collections.abc import Callable
from pathlib import Path

from worker.errors import ConfigError


def _validate(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="marketo-worker validate",
        description="Check a configuration file: every key, value and rule, offline; with "
        "--online also the credentials, fields and lists against Marketo.",
        epilog="exit codes: 0 valid; 2 invalid (every problem is printed) or an online check "
        "failed",
    )
    parser.add_argument("config", type=Path, help="the YAML configuration file")
    parser.add_argument(
        "--online", action="store_true", help="also check credentials and fields against Marketo"
    )
    args = parser.parse_args(argv)
    # imported here so that other commands (the sandbox) do not pay for pydantic and the rules
    from worker.config_file import load_settings

    try:
        config = load_settings(args.config, require_credentials=args.online)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.online:
        from worker.checks import main_validate_online
        from worker.telemetry.logging import configure

        configure("warning", "console")  # the verdict is the output, not the client's logs
        return main_validate_online(config)
    print(f"config OK: {len(config.audiences)} audiences, {len(config.mapping)} mappings")
    return 0


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="marketo-worker run",
        description="Run the worker until SIGTERM or SIGINT, then flush, commit and leave the "
        "consumer group.",
        epilog="exit codes: 0 stopped by SIGTERM or SIGINT; 1 an unexpected error; "
        "2 configuration or start-up error (Kafka, topics or Marketo)",
    )
    parser.add_argument("config", type=Path, help="the YAML configuration file")
    parser.add_argument(
        "--dry-run", action="store_true", help="evaluate and buffer, send nothing to Marketo"
    )
    args = parser.parse_args(argv)
    import asyncio

    from worker import app, dryrun
    from worker.config_file import load_settings
    from worker.telemetry.logging import configure

    try:
        settings = load_settings(args.config, require_credentials=not args.dry_run)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure(settings.telemetry.log_level, settings.telemetry.log_format)
    try:
        return asyncio.run(dryrun.run_dry(settings) if args.dry_run else app.run(settings))
    except ConfigError as exc:  # found at start-up against Kafka or Marketo
        print(exc, file=sys.stderr)
        return 2


def _module_main(module: str) -> Callable[[list[str]], int]:
    """A command that lives in its own module's `main(argv)`, imported only when asked for."""

    def run(argv: list[str]) -> int:
        return int(importlib.import_module(module).main(argv))

    return run


COMMANDS = {
    "run": (_run, "run the worker: run CONFIG [--dry-run]"),
    "resync": (
        _module_main("worker.resync"),
        "repair lists that drifted from the audiences: resync CONFIG [--audience ID] [--dry-run]",
    ),
    "replay-dlq": (
        _module_main("worker.replay"),
        "re-publish dead letters that now decode: replay-dlq CONFIG [--dry-run]",
    ),
    "import-audience": (
        _module_main("worker.importer"),
        "publish a CSV as audience membership events: import-audience CONFIG AUDIENCE FILE",
    ),
    "create-topics": (
        _module_main("worker.create_topics"),
        "create the topics a config names: create-topics CONFIG [--partitions N]",
    ),
    "generate": (
        _module_main("worker.generator"),
        "publish realistic events: generate CONFIG --rate N",
    ),
    "sandbox": (
        _module_main("worker.sandbox.cli"),
        "run the local Marketo sandbox (a stand-in Marketo REST API)",
    ),
    "explain": (
        _module_main("worker.explain"),
        "show a profile's state and each audience's verdict: explain CONFIG PROFILE_ID [--json]",
    ),
    "validate": (_validate, "check a configuration file: validate CONFIG [--online]"),
}


def main(argv: list[str] | None = None) -> int:
    """Dispatch `marketo-worker COMMAND ...` to the command's own parser."""
    args = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="marketo-worker",
        description="Keeps Marketo Engage static lists equal to audiences, from Kafka.",
    )
    parser.add_argument("command", choices=sorted(COMMANDS), help="see COMMAND --help")
    if args[:1] == ["--version"]:
        print(f"marketo-worker {_version()}")
        return 0
    if not args or args[0] in {"-h", "--help"}:
        parser.print_help()
        for name, (_, summary) in sorted(COMMANDS.items()):
            print(f"  {name:<16} {summary}")
        print("\n  --version        print the version and exit")
        print("\nexit codes: 0 success, 2 usage or configuration error; others: COMMAND --help")
        return 0 if args else 2
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
