"""The worker's whole exception hierarchy; each docstring says when it is raised."""

from __future__ import annotations

from typing import ClassVar


class WorkerError(Exception):
    """Root of every error the worker raises on purpose."""


class ConfigError(WorkerError):
    """Configuration is invalid at start-up; the process exits before consuming anything."""


class RuleError(ConfigError):
    """An audience rule does not parse or uses an unknown name; `column` is 1-based."""

    def __init__(self, message: str, *, rule: str, column: int) -> None:
        self.rule = rule
        self.column = column
        pointer = " " * (column - 1) + "^"
        super().__init__(f"{message} at column {column}\n  {rule}\n  {pointer}")


class PoisonMessage(WorkerError):
    """An input record fails decoding or validation; `kind` is a small closed set of reasons."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        super().__init__(message)


class MarketoError(WorkerError):
    """A Marketo call failed as a whole; `code` is Marketo's error code or the HTTP status."""

    retriable: ClassVar[bool] = False

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(f"Marketo {code}: {message}")


class TokenExpired(MarketoError):
    """601/602: the access token is invalid or expired; retry after one re-authentication."""

    retriable = True


class RateLimited(MarketoError):
    """606/615: rate window or concurrency exceeded; retry after backing off."""

    retriable = True


class QuotaExhausted(MarketoError):
    """607: the daily quota is spent; work waits for the reset."""

    retriable = True


class MarketoUnavailable(MarketoError):
    """HTTP 5xx, a timeout, or 604/608/611/713: Marketo is unwell; retry with backoff."""

    retriable = True


class RequestRejected(MarketoError):
    """Any other request-level error: not retriable (a bug, bad credentials or configuration)."""


class ImportTooLarge(RequestRejected):
    """HTTP 413 on a bulk import: the file is 10 MB or more; split it (a resend cannot help)."""


class ImportQueueFull(MarketoError):
    """1016: the instance's bulk import queue holds 10 jobs; wait for one to finish, then submit."""

    retriable = True


class BatchNotFound(RequestRejected):
    """1013 on an import's status: Marketo knows no such batch (never made, or over 7 days old)."""


class ExportLimited(MarketoError):
    """1029 on a bulk extract: `reason` is "queue_full" (10 jobs queued or processing) or
    "daily_allocation" (500 MB of files today, until midnight Central Time), both retriable by
    waiting, or "already_queued" (an enqueue of a job that is queued already)."""

    retriable = True

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        text = message.lower()
        self.reason = (
            "daily_allocation"
            if "quota" in text
            else "already_queued"
            if "already" in text
            else "queue_full"
        )


class ExportFileMissing(RequestRejected):
    """HTTP 404 on an export's file: the job is not `Completed`, unknown, or its file expired."""


class CallAbandoned(WorkerError):
    """A call was not sent: the changes in it stopped being ours (their partition was revoked)."""


class LocalBrokerError(WorkerError):
    """The local development broker cannot be fetched or started; the message names the fix."""


class DeliveryFailed(WorkerError):
    """Records for Kafka could not be delivered: stop without committing, a restart re-reads."""
