"""structlog set-up: JSON lines in production, readable lines locally; stdlib logs bridged.

Never log a secret, a token or an email in clear: `email_hash` is the only form an email takes.
"""

from __future__ import annotations

import hashlib
import io
import logging
import sys

import structlog


def email_hash(email: str | None) -> str | None:
    """Return a short, stable, non-reversible tag of an email for logs (sha256, 12 hex)."""
    if email is None:
        return None
    return hashlib.sha256(email.encode()).hexdigest()[:12]


def configure(level: str = "info", fmt: str = "json") -> None:
    """Configure structlog and the stdlib root logger to write one event per line to stderr.

    Stdlib records (aiohttp, asyncio, librdkafka's lines through `worker.kafka.logs`) are
    rendered by the same renderer: with `json`, every line on stderr is one JSON object.
    """
    numeric = logging.getLevelNamesMapping()[level.upper()]
    if isinstance(sys.stderr, io.TextIOWrapper):
        sys.stderr.reconfigure(line_buffering=True)  # one event per line, even into a pipe
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    stamp: list[structlog.typing.Processor] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            *stamp,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *stamp],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    logging.basicConfig(level=max(numeric, logging.WARNING), handlers=[handler], force=True)
    # not raised to WARNING like the rest: librdkafka's `debug` output is asked for on purpose
    # (kafka.options `debug` with log_level debug)
    logging.getLogger("librdkafka").setLevel(numeric)
