"""Feeds the Marketo client's observations into Prometheus metrics."""

from __future__ import annotations

from worker.telemetry.metrics import Metrics


class MetricsObserver:
    """Implements the client's Observer protocol with the worker's metrics."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def request(self, endpoint: str, outcome: str, duration_s: float | None) -> None:
        """Count one Marketo call, and the duration of its HTTP request when it was sent."""
        self.metrics.marketo_requests.labels(endpoint, outcome).inc()
        if duration_s is not None:
            self.metrics.marketo_request_duration.labels(endpoint).observe(duration_s)

    def records(self, endpoint: str, status: str, count: int) -> None:
        """Count the records of one answer by status."""
        self.metrics.marketo_records.labels(endpoint, status).inc(count)


ENDED = frozenset({"complete", "failed"})  # a job in these states is no longer in flight


class BulkMetrics:
    """Implements the bulk lane's JobWatch protocol with the worker's metrics."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def job_moved(self, before: str | None, after: str) -> None:
        """A job went from `before` (None: new) to `after`: counted, and in flight unless ended."""
        m = self.metrics
        m.bulk_jobs.labels(after).inc()
        if before is not None and before not in ENDED:
            m.bulk_jobs_in_flight.labels(before).dec()
        if after not in ENDED:
            m.bulk_jobs_in_flight.labels(after).inc()

    def rows(self, imported: int, failed: int, warned: int) -> None:
        """Count a completed job's rows: imported, failed (not members) and warned."""
        for outcome, count in (("imported", imported), ("failed", failed), ("warned", warned)):
            self.metrics.bulk_rows.labels(outcome).inc(count)
