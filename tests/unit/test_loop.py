"""The run loop with fakes for Kafka and Marketo (unit tier): restores, backpressure, the flow of
records after a restore, dead letters and the gauges of revoked partitions."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable

import orjson
from prometheus_client import generate_latest

from tests.fakes import (
    Changelog,
    FakeClock,
    FakeConsumer,
    FakePublisher,
    ScriptedWriter,
    run_until_idle,
)
from tests.unit.conftest import AUDIENCES, FR, LISTS, MakeLoop
from worker.core.activation import definitions, record
from worker.core.events import MIN_TS_MS
from worker.core.ids import AudienceId, LeadId, ProfileId, Record
from worker.core.profile import ProfileState
from worker.core.snapshot import CLEAN_HANDOVER, StateCodec, layout_of
from worker.errors import MarketoUnavailable
from worker.loop import Loop
from worker.restoring import Restorer

CODEC = StateCodec()
# the definitions record of the loop's own audiences: no activation is due
RECORDED = record(definitions(AUDIENCES, LISTS, 0.0))


class FlakyRestorer:
    """Fails the first read of the changelog (a broker restart), then finds it empty."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, partition: int) -> Iterable[list[tuple[bytes, bytes | None]]]:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("broker transport failure")
        return []


def reading(changelog: Changelog) -> Restorer:
    """A changelog read back as one batch."""
    return lambda _partition: [changelog]


async def restore(loop: Loop, consumer: FakeConsumer) -> None:
    """Assign partition 0 and turn the loop until its restore (in a thread) resumed it."""
    loop.on_assign({0})
    await run_until_idle(loop)
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


def layout_record() -> tuple[bytes, bytes]:
    """The control record of the layout `saved` states (and `upsert` events) are written under."""
    layout = layout_of(saved("FR", set(), set()))
    assert layout is not None
    return CODEC.layout_record(layout)


async def test_after_a_clean_handover_only_unacknowledged_states_are_resent(
    make_loop: MakeLoop, consumer: FakeConsumer
) -> None:
    """With the marker of these rules last, a state Marketo acknowledged is kept as it is and
    one it did not is queued again."""
    records: Changelog = [
        layout_record(),
        (b"done", saved("FR", {FR}, {FR})),
        (b"waiting", saved("FR", {FR}, set())),
        (CLEAN_HANDOVER, AUDIENCES.fingerprint),
    ]
    loop = make_loop(restorer=lambda _p: [records])
    await restore(loop, consumer)
    buffer = loop.outbox.lists[FR]
    assert (buffer.pending(ProfileId("waiting")), buffer.pending(ProfileId("done"))) == (True, None)
    assert len(loop.store) == 2


async def test_after_a_clean_handover_the_restore_does_not_wait_for_the_handover_time(
    make_loop: MakeLoop, consumer: FakeConsumer
) -> None:
    """The marker says every call of the previous owner was answered: no call of it can still
    run, so the partition is restored and resumed without the clock moving."""
    records: Changelog = [layout_record(), RECORDED, (CLEAN_HANDOVER, AUDIENCES.fingerprint)]
    loop = make_loop(restorer=reading(records))
    loop.settings = dataclasses.replace(loop.settings, handover_s=6.0)
    await restore(loop, consumer)


async def test_without_the_marker_the_restore_waits_for_the_handover_time(
    make_loop: MakeLoop, consumer: FakeConsumer, clock: FakeClock
) -> None:
    """A previous owner that did not stop cleanly may still have calls out: the partition is
    read again, and resumed, only once the handover time has passed."""
    reads = []

    def restorer(partition: int) -> Iterable[list[tuple[bytes, bytes | None]]]:
        reads.append(clock.now)
        return [[layout_record(), RECORDED]]

    loop = make_loop(restorer=restorer)
    loop.settings = dataclasses.replace(loop.settings, handover_s=6.0)
    loop.on_assign({0})
    await run_until_idle(loop)
    assert consumer.resumed == set()
    clock.advance(6.0)
    await run_until_idle(loop)
    assert (consumer.resumed, reads) == ({0}, [0.0, 6.0])


async def test_after_a_crash_every_state_is_evaluated_afresh_and_rewritten(
    make_loop: MakeLoop, consumer: FakeConsumer
) -> None:
    """Without the marker, a state whose membership the rules now decide otherwise is
    corrected in memory and written back by the restore."""
    records: Changelog = [layout_record(), RECORDED, (b"p1", saved("FR", set(), set()))]
    publisher = FakePublisher()
    loop = make_loop(restorer=lambda _p: [records], publisher=publisher)
    await restore(loop, consumer)
    state = loop.store.get(ProfileId("p1"))
    assert state is not None
    assert state.desired == {FR}
    [(partition, key, data)] = publisher.states
    assert data is not None
    assert (partition, key, CODEC.decode(data).desired) == (0, b"p1", frozenset({FR}))


async def test_a_layout_record_is_written_once_before_the_first_state_under_it(
    make_loop: MakeLoop, consumer: FakeConsumer
) -> None:
    """States written from now on must be readable later: a layout the partition's changelog
    lacks is recorded before the first state under it, and only once."""
    layout = layout_record()
    written = []
    changelogs: list[Changelog] = [[RECORDED], [layout, RECORDED]]
    for records in changelogs:
        publisher = FakePublisher()
        loop = make_loop(restorer=reading(records), publisher=publisher)
        await restore(loop, consumer)
        for offset, country in enumerate(("FR", "DE")):
            loop.process(upsert(offset, country), 0.0)
            await loop.commit(final=True)
        written.append([(key, value) for _, key, value in publisher.states if key != b"p1"])
    assert written == [[layout], []]


async def test_a_failed_restore_is_retried_and_the_partition_resumes(
    make_loop: MakeLoop, consumer: FakeConsumer, clock: FakeClock
) -> None:
    """A restore that fails (Kafka unreachable) is retried a second later, then the partition
    is resumed; it never stays paused for good."""
    restorer = FlakyRestorer()
    loop = make_loop(restorer=restorer)
    loop.on_assign({0})
    await run_until_idle(loop)
    failed = (restorer.calls, set(consumer.resumed))  # the retry waits for its second
    clock.advance(1.0)
    await run_until_idle(loop)
    assert (failed, restorer.calls, consumer.resumed) == ((1, set()), 2, {0})
    assert not loop.restores


class BacklogConsumer(FakeConsumer):
    """A backlog of 100 batches of (undecodable) records; a Marketo call starts at the first."""

    def __init__(self, stop: asyncio.Event) -> None:
        super().__init__()
        self.stop = stop
        self.polls = 0
        self.call_ran_after: list[int] = []

    def poll_batch(self, max_messages: int) -> list[Record]:
        self.polls += 1
        if self.polls == 1:
            asyncio.get_running_loop().create_task(self.call())
        if self.polls == 100:
            self.stop.set()
        return [Record(0, self.polls, b"k", b"not json")]

    async def call(self) -> None:
        self.call_ran_after.append(self.polls)


async def test_a_call_started_during_a_backlog_runs_before_the_next_batch(
    make_loop: MakeLoop,
) -> None:
    """The loop lets other tasks (Marketo calls, /metrics) run between batches of a backlog."""
    stop = asyncio.Event()
    consumer = BacklogConsumer(stop)
    await make_loop(consumer=consumer).run(stop)
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


async def test_a_buffer_bound_of_one_pauses_and_resumes(
    make_loop: MakeLoop, consumer: FakeConsumer
) -> None:
    """With flush.max_buffered_changes 1, a full buffer pauses the partition and an empty one
    resumes it (half of 1 rounds to 0: the resume bound is at least 1)."""
    loop = make_loop(max_buffered=1)
    await restore(loop, consumer)
    loop.process(upsert(0, "FR"), 0.0)  # enters: a lead sync and an add wait
    await loop.run_once()
    paused = 0 not in consumer.resumed
    loop.process(upsert(1, "DE"), 0.0)  # exits before any flush: nothing waits any more
    await loop.run_once()
    assert (paused, consumer.resumed) == (True, {0})


async def test_partitions_paused_by_a_backoff_resume_once_the_clock_passes_it(
    make_loop: MakeLoop, consumer: FakeConsumer, clock: FakeClock, writer: ScriptedWriter
) -> None:
    """An add that fails (Marketo unavailable) pauses the partitions for its one-second
    backoff, on the loop's clock; once that clock passes it they resume and the add is sent."""
    failures = [MarketoUnavailable("604", "busy")]
    writer.fail = lambda _list, _leads: failures.pop() if failures else None
    loop = make_loop()
    await restore(loop, consumer)
    loop.process(upsert(0, "FR"), clock.monotonic())
    clock.advance(2.0)  # past the linger: the lead sync, then the add that fails
    await run_until_idle(loop)
    during = (set(consumer.resumed), list(writer.added))
    clock.advance(0.5)
    await run_until_idle(loop)
    still = set(consumer.resumed)
    clock.advance(0.5)
    await run_until_idle(loop)
    assert (during, still) == ((set(), []), set())
    assert (consumer.resumed, writer.added, writer.members) == ({0}, [LISTS[FR]], {LeadId(7)})


def test_a_revoked_partition_leaves_no_gauge_behind(make_loop: MakeLoop) -> None:
    """Its committed offset and lag are the new owner's to report; a frozen value here would
    keep a lag alert firing."""
    loop = make_loop()
    loop.on_assign({0})
    loop.metrics.committed_offset.labels("0").set(5)
    loop.metrics.consumer_lag.labels("0").set(9)
    before = generate_latest(loop.metrics.registry).decode()
    loop.on_revoke({0})
    after = generate_latest(loop.metrics.registry).decode()
    assert ('partition="0"' in before, 'partition="0"' in after) == (True, False)


def test_an_event_later_than_the_wall_clock_allows_is_dead_lettered_as_ts_future(
    make_loop: MakeLoop, publisher: FakePublisher
) -> None:
    """The loop bounds ts by its wall clock: a ts past now plus the allowed future is refused."""
    loop = make_loop()  # the fake wall clock says epoch 0, so ts up to 1000 are accepted
    loop.settings = dataclasses.replace(loop.settings, ts_bounds_ms=(MIN_TS_MS, 1_000))
    loop.ts_window = loop._ts_window()
    loop.process(upsert(999, "FR"), 0.0)  # ts 1000: exactly the bound, accepted
    loop.process(upsert(1000, "FR"), 0.0)  # ts 1001: past it
    assert [headers["error.kind"] for headers in publisher.dead] == ["ts_future"]


def test_a_dead_letter_kafka_refuses_is_counted_by_reason_and_the_loop_goes_on(
    make_loop: MakeLoop,
) -> None:
    """A dead letter Kafka refuses is counted in dead_letter_failures_total{reason}."""
    loop = make_loop(publisher=FakePublisher(refuse="msg_size_too_large"))
    loop.on_assign({0})
    loop.process(Record(0, 7, b"p1", b"not json"), 0.0)
    loop.process(upsert(8, "FR"), 0.0)
    failures = loop.metrics.registry.get_sample_value(
        "marketo_worker_dead_letter_failures_total", {"reason": "msg_size_too_large"}
    )
    assert (failures, loop.store.get(ProfileId("p1"), 0) is not None) == (1.0, True)
