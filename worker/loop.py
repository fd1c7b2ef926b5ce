"""The run loop: poll → decode → evaluate → buffer → flush → commit, as numbered in the README.

One thread, one event loop: records are processed synchronously between awaits, Marketo calls
run as tasks (worker.flusher), and offsets are committed from the ledger only (guarantee 2).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import structlog

from worker.core import snapshot
from worker.core.delivery import FLUSH_TIMEOUT_S
from worker.core.events import MAX_TS_MS, MIN_TS_MS, TsWindow, decode
from worker.core.ids import AudienceId, ProfileId, Record
from worker.core.ledger import OffsetLedger
from worker.core.membership import Audiences, transitions
from worker.core.outbox import Outbox
from worker.core.partitions import Partitions
from worker.core.profile import Outcome, ProfileState, Unmatched, apply
from worker.core.store import StateStore
from worker.errors import DeliveryFailed, PoisonMessage
from worker.flusher import Flusher
from worker.restoring import Restores
from worker.telemetry.logging import email_hash
from worker.telemetry.metrics import Metrics

log = structlog.get_logger("worker.loop")


class Consumer(Protocol):
    """The input side (implemented by worker.kafka.consumer.KafkaConsumer)."""

    def poll_batch(self, max_messages: int) -> list[Record]: ...
    def commit(self, offsets: Mapping[int, int]) -> dict[int, str | None]: ...
    def pause(self, partitions: set[int]) -> None: ...
    def resume(self, partitions: set[int]) -> None: ...


class Publisher(Protocol):
    """The output side (implemented by worker.kafka.producer.Publisher)."""

    def dead_letter(
        self,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, str | bytes | None]],
        on_lost: Callable[[str], None],
    ) -> None: ...
    def state(self, partition: int, key: bytes, value: bytes | None) -> None: ...
    def poll(self) -> None: ...
    def flush(self, timeout_s: float) -> bool: ...


@dataclass(frozen=True, slots=True)
class Core:
    """The pure state the loop keeps in step, built by app.py and shared with the flusher and
    the restores: the partitions' table, the ledger, the states and the outbox."""

    partitions: Partitions
    ledger: OffsetLedger
    store: StateStore
    outbox: Outbox
    audiences: Audiences
    paths: frozenset[str]  # the attribute paths each state retains (ALL_ATTRIBUTES: every one)


@dataclass(frozen=True, slots=True)
class LoopSettings:
    """The loop's knobs, taken from Settings by app.py."""

    topic: str
    max_event_bytes: int
    max_buffered_changes: int
    commit_interval_s: float
    # a newly assigned partition is restored no earlier than this after its assignment, so that
    # every Marketo call its previous owner started has ended (calls are bounded by the client
    # timeout), unless its changelog ends with a clean-handover marker: no call was left then
    handover_s: float = 0.0
    poll_batch: int = 500
    idle_sleep_s: float = 0.01
    # the event times accepted: from this epoch ms to this long after the wall clock's now
    # the earliest event ts accepted, and how far past the wall clock one may be (epoch ms)
    ts_bounds_ms: tuple[int, int] = (MIN_TS_MS, MAX_TS_MS)


class Loop:
    """Consumes profile events and keeps the outbox, the state and the ledger in step."""

    def __init__(
        self,
        core: Core,
        consumer: Consumer,
        publisher: Publisher,
        flusher: Flusher,
        restores: Restores,
        metrics: Metrics,
        settings: LoopSettings,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.core = core
        self.partitions = core.partitions
        self.outbox = core.outbox
        self.store = core.store
        self.ledger = core.ledger
        self.audiences = audiences = core.audiences
        self.paths = core.paths
        self.consumer = consumer
        self.publisher = publisher
        self.flusher = flusher
        self.restores = restores
        self.metrics = metrics
        self.settings = settings
        self.clock = clock  # the flusher's and the restores' too: one clock decides every wait
        self.wall_clock = wall_clock  # epoch seconds, for the accepted event times
        self.ts_window = self._ts_window()  # refreshed once a batch, not for every event
        self.last_commit = clock()
        # labelled metric children, looked up once instead of for every event
        self.outcomes = {outcome: metrics.events.labels(outcome) for outcome in Outcome}
        self.changes = {
            (item.id, member): metrics.membership_changes.labels(
                item.id, "add" if member else "remove"
            )
            for item in audiences.items
            for member in (True, False)
        }

    # -- rebalance callbacks: synchronous, in memory only (they run inside consume()) --

    def on_assign(self, partitions: set[int]) -> None:
        """New partitions: track them, keep them paused until their state is restored, which
        starts at once and waits for the handover time unless the previous owner handed over
        cleanly (worker/restoring.py)."""
        self.metrics.rebalances.inc()
        now = self.clock()
        handover_until = now + self.settings.handover_s
        for partition, epoch in self.partitions.assign(partitions, now, handover_until).items():
            self.ledger.assign(partition, epoch)
            self.store.assign(partition)
        self.consumer.pause(partitions)
        log.info("partitions.assigned", partitions=sorted(partitions))

    def on_revoke(self, partitions: set[int]) -> None:
        """Lost partitions: drop their buffered changes and state; the new owner re-reads."""
        self.metrics.rebalances.inc()
        self.outbox.drop_partitions(partitions)
        self.restores.revoke(partitions)
        for partition in partitions:
            self.ledger.revoke(partition)
            self.store.drop(partition)
            # a partition's gauges belong to its owner: a frozen value here would keep a lag
            # alert firing (or silent) after the new owner caught up
            for gauge in (self.metrics.committed_offset, self.metrics.consumer_lag):
                with contextlib.suppress(KeyError):
                    gauge.remove(str(partition))
        self.partitions.revoke(partitions)
        log.info("partitions.revoked", partitions=sorted(partitions))

    # -- the steps --

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set."""
        while not stop.is_set():
            if await self.run_once():
                # processing never awaits: without this, the Marketo calls it started (and
                # /metrics) would wait until the whole backlog was read
                await asyncio.sleep(0)
            else:
                await asyncio.sleep(self.settings.idle_sleep_s)  # idle: let flush tasks run

    async def run_once(self) -> bool:
        """One turn of the loop; return True when it read records."""
        now = self.clock()
        records = self.consumer.poll_batch(self.settings.poll_batch)  # 1. poll
        if records:
            self.ts_window = self._ts_window()
        for record in records:
            self.process(record, now)  # 2.-5. decode, evaluate, diff, buffer
        self.flusher.start_due(now)  # 6. flush due lists
        self.publisher.poll()
        if now - self.last_commit >= self.settings.commit_interval_s:
            await self.commit()  # 7. commit what the ledger released
        self.restores.start_due(now)
        self._apply_backpressure(now)  # 8. pause or resume
        return bool(records)

    def _ts_window(self) -> TsWindow:
        earliest_ms, max_future_ms = self.settings.ts_bounds_ms
        now_ms = int(self.wall_clock() * 1000)
        return TsWindow.around(now_ms, earliest_ms=earliest_ms, max_future_ms=max_future_ms)

    def process(self, record: Record, now: float) -> None:
        """Steps 2 to 5 for one record."""
        self.ledger.read(record.partition, record.offset)
        try:
            event = decode(
                record.key,
                record.value,
                max_bytes=self.settings.max_event_bytes,
                ts_window=self.ts_window,
            )
        except PoisonMessage as exc:
            self._dead_letter(record, exc)
            return
        before = self.store.get(event.profile_id, record.partition)
        state = apply(before, event, record.offset, self.paths)
        if state is None:
            self.outcomes[Outcome.STALE].inc()
            return
        state.desired = self.audiences.desired(state, before)
        flips = transitions(before.desired if before else frozenset(), state.desired)
        self.store.put(record.partition, event.profile_id, state)
        if flips:
            self._buffer(event.profile_id, state, record, flips, now)
        # after the list changes: a delete cancels a buffered lead sync, then nothing awaits it
        self.outbox.erase_if_deleted(event.profile_id, state, record.partition, record.offset, now)
        outcome = Outcome.APPLIED if flips else Outcome.NO_CHANGE
        if state.email is None and not state.deleted:
            outcome = Outcome.UNMATCHED  # no valid match key: never sent
            self._unmatched(event.email)
        self.outcomes[outcome].inc()

    def _unmatched(self, refused_email: str | None) -> None:
        """Count why a profile is unmatched; `refused_email`: the event's invalid email."""
        if refused_email is None:
            self.metrics.unmatched.labels(Unmatched.NO_EMAIL).inc()
            return
        self.metrics.unmatched.labels(Unmatched.INVALID_EMAIL).inc()
        log.info("event.unmatched", reason=Unmatched.INVALID_EMAIL, email=email_hash(refused_email))

    def _buffer(
        self,
        profile: ProfileId,
        state: ProfileState,
        record: Record,
        flips: Mapping[AudienceId, bool],
        now: float,
    ) -> None:
        self.outbox.enqueue(
            profile,
            state,
            flips,
            record.partition,
            record.offset,
            now,
            explicit=record.offset < self.partitions.replay_until(record.partition),
        )
        for audience, member in flips.items():
            counter = self.changes.get((audience, member))
            if counter is not None:
                counter.inc()

    def _dead_letter(self, record: Record, exc: PoisonMessage) -> None:
        headers: list[tuple[str, str | bytes | None]] = [
            ("error.kind", exc.kind),
            ("error.message", str(exc)[:1000]),
            ("source.topic", self.settings.topic),
            ("source.partition", str(record.partition)),
            ("source.offset", str(record.offset)),
        ]
        self.metrics.dead_letters.labels(exc.kind).inc()
        self.outcomes[Outcome.INVALID].inc()
        log.warning(
            "event.dead_lettered", kind=exc.kind, partition=record.partition, offset=record.offset
        )

        def lost(reason: str) -> None:
            # may run in the flush thread, at delivery: counters and logs are thread-safe
            self.metrics.dead_letter_failures.labels(reason).inc()
            log.error(
                "event.dead_letter_failed",
                kind=exc.kind,
                reason=reason,
                partition=record.partition,
                offset=record.offset,
            )

        self.publisher.dead_letter(record.key, record.value, headers, lost)

    async def commit(self, *, final: bool = False) -> None:
        """Write dirty states, wait for Kafka to have every output record, commit the ledger.
        The `final` commit of a shutdown writes every changed state."""
        self.last_commit = self.clock()
        due = self.ledger.committable()  # before the await: only what is settled right now
        dirty = self.store.take_dirty(None if final else due, self.outbox.outstanding)
        self.metrics.show_audiences(self.store.tally.totals(self.outbox.lists))
        for partition, profile, data in dirty:
            self.publisher.state(partition, profile.encode(), data)
        if not await asyncio.to_thread(self.publisher.flush, FLUSH_TIMEOUT_S):
            raise DeliveryFailed("output records were not delivered; stopping without commit")
        due = {p: o for p, o in due.items() if p in self.partitions}
        if not due:
            return
        for partition, error in self.consumer.commit(due).items():
            if error is None:
                self.ledger.committed(partition, due[partition])
                self.metrics.committed_offset.labels(str(partition)).set(due[partition])
            else:
                self.metrics.commit_failures.inc()
                log.warning("offsets.commit_failed", partition=partition, error=error)

    def _apply_backpressure(self, now: float) -> None:
        full = self.outbox.size() >= self.settings.max_buffered_changes
        blocked = full or self.flusher.blocked(now)
        paused = self.partitions.paused()
        to_pause = self.partitions.active() - paused if blocked else set()
        if to_pause:
            self.consumer.pause(to_pause)
            self.partitions.pause(to_pause)
            paused |= to_pause
            log.info("partitions.paused", partitions=sorted(to_pause), buffer_full=full)
        elif (
            not blocked
            and paused
            # at least 1: with a bound of 1, half of it rounds to 0 and nothing would resume
            and self.outbox.size() < max(1, self.settings.max_buffered_changes // 2)
        ):
            self.consumer.resume(self.partitions.resume_all())
            log.info("partitions.resumed", partitions=sorted(paused))
            paused = set()
        self.metrics.paused_partitions.set(len(paused))
        self.metrics.state_profiles.set(len(self.store))
        for audience, buffer in self.outbox.lists.items():
            self.metrics.buffered_changes.labels(audience).set(len(buffer))

    async def shutdown(self, deadline_s: float) -> bool:
        """Stop fetching, flush within the deadline, commit."""
        if self.partitions:
            self.consumer.pause(set(self.partitions))
        flushed = await self.flusher.drain(deadline_s)
        await self.commit(final=True)
        # every call answered, and no bulk import still running in Marketo between polls (its
        # rows could land after a new owner's removal): the state written is complete
        if not self.flusher.tasks and not (self.flusher.bulk and self.flusher.bulk.running):
            for partition in self.partitions.active():
                self.publisher.state(partition, snapshot.CLEAN_HANDOVER, self.audiences.fingerprint)
            await asyncio.to_thread(self.publisher.flush, FLUSH_TIMEOUT_S)
        log.info(
            "worker.drained",
            flushed_all=flushed,
            buffered=self.outbox.size(),
            held_offsets=self.ledger.held_count(),
            committable=self.ledger.committable(),
        )
        return flushed
