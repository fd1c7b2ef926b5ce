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
