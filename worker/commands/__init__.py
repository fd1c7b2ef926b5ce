"""The `marketo-worker` subcommands, one module each: its arguments and its run.

`worker.cli` dispatches to them and runs each through one runner (settings loaded, a
configuration error is exit 2); the worker process itself is `worker.app`. `demo` is the one
tool that is not a subcommand: `make demo` runs it as `python -m worker.commands.demo`.
"""
