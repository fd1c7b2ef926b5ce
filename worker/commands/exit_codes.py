"""Every exit code of `marketo-worker` and its commands, defined once.

Each command's `--help` epilog says what the codes mean for it; the values never change (scripts
and Kubernetes probes read them).
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """A process exit code; some values have a second name where a command reads it so."""

    OK = 0
    # the command ran, but not all of its work succeeded (some records refused, rows bad,
    # dead letters still failing); running again after a fix is safe
    INCOMPLETE = 1
    NOT_FOUND = 1  # explain: the profile is not in the state
    USAGE = 2  # usage, configuration or start-up error (Kafka, topics or Marketo)
    NOT_PUBLISHED = 3  # Kafka refused some events for good
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as a shell reports it
