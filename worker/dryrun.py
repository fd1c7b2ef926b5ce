"""`marketo-worker run CONFIG --dry-run`: the real loop with a writer that sends nothing to Marketo.

Every call is answered here as a success (no token, no HTTP) and counted; the calls per minute
are logged every 60 s and at shutdown. It consumes as group `<group_id>.dry-run` and writes to
`<topic>.dry-run` state, dead-letter and rejections topics: the real worker's data stays untouched.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import structlog

from worker import app
from worker.core.fields import Converter, FieldSpec
from worker.core.ids import AudienceId, LeadId, ListId
from worker.kafka.topics import ensure_topics
from worker.marketo.limiter import limiter_for
from worker.settings import Audience, Settings
from worker.telemetry.metrics import Metrics

log = structlog.get_logger("worker.dryrun")
SUFFIX = ".dry-run"
REPORT_INTERVAL_S = 60.0
ENDPOINTS = ("sync_leads", "add_to_list", "remove_from_list", "delete_leads")


@dataclass(frozen=True, slots=True)
class DryResult:
    """One record's made-up answer (the flusher's RecordResult shape)."""

    status: str
    lead_id: LeadId | None
    reasons: tuple[tuple[str, str], ...] = ()


class DryRunWriter:
    """A `flusher.ListWriter` that answers success for every record and counts the calls."""

    def __init__(
        self, budget_per_minute: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.budget_per_minute = budget_per_minute
        self.clock = clock
        self.lead_ids: dict[str, LeadId] = {}  # deterministic: 1, 2, 3... in order of first sync
        self.calls: Counter[str] = Counter()  # since the last report
        self.records: Counter[str] = Counter()
        self.since = clock()

    async def sync_leads(
        self, records: Sequence[Mapping[str, object]], *, action: str, lookup_field: str
    ) -> list[DryResult]:
        """Give each email a stable lead id: `created` the first time, `updated` after."""
        self._count("sync_leads", len(records))
        results = []
        for record in records:
            email = str(record.get(lookup_field, ""))
            known = email in self.lead_ids or action == "updateOnly"
            lead_id = self.lead_ids.setdefault(email, LeadId(len(self.lead_ids) + 1))
            results.append(DryResult("updated" if known else "created", lead_id))
        return results

    async def add_to_list(
        self,
        list_id: ListId,
        lead_ids: Sequence[LeadId],
        still_wanted: Callable[[], bool] | None = None,
    ) -> list[DryResult]:
        """Answer `added` for every lead."""
        self._count("add_to_list", len(lead_ids))
        return [DryResult("added", lead_id) for lead_id in lead_ids]

    async def remove_from_list(
        self,
        list_id: ListId,
        lead_ids: Sequence[LeadId],
        still_wanted: Callable[[], bool] | None = None,
    ) -> list[DryResult]:
        """Answer `removed` for every lead."""
        self._count("remove_from_list", len(lead_ids))
        return [DryResult("removed", lead_id) for lead_id in lead_ids]

    async def delete_leads(
        self, lead_ids: Sequence[LeadId], still_wanted: Callable[[], bool] | None = None
    ) -> list[DryResult]:
        """Answer `deleted` for every lead."""
        self._count("delete_leads", len(lead_ids))
        return [DryResult("deleted", lead_id) for lead_id in lead_ids]

    def _count(self, endpoint: str, records: int) -> None:
        self.calls[endpoint] += 1
        self.records[endpoint] += records

    def report(self) -> None:
        """Log the calls per minute since the last report, per endpoint, and start afresh."""
        now = self.clock()
        elapsed_s = max(now - self.since, 1e-3)
        calls = sum(self.calls.values())
        log.info(
            "dryrun.calls_per_minute",
            calls_per_minute=round(calls * 60 / elapsed_s, 1),
            budget_per_minute=round(self.budget_per_minute, 1),
            interval_s=round(elapsed_s, 1),
            records=sum(self.records.values()),
            **{endpoint: self.calls[endpoint] for endpoint in ENDPOINTS},
        )
        self.calls.clear()
        self.records.clear()
        self.since = now


def dry_settings(settings: Settings) -> Settings:
    """The same settings with a group and output topics of the dry run's own."""
    k = settings.kafka
    kafka = k.model_copy(
        update={
            "group_id": k.group_id + SUFFIX,  # the real group's offsets are never committed
            "state_topic": k.state_topic + SUFFIX,  # the real state is never written
            "dead_letter_topic": k.dead_letter_topic + SUFFIX,  # no duplicate dead letters
            "rejections_topic": k.rejections_topic + SUFFIX,
        }
    )
    return settings.model_copy(update={"kafka": kafka})


def placeholder_list_ids(audiences: Sequence[Audience]) -> dict[AudienceId, ListId]:
    """List ids without asking Marketo: given ids as they are, lists by name as -1, -2, ..."""
    return {
        AudienceId(a.id): ListId(a.list_ref.id if a.list_ref.id is not None else -(index + 1))
        for index, a in enumerate(audiences)
    }


async def run_dry(settings: Settings, report_interval_s: float = REPORT_INTERVAL_S) -> int:
    """Run the worker's loop against DryRunWriter until SIGTERM or SIGINT; return the exit code."""
    stop = asyncio.Event()
    event_loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        event_loop.add_signal_handler(sig, stop.set)
    dry = dry_settings(settings)
    k, budget = dry.kafka, dry.marketo.budget
    config = dry.kafka.client_config()
    metrics = Metrics()
    async with app.telemetry_server(dry, metrics) as health:
        partitions = ensure_topics(config, k)
        limiter = limiter_for(dry.marketo)  # never asked for a slot: nothing is sent
        writer = DryRunWriter(budget.calls_per_window * 60 / budget.window_s)
        log.info("dryrun.started", group_id=k.group_id, state_topic=k.state_topic)
        reporter = asyncio.create_task(_report_every(writer, report_interval_s))
        list_ids = placeholder_list_ids(dry.audiences)
        try:
            edges = app.Edges(config, partitions, limiter, writer, list_ids, text_converter(dry))
            return await app.serve(dry, metrics, edges, stop, health)
        finally:
            reporter.cancel()
            writer.report()  # at shutdown: the calls since the last report, drained ones included


async def _report_every(writer: DryRunWriter, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)  # a timer, not a synchronisation
        writer.report()


def text_converter(settings: Settings) -> Converter:
    """Mapped values as text: a dry run asks Marketo nothing, so it knows no field types."""
    fields = {m.field: FieldSpec(m.field, "string", None, True) for m in settings.mapping}
    fields.setdefault(settings.marketo.lookup_field, FieldSpec("email", "email", None, True))
    return Converter([(m.source, m.field) for m in settings.mapping], fields)
