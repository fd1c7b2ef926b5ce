"""Every Prometheus metric the worker exports, declared once, in one registry.

Label values come from small closed sets (outcomes, audience ids from the config, endpoint
names, Marketo codes): never emails, profile ids or lead ids.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from worker.core.ids import AudienceId
from worker.core.tally import Counts

PREFIX = "marketo_worker_"
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30, 60, 300, 1800, 3600)


class Metrics:
    """The worker's metrics; a fresh registry per instance keeps tests independent."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        p = PREFIX
        self.events = Counter(f"{p}events", "Input events by outcome", ["outcome"], registry=r)
        self.unmatched = Counter(
            f"{p}unmatched", "Events counted unmatched, by why", ["reason"], registry=r
        )
        self.membership_changes = Counter(
            f"{p}membership_changes", "Membership changes derived", ["audience", "op"], registry=r
        )
        self.buffered_changes = Gauge(
            f"{p}buffered_changes", "Changes waiting in a buffer", ["list"], registry=r
        )
        self.marketo_requests = Counter(
            f"{p}marketo_requests", "Marketo calls", ["endpoint", "outcome"], registry=r
        )
        self.marketo_records = Counter(
            f"{p}marketo_records", "Records in Marketo answers", ["endpoint", "status"], registry=r
        )
        self.marketo_request_duration = Histogram(
            f"{p}marketo_request_duration_seconds",
            "Duration of Marketo calls",
            ["endpoint"],
            registry=r,
        )
        self.budget_wait = Counter(
            f"{p}budget_wait_seconds", "Time spent waiting for the call budget", registry=r
        )
        self.daily_quota_remaining = Gauge(
            f"{p}daily_quota_remaining", "This replica's calls left today", registry=r
        )
        # the instance's day as Marketo's usage stats last showed it (read every
        # marketo.budget.usage_interval_s): other API users' calls shrink the group's share
        self.quota_instance_today = Gauge(
            f"{p}quota_instance_calls_today",
            "Calls of every API user today, as Marketo's usage stats last showed it",
            registry=r,
        )
        self.quota_others_today = Gauge(
            f"{p}quota_others_today",
            "Calls other API users (other integrations) made today, at the last usage reading",
            registry=r,
        )
        self.daily_quota_allowed = Gauge(
            f"{p}daily_quota_allowed",
            "This replica's calls for today: its share of quota - reserve - others' calls",
            registry=r,
        )
        # the bulk lane's imports (worker/bulk_lane.py): jobs reaching each state (queued,
        # importing, complete, failed), those in flight by state, and the completed jobs' rows
        self.bulk_jobs = Counter(
            f"{p}bulk_jobs", "Bulk import jobs that reached a state", ["state"], registry=r
        )
        self.bulk_jobs_in_flight = Gauge(
            f"{p}bulk_jobs_in_flight", "Bulk import jobs in flight, by state", ["state"], registry=r
        )
        self.bulk_rows = Counter(
            f"{p}bulk_rows",
            "Rows of completed bulk imports: imported, failed, warned",
            ["outcome"],
            registry=r,
        )
        self.bulk_export_bytes_today = Gauge(
            f"{p}bulk_export_bytes_today",
            "Bulk extract file bytes the instance used of today's allocation (500 MB)",
            registry=r,
        )
        self.end_to_end_latency = Histogram(
            f"{p}end_to_end_latency_seconds",
            "Event ts to Marketo acknowledgement",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.committed_offset = Gauge(
            f"{p}committed_offset", "Last committed offset", ["partition"], registry=r
        )
        self.consumer_lag = Gauge(
            f"{p}consumer_lag", "Messages not yet committed", ["partition"], registry=r
        )
        self.dead_letters = Counter(
            f"{p}dead_letters", "Invalid input records dead-lettered", ["reason"], registry=r
        )
        self.dead_letter_failures = Counter(
            f"{p}dead_letter_failures",
            "Invalid input records Kafka refused to dead-letter (logged with their offset)",
            ["reason"],
            registry=r,
        )
        self.rejections = Counter(f"{p}rejections", "Changes Marketo refused", ["code"], registry=r)
        self.state_profiles = Gauge(f"{p}state_profiles", "Profiles in state", registry=r)
        self.state_restore = Counter(
            f"{p}state_restore_seconds", "Time spent restoring state", registry=r
        )
        self.state_restored_profiles = Counter(
            f"{p}state_restored_profiles", "Profiles read back from the changelog", registry=r
        )
        self.paused_partitions = Gauge(
            f"{p}paused_partitions", "Partitions paused by backpressure", registry=r
        )
        self.rebalances = Counter(f"{p}rebalances", "Partition assignments changed", registry=r)
        self.ready = Gauge(
            f"{p}ready", "1 when partitions are assigned and restored, else 0", registry=r
        )
        self.commit_failures = Counter(
            f"{p}commit_failures", "Partition commits the broker refused", registry=r
        )
        # per audience, over this replica's partitions (sum them over replicas), as the states
        # tell it: set from the store's running counts at each commit, never from a scan
        self.audience_wanted = Gauge(
            f"{p}audience_members_wanted", "Profiles the audience wants", ["audience"], registry=r
        )
        self.audience_in_marketo = Gauge(
            f"{p}audience_members_in_marketo",
            "Profiles Marketo acknowledged in the audience's list",
            ["audience"],
            registry=r,
        )
        self.audience_pending = Gauge(
            f"{p}audience_pending_changes",
            "Profiles whose list membership differs from the audience's, by the change due",
            ["audience", "op"],
            registry=r,
        )

    def show_audiences(self, counts: Mapping[AudienceId, Counts]) -> None:
        """Set the audiences' gauges to their counts."""
        for audience, count in counts.items():
            self.audience_wanted.labels(audience).set(count.wanted)
            self.audience_in_marketo.labels(audience).set(count.in_marketo)
            self.audience_pending.labels(audience, "add").set(count.pending_adds)
            self.audience_pending.labels(audience, "remove").set(count.pending_removes)
