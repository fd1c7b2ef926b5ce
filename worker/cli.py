"""The `marketo-worker` command line: parses arguments and hands over; decides nothing itself."""

from __future__ import annotations

import argparse
import importlib
import sys


def _sandbox(argv: list[str]) -> int:
    # the sandbox is its own sub-package, imported only when asked for
    sandbox_cli = importlib.import_module("worker.sandbox.cli")
    return int(sandbox_cli.main(argv))


COMMANDS = {
    "sandbox": (_sandbox, "run the local Marketo sandbox (a stand-in Marketo REST API)"),
}


def main(argv: list[str] | None = None) -> int:
    """Dispatch `marketo-worker COMMAND ...` to the command's own parser."""
    args = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="marketo-worker",
        description="Keeps Marketo Engage static lists equal to audiences, from Kafka.",
    )
    parser.add_argument("command", choices=sorted(COMMANDS), help="see COMMAND --help")
    if not args or args[0] in {"-h", "--help"}:
        parser.print_help()
        for name, (_, summary) in sorted(COMMANDS.items()):
            print(f"  {name:<16} {summary}")
        return 0 if args else 2
    command = parser.parse_args(args[:1]).command
    run, _ = COMMANDS[command]
    return run(args[1:])


if __name__ == "__main__":
    raise SystemExit(main())
