"""The composition root: builds every part from Settings, runs the loop, drains on SIGTERM.

Only this module knows the concrete classes; nothing imports it but the command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import structlog

from worker.bulk_lane import BulkWriter
from worker.core import activation
from worker.core.budget import portion
from worker.core.fields import Converter
from worker.core.ids import AudienceId, ListId, ProfileId
from worker.core.ledger import OffsetLedger
from worker.core.membership import AudienceRule, Audiences
from worker.core.outbox import Outbox
from worker.core.partitions import Partitions
from worker.core.snapshot import StateCodec
from worker.core.store import StateStore
from worker.flusher import Flusher, LeadFields, ListWriter
from worker.heap import pace_collector, release_free_memory
from worker.kafka.changelog import read_end_offset, read_partition
from worker.kafka.consumer import KafkaConsumer
from worker.kafka.producer import TOPIC_MAX_BYTES, Publisher
from worker.kafka.stats import consumer_lag
from worker.kafka.topics import ensure_topics, max_message_bytes
from worker.loop import Core, Loop, LoopSettings
from worker.marketo.client import connect
from worker.marketo.limiter import Limiter, limiter_for
from worker.quota_watch import QuotaWatch
from worker.restoring import Restores
from worker.settings import Settings
from worker.startup.prepare import prepare
from worker.startup.progress import StartUp
from worker.telemetry.http import start_http
from worker.telemetry.metrics import Metrics
from worker.telemetry.observer import MetricsObserver

log = structlog.get_logger("worker.app")


def build_audiences(settings: Settings) -> Audiences:
    """The core's view of the configured audiences, rules compiled once."""
    items = [AudienceRule(AudienceId(a.id), a.compiled_rule) for a in settings.audiences]
    return Audiences(items, settings.governance.consent_path)


@dataclass(frozen=True, slots=True)
class Edges:
    """What `serve` needs from outside: Kafka settings, the budget and where calls go."""

    config: dict[str, str]  # librdkafka settings shared by every client
    partitions: int  # of the input topic
    limiter: Limiter
    writer: ListWriter
    list_ids: dict[AudienceId, ListId]
    converter: Converter
    bulk: BulkWriter | None = None  # Marketo's bulk import; None: no bulk lane (a dry run)
    quota_watch: QuotaWatch | None = None  # re-reads the usage stats; None: never (a dry run)


def handle_stop_signals() -> asyncio.Event:
    """Return an event set by SIGTERM or SIGINT (installed first: a stop during start-up is
    graceful too)."""
    stop = asyncio.Event()
    event_loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        event_loop.add_signal_handler(sig, stop.set)
    return stop


class Health:
    """What the probes answer: alive from the start, ready once the loop is up and restored."""

    def __init__(self, port: int) -> None:
        self.port = port  # the bound metrics port (port 0 picks one)
        self.loop: Loop | None = None  # set by `serve`

    def ready(self) -> tuple[bool, str]:
        """/readyz: not before start-up is over."""
        return (False, "starting") if self.loop is None else _readiness(self.loop.partitions)


@contextlib.asynccontextmanager
async def telemetry_server(settings: Settings, metrics: Metrics) -> AsyncIterator[Health]:
    """Serve /metrics, /healthz and /readyz for the block. Opened before anything else: a
    port in use is a ConfigError with nothing else to close, and a long start-up answers
    /healthz."""
    t = settings.telemetry
    health = Health(0)
    runner, health.port = await start_http(
        metrics.registry, t.metrics_host, t.metrics_port, lambda: (True, "alive"), health.ready
    )
    try:
        yield health
    finally:
        await runner.cleanup()


async def run(settings: Settings) -> int:
    """Run the worker until SIGTERM or SIGINT; return the process exit code.

    Every resource is closed however start-up ends: a ConfigError, an error, or a stop."""
    pace_collector()
    metrics = Metrics()
    stop = handle_stop_signals()
    k, m = settings.kafka, settings.marketo
    async with telemetry_server(settings, metrics) as health:
        config = k.client_config()
        partitions = ensure_topics(config, k)
        progress = StartUp()
        limiter = limiter_for(
            m,
            initial_share=1.0 / partitions,
            on_wait=metrics.budget_wait.inc,
            on_delay=progress.budget_wait,
        )
        client = connect(m, limiter, observer=MetricsObserver(metrics))
        watch = QuotaWatch(
            client,
            limiter,
            metrics,
            m.budget.usage_interval_s,
            exports=client.bulk(),
            quota_zone=ZoneInfo(m.budget.quota_timezone),
        )
        try:
            prepared = await progress.unless_stopped(
                prepare(settings, client, watch, progress), stop
            )
            if prepared is None:
                return 0
            converter, list_ids = prepared
            edges = Edges(
                config, partitions, limiter, client, list_ids, converter, client.bulk(), watch
            )
            return await serve(settings, metrics, edges, stop, health)
        finally:
            await client.close()


async def serve(
    settings: Settings, metrics: Metrics, edges: Edges, stop: asyncio.Event, health: Health
) -> int:
    """Consume and flush to `edges.writer` until `stop` is set; drain, commit, leave the group."""
    loop, consumer = build_loop(settings, metrics, edges, stop)
    watching = (
        None if edges.quota_watch is None else asyncio.create_task(edges.quota_watch.run(stop))
    )
    try:
        health.loop = loop
        log.info(
            "worker.started",
            metrics_port=health.port,
            partitions=edges.partitions,
            audiences=len(edges.list_ids),
        )
        await loop.run(stop)
        log.info("worker.stopping", deadline_s=settings.flush.shutdown_deadline_s)
        flushed = await loop.shutdown(settings.flush.shutdown_deadline_s)
    finally:
        if watching is not None:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watching
        with contextlib.suppress(Exception):
            consumer.close()  # leaves the group: a rebalance hands our partitions over now
    log.info("worker.stopped", flushed_all=flushed)
    return 0


def build_core(
    settings: Settings, list_ids: Mapping[AudienceId, ListId], *, bulk: bool = False
) -> Core:
    """The pure state: the partitions' table, the ledger, the profile states and the outbox;
    with `bulk` (a bulk client), the bulk lane for large backlogs of adds."""
    audiences = build_audiences(settings)
    paths = settings.retained_paths()
    ledger = OffsetLedger()
    store = StateStore(StateCodec(), on_corrupt=_corrupt_state)
    outbox = Outbox(
        ledger,
        store,
        list(list_ids),
        settings.flush.max_batch,
        settings.flush.max_linger_s,
        delete_persons=settings.marketo.delete_persons,
        bulk_threshold=settings.bulk_threshold() if bulk else None,
    )
    return Core(Partitions(), ledger, store, outbox, audiences, paths)


def build_flusher(
    settings: Settings, metrics: Metrics, edges: Edges, publisher: Publisher, core: Core
) -> Flusher:
    """The flusher that works the outbox and the state."""
    fields = LeadFields(
        settings.marketo.lookup_field,
        edges.converter,
        match_only=settings.marketo.person_creation == "match_only",
    )
    return Flusher(
        core.outbox,
        edges.writer,
        core.store,
        publisher,
        metrics,
        edges.list_ids,
        fields,
        max_in_flight=settings.marketo.budget.concurrency,
        parked_until=edges.limiter.quota_parked_until,
        room=edges.limiter,
        bulk=edges.bulk,
        bulk_slots=lambda: import_slots(settings, len(core.partitions) / edges.partitions),
    )


def import_slots(settings: Settings, share: float) -> int:
    """This replica's bulk imports in Marketo's queue at most: its share (assigned / total
    partitions) of the group's `marketo.budget.bulk_imports`, floored but at least one while it
    has a partition, so every partition's backlog can go by bulk. The group stays within the
    setting while it has no more replicas than that; each further replica adds one at most."""
    return portion(settings.marketo.budget.bulk_imports, min(1.0, share))


def build_loop(
    settings: Settings, metrics: Metrics, edges: Edges, stop: asyncio.Event
) -> tuple[Loop, KafkaConsumer]:
    """The consumer and the loop with its parts; the consumer joins the group last, once the
    rebalance callbacks have all they drive."""
    k, config, limiter = settings.kafka, edges.config, edges.limiter
    publisher = Publisher(
        config,
        k.dead_letter_topic,
        k.rejections_topic,
        k.state_topic,
        max_message_bytes(config, k.dead_letter_topic, TOPIC_MAX_BYTES),
    )
    core = build_core(settings, edges.list_ids, bulk=edges.bulk is not None)
    partitions = core.partitions

    def on_stats(stats_json: str) -> None:
        for partition, lag in consumer_lag(stats_json, k.topic).items():
            if partition in partitions:  # stats may still name a partition just revoked
                metrics.consumer_lag.labels(str(partition)).set(lag)
        metrics.daily_quota_remaining.set(limiter.quota_remaining())
        metrics.daily_quota_allowed.set(limiter.quota_allowed())  # moves with the share
        metrics.ready.set(1 if _readiness(partitions)[0] else 0)

    consumer = KafkaConsumer({**config, "group.id": k.group_id}, k.topic, on_stats=on_stats)
    restores = Restores(
        partitions=partitions,
        store=core.store,
        outbox=core.outbox,
        audiences=core.audiences,
        metrics=metrics,
        read=lambda p: read_partition(config, k.state_topic, p, stop.is_set),
        write_state=publisher.state,
        flush=publisher.flush,
        end_offset=lambda p: read_end_offset(config, k.topic, p),
        resume=consumer.resume,
        # our start, wall clock: in a rollout the later-started replicas' definitions win
        definitions=activation.definitions(core.audiences, edges.list_ids, time.time()),
        release_memory=release_free_memory,
    )
    flusher = build_flusher(settings, metrics, edges, publisher, core)
    loop = Loop(core, consumer, publisher, flusher, restores, metrics, loop_settings(settings))

    def sharing(rebalance: Callable[[set[int]], None]) -> Callable[[set[int]], None]:
        def handle(parts: set[int]) -> None:
            rebalance(parts)
            # at most all of it: partitions added to the input since start-up count for
            # nothing (their state partitions do not exist; writing state there stops the worker)
            limiter.set_share(min(1.0, len(partitions) / edges.partitions))

        return handle

    consumer.subscribe(sharing(loop.on_assign), sharing(loop.on_revoke))
    return loop, consumer


def _corrupt_state(_profile: ProfileId) -> None:
    log.warning("state.corrupt_record", found="on use")  # dropped: the next event rebuilds it


def loop_settings(settings: Settings) -> LoopSettings:
    """The loop's knobs; the handover defaults to the longest a Marketo call can take."""
    handover_s = settings.flush.handover_s
    return LoopSettings(
        settings.kafka.topic,
        settings.kafka.max_event_bytes,
        settings.flush.max_buffered_changes,
        settings.flush.commit_interval_s,
        handover_s=handover_s if handover_s is not None else settings.marketo.request_timeout_s + 1,
        ts_bounds_ms=settings.kafka.ts_bounds_ms(),
    )


def _readiness(partitions: Partitions) -> tuple[bool, str]:
    if not partitions:
        return False, "no partitions assigned"
    stood_down = len(partitions.stood_down())
    if stood_down:
        # a newer replica activated other audience definitions there: this one is outdated
        return False, f"stood down on {stood_down} partitions: newer audience definitions"
    restoring = len(partitions.restoring())
    if restoring:
        return False, f"restoring {restoring} partitions"
    return True, f"ready: {len(partitions)} partitions"
