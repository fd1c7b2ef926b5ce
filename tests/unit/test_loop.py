"""The run loop with fakes for Kafka (unit tier): restore retries, records flow after restore."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterable, Mapping

import orjson
from prometheus_client import generate_latest

from worker.core.events import MIN_TS_MS
from worker.core.fields import Converter, FieldSpec
from worker.core.ids import AudienceId, LeadId, ListId, ProfileId, Record
from worker.core.ledger import OffsetLedger
from worker.core.membership import AudienceRule, Audiences
from worker.core.outbox import Outbox
from worker.core.profile import ProfileState
from worker.core.rules import compile_rule
from worker.core.snapshot import CLEAN_HANDOVER, StateCodec
from worker.core.store import StateStore
from worker.flusher import Flusher, LeadFields
from worker.loop import Loop, LoopSettings
from worker.restoring import Restorer
from worker.telemetry.metrics import Metrics


class FakeConsumer:
    """Records pause/resume; hands out no records."""

    def __init__(self) -> None:
        self.resumed: set[int] = set()

    def poll_batch(self, max_messages: int) -> list[Record]:
        return []

    def commit(self, offsets: Mapping[int, int]) -> dict[int, str | None]:
        return dict.fromkeys(offsets)

    def pause(self, partitions: set[int]) -> None:
        self.resumed -= partitions

    def resume(self, partitions: set[int]) -> None:
        self.resumed |= partitions


class FakePublisher:
    """Accepts everything and keeps the state records; every flush succeeds."""

    def __init__(self) -> None:
        self.states: list[tuple[int, bytes, bytes | None]] = []

    def dead_letter(self, key: object, value: object, headers: object, on_lost: object) -> None: ...
    def state(self, partition: int, key: bytes, value: bytes | None) -> None:
        self.states.append((partition, key, value))

    def rejection(self, rejection: object, list_ids: object, rejected_at_ms: int) -> None: ...
    def poll(self) -> None: ...
    def flush(self, timeout_s: float) -> bool:
        return True


class FlakyRestorer:
    """Fails the first read of the changelog (a broker restart), then finds it empty."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, partition: int) -> Iterable[list[tuple[bytes, bytes | None]]]:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("broker transport failure")
        return []


FR = AudienceId("fr")
AUDIENCES = Audiences([AudienceRule(FR, compile_rule('country == "FR"'))])
CODEC = StateCodec(AUDIENCES.paths)


def make_loop(
    restorer: Restorer,
    consumer: FakeConsumer,
    clock: list[float],
    publisher: FakePublisher | None = None,
    max_buffered: int = 1000,
) -> Loop:
    audiences = AUDIENCES
    fields = {"email": FieldSpec("email", "email", 255, True)}
    flusher = Flusher(
        Outbox(OffsetLedger(), [AudienceId("fr")], 300, 1.0),
        None,  # type: ignore[arg-type]
        StateStore(StateCodec(audiences.paths)),
        FakePublisher(),
        Metrics(),
        {AudienceId("fr"): ListId(1)},
        LeadFields("email", Converter([], fields), match_only=False),
        max_in_flight=1,
        clock=lambda: clock[0],
    )
    settings = LoopSettings("in", 65536, max_buffered, 1.0, handover_s=0.0)
    return Loop(
        consumer,
        publisher or FakePublisher(),
        flusher,
        audiences,
        audiences.paths,
        Metrics(),  # type: ignore[arg-type]
        settings,
        restorer,
        clock=lambda: clock[0],
    )


async def restore(loop: Loop, consumer: FakeConsumer) -> None:
    """Assign partition 0 and turn the loop until its restore (in a thread) resumed it."""
    loop.on_assign({0})
    deadline = time.monotonic() + 10
    while 0 not in consumer.resumed and time.monotonic() < deadline:
        await loop.run_once()
        await asyncio.sleep(0.01)
    assert consumer.resumed == {0}


def saved(country: str, desired: set[AudienceId], acked: set[AudienceId]) -> bytes:
    """An encoded state as the changelog holds it."""
    state = ProfileState(
        ts_ms=1,
        offset=0,
        email="a@x.io",
        attributes={"country": country},
        desired=frozenset(desired),
        acked=frozenset(acked),
        lead_id=LeadId(7),
    )
    return CODEC.encode(state)


async def test_after_a_clean_handover_only_unacknowledged_states_are_resent() -> None:
    """With the marker of these rules last, a state Marketo acknowledged is kept as it is and
    one it did not is queued again."""
    records = [
        CODEC.layout_record(),
        (b"done", saved("FR", {FR}, {FR})),
        (b"waiting", saved("FR", {FR}, set())),
        (CLEAN_HANDOVER, AUDIENCES.fingerprint),
    ]
    consumer = FakeConsumer()
    loop = make_loop(lambda _p: [records], consumer, [0.0])
    await restore(loop, consumer)
    buffer = loop.outbox.lists[FR]
    assert (buffer.pending(ProfileId("waiting")), buffer.pending(ProfileId("done"))) == (True, None)
    assert len(loop.store) == 2


async def test_after_a_crash_every_state_is_evaluated_afresh_and_rewritten() -> None:
    """Without the marker, a state whose membership the rules now decide otherwise is
    corrected in memory and written back at the next commit."""
    records = [CODEC.layout_record(), (b"p1", saved("FR", set(), set()))]
    consumer = FakeConsumer()
    loop = make_loop(lambda _p: [records], consumer, [0.0])
    await restore(loop, consumer)
    state = loop.store.get(ProfileId("p1"))
    assert state is not None
    assert state.desired == {FR}
    assert [profile for _, profile, _ in loop.store.take_dirty()] == ["p1"]


async def test_a_restore_writes_the_layout_record_only_when_the_partition_lacks_it() -> None:
    """States written from now on must be readable later: the layout is recorded once."""
    written = []
    for records in ([], [CODEC.layout_record()]):
        consumer, publisher = FakeConsumer(), FakePublisher()
        loop = make_loop(lambda _p, r=records: [r], consumer, [0.0], publisher)
        await restore(loop, consumer)
        written.append(publisher.states)
    assert written == [[(0, *CODEC.layout_record())], []]


async def test_a_failed_restore_is_retried_and_the_partition_resumes() -> None:
    """A restore that fails (Kafka unreachable) is retried a second later, then the partition
    is resumed; it never stays paused for good."""
    consumer, restorer, clock = FakeConsumer(), FlakyRestorer(), [100.0]
    loop = make_loop(restorer, consumer, clock)
    loop.on_assign({0})
    deadline = time.monotonic() + 10  # the restore runs in a thread: wait for it, bounded
    while 0 not in consumer.resumed and time.monotonic() < deadline:
        await loop.run_once()
        await asyncio.sleep(0.01)
        clock[0] += 0.1  # the fake clock passes the one-second retry delay
    assert restorer.calls == 2
    assert consumer.resumed == {0}
    assert not loop.restores


class BacklogConsumer(FakeConsumer):
    """A backlog of 100 batches of (undecodable) records; a Marketo call starts at the first."""

    def __init__(self, stop: asyncio.Event) -> None:
        super().__init__()
        self.stop = stop
        self.batches = 0
        self.call_ran_after: list[int] = []

    def poll_batch(self, max_messages: int) -> list[Record]:
        self.batches += 1
        if self.batches == 1:
            asyncio.get_running_loop().create_task(self.call())
        if self.batches == 100:
            self.stop.set()
        return [Record(0, self.batches, b"k", b"not json")]

    async def call(self) -> None:
        self.call_ran_after.append(self.batches)


async def test_a_call_started_during_a_backlog_runs_before_the_next_batch() -> None:
    """The loop lets other tasks (Marketo calls, /metrics) run between batches of a backlog."""
    stop = asyncio.Event()
    consumer = BacklogConsumer(stop)
    await make_loop(lambda _p: [], consumer, [0.0]).run(stop)
    assert consumer.call_ran_after == [1]


def upsert(offset: int, country: str) -> Record:
    body = {
        "profile_id": "p1",
        "ts": offset + 1,
        "op": "upsert",
        "identities": {"email": "a@x.io"},
        "attributes": {"country": country},
    }
    return Record(0, offset, b"p1", orjson.dumps(body))


async def test_a_buffer_bound_of_one_pauses_and_resumes() -> None:
    """With flush.max_buffered_changes 1, a full buffer pauses the partition and an empty one
    resumes it (half of 1 rounds to 0: the resume bound is at least 1)."""
    consumer = FakeConsumer()
    loop = make_loop(lambda _p: [], consumer, [0.0], max_buffered=1)
    await restore(loop, consumer)
    loop.process(upsert(0, "FR"), 0.0)  # enters: a lead sync and an add wait
    await loop.run_once()
    paused = 0 not in consumer.resumed
    loop.process(upsert(1, "DE"), 0.0)  # exits before any flush: nothing waits any more
    await loop.run_once()
    assert (paused, consumer.resumed) == (True, {0})


def test_a_revoked_partition_leaves_no_gauge_behind() -> None:
    """Its committed offset and lag are the new owner's to report; a frozen value here would
    keep a lag alert firing."""
    loop = make_loop(lambda _p: [], FakeConsumer(), [0.0])
    loop.on_assign({0})
    loop.metrics.committed_offset.labels("0").set(5)
    loop.metrics.consumer_lag.labels("0").set(9)
    loop.on_revoke({0})
    exported = generate_latest(loop.metrics.registry).decode()
    assert 'partition="0"' not in exported


class DeadLetterPublisher(FakePublisher):
    """Keeps each dead letter's headers; reports every one as refused when `refuse` is set."""

    def __init__(self, refuse: str | None = None) -> None:
        super().__init__()
        self.refuse = refuse
        self.dead: list[dict[str, object]] = []

    def dead_letter(self, key: object, value: object, headers: object, on_lost: object) -> None:
        self.dead.append(dict(headers))  # type: ignore[call-overload]
        if self.refuse is not None:
            on_lost(self.refuse)  # type: ignore[operator]


def test_an_event_later_than_the_wall_clock_allows_is_dead_lettered_as_ts_future() -> None:
    """The loop bounds ts by its wall clock: a ts past now plus the allowed future is refused."""
    publisher = DeadLetterPublisher()
    loop = make_loop(lambda _p: [], FakeConsumer(), [0.0], publisher=publisher)
    loop.settings = dataclasses.replace(loop.settings, ts_bounds_ms=(MIN_TS_MS, 1_000))
    loop.wall_clock = lambda: 0.0  # now is epoch ms 0, so ts up to 1000 are accepted
    loop.ts_window = loop._ts_window()
    loop.process(upsert(999, "FR"), 0.0)  # ts 1000: exactly the bound, accepted
    loop.process(upsert(1000, "FR"), 0.0)  # ts 1001: past it
    assert [headers["error.kind"] for headers in publisher.dead] == ["ts_future"]


def test_a_dead_letter_kafka_refuses_is_counted_by_reason_and_the_loop_goes_on() -> None:
    """A dead letter Kafka refuses is counted in dead_letter_failures_total{reason}."""
    publisher = DeadLetterPublisher(refuse="msg_size_too_large")
    loop = make_loop(lambda _p: [], FakeConsumer(), [0.0], publisher=publisher)
    loop.on_assign({0})
    loop.process(Record(0, 7, b"p1", b"not json"), 0.0)
    loop.process(upsert(8, "FR"), 0.0)
    failures = loop.metrics.dead_letter_failures.labels("msg_size_too_large")._value.get()
    assert (failures, loop.store.get(ProfileId("p1"), 0) is not None) == (1.0, True)
