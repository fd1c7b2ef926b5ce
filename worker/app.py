"""The composition root: builds every part from Settings, runs the loop, drains on SIGTERM.

Only this module knows the concrete classes; nothing imports it but the command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from zoneinfo import ZoneInfo

import structlog

from worker.core.budget import Budget, BudgetLimits
from worker.core.ids import AudienceId, ListId
from worker.core.ledger import OffsetLedger
from worker.core.membership import AudienceRule, Audiences
from worker.core.outbox import Outbox
from worker.core.store import StateStore
from worker.errors import ConfigError, RequestRejected
from worker.flusher import Flusher, LeadFields
from worker.kafka.changelog import read_end_offset, read_partition
from worker.kafka.consumer import KafkaConsumer
from worker.kafka.producer import Publisher
from worker.kafka.stats import consumer_lag
from worker.kafka.topics import ensure_topics
from worker.loop import Loop, LoopSettings
from worker.marketo.client import MarketoClient
from worker.marketo.limiter import Limiter
from worker.provisioning import resolve_lists
from worker.settings import Settings
from worker.telemetry.http import start_http
from worker.telemetry.metrics import Metrics
from worker.telemetry.observer import MetricsObserver

log = structlog.get_logger("worker.app")


def kafka_config(settings: Settings) -> dict[str, str]:
    """librdkafka settings shared by every client: bootstrap plus the pass-through options."""
    return {
        "bootstrap.servers": settings.kafka.bootstrap_servers,
        **{key: str(value) for key, value in settings.kafka.options.items()},
    }


def build_audiences(settings: Settings) -> Audiences:
    """The core's view of the configured audiences, rules compiled once."""
    items = [AudienceRule(AudienceId(a.id), a.compiled_rule) for a in settings.audiences]
    return Audiences(items, settings.governance.consent_path)


def build_limiter(settings: Settings, metrics: Metrics) -> Limiter:
    """The call budget; it starts with no share until partitions are assigned."""
    budget = settings.marketo.budget
    limits = BudgetLimits(
        calls_per_window=budget.calls_per_window,
        window_s=budget.window_s,
        concurrency=budget.concurrency,
        daily_quota=budget.daily_quota,
        daily_reserve=budget.daily_reserve,
        # a call counts until it ends: the client's timeout bounds it (plus a margin)
        max_call_s=settings.marketo.request_timeout_s + 1.0,
    )
    return Limiter(
        Budget(limits, share=0.0, now=time.monotonic()),
        quota_zone=ZoneInfo(budget.quota_timezone),
        quota_probe_s=budget.quota_probe_s,
        on_wait=metrics.budget_wait.inc,
    )


async def run(settings: Settings) -> int:
    """Run the worker until SIGTERM or SIGINT; return the process exit code."""
    metrics = Metrics()
    stop = asyncio.Event()
    event_loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):  # first thing: a stop during start-up is graceful
        event_loop.add_signal_handler(sig, stop.set)
    config = kafka_config(settings)
    k = settings.kafka
    partitions = ensure_topics(
        config, k.topic, k.dead_letter_topic, k.rejections_topic, k.state_topic
    )
    limiter = build_limiter(settings, metrics)
    limiter.set_share(1.0 / partitions)  # enough for start-up calls; set again on assignment
    m = settings.marketo
    client = MarketoClient(
        m.base_url,
        m.client_id,
        m.client_secret,
        limiter,
        timeout_s=m.request_timeout_s,
        ca_bundle=m.ca_bundle,
        observer=MetricsObserver(metrics),
    )
    try:
        try:
            limiter.observe_usage(await client.usage_today())  # also proves the credentials
        except RequestRejected as exc:
            # bad credentials (401) or base_url (3xx/4xx): a configuration error, not a crash
            raise ConfigError(f"marketo: {exc}: check base_url and MARKETO_CLIENT_*") from None
        list_ids = await resolve_lists(client, settings.audiences, m.list_folder)
        return await _serve(settings, metrics, config, partitions, limiter, client, list_ids, stop)
    finally:
        await client.close()


async def _serve(
    settings: Settings,
    metrics: Metrics,
    config: dict[str, str],
    partitions: int,
    limiter: Limiter,
    client: MarketoClient,
    list_ids: dict[AudienceId, ListId],
    stop: asyncio.Event,
) -> int:
    audiences = build_audiences(settings)
    paths = audiences.paths | {mapping.source for mapping in settings.mapping}
    outbox = Outbox(list(list_ids), settings.flush.max_batch, settings.flush.max_linger_s)
    store, ledger = StateStore(), OffsetLedger()
    k = settings.kafka
    publisher = Publisher(config, k.dead_letter_topic, k.rejections_topic, k.state_topic)
    fields = LeadFields(
        settings.marketo.lookup_field,
        [(mapping.source, mapping.field) for mapping in settings.mapping],
        match_only=settings.marketo.person_creation == "match_only",
    )
    flusher = Flusher(
        outbox,
        client,
        store,
        ledger,
        publisher,
        metrics,
        list_ids,
        fields,
        max_in_flight=settings.marketo.budget.concurrency,
    )
    restorer = lambda p: read_partition(config, k.state_topic, p, stop.is_set)  # noqa: E731
    loop: Loop

    def assigned(parts: set[int]) -> None:
        loop.on_assign(parts)
        limiter.set_share(len(loop.assigned) / partitions)

    def revoked(parts: set[int]) -> None:
        loop.on_revoke(parts)
        limiter.set_share(len(loop.assigned) / partitions)

    def on_stats(stats_json: str) -> None:
        for partition, lag in consumer_lag(stats_json, k.topic).items():
            metrics.consumer_lag.labels(str(partition)).set(lag)
        metrics.daily_quota_remaining.set(limiter.quota_remaining())
        metrics.ready.set(1 if _readiness(loop)[0] else 0)

    consumer = KafkaConsumer(
        {**config, "group.id": k.group_id}, k.topic, assigned, revoked, on_stats=on_stats
    )
    loop = Loop(
        consumer,
        publisher,
        flusher,
        audiences,
        frozenset(paths),
        metrics,
        LoopSettings(
            k.topic,
            k.max_event_bytes,
            settings.flush.max_buffered_changes,
            settings.flush.commit_interval_s,
            handover_s=settings.marketo.request_timeout_s + 1.0,
        ),
        restorer,
        parked_until=limiter.quota_parked_until,
        end_offset=lambda p: read_end_offset(config, k.topic, p),
    )
    t = settings.telemetry
    runner, port = await start_http(
        metrics.registry,
        t.metrics_host,
        t.metrics_port,
        alive=lambda: (True, "alive"),
        ready=lambda: _readiness(loop),
    )
    log.info("worker.started", metrics_port=port, partitions=partitions, audiences=len(list_ids))
    try:
        await loop.run(stop)
        log.info("worker.stopping", deadline_s=settings.flush.shutdown_deadline_s)
        flushed = await loop.shutdown(settings.flush.shutdown_deadline_s)
    finally:
        with contextlib.suppress(Exception):
            consumer.close()  # leaves the group: a rebalance hands our partitions over now
        await runner.cleanup()
    log.info("worker.stopped", flushed_all=flushed)
    return 0


def _readiness(loop: Loop) -> tuple[bool, str]:
    if not loop.assigned:
        return False, "no partitions assigned"
    if loop.restoring:
        return False, f"restoring {len(loop.restoring)} partitions"
    return True, f"ready: {len(loop.assigned)} partitions"
