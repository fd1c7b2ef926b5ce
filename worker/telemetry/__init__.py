"""Telemetry edges: logs, metrics and the health/metrics HTTP endpoint."""
