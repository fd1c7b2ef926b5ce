"""The bulk lane on fakes: a list's backlog of adds over the threshold goes out as one bulk
import, polled on the fake clock, and comes back whole (settled, rejected or put back)."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from tests.fakes import FakeClock, FakePublisher, ScriptedWriter
from tests.unit.conftest import EMAIL, MakeCore
from tests.unit.test_fair_share import run_for
from tests.unit.test_generator import DEMO_CONFIG
from worker.app import import_slots
from worker.bulk_lane import DEFAULT_SLOTS, FAILED_ROW, QUEUE_FULL_FIRST_S, QUEUE_FULL_MAX_S
from worker.config_file import load_settings
from worker.core.buffers import Lane
from worker.core.bulk_csv import FAILURE_COLUMN
from worker.core.fields import Converter
from worker.core.ids import AudienceId, ListId, ProfileId
from worker.core.profile import ProfileState
from worker.errors import ImportQueueFull
from worker.flusher import Flusher, LeadFields
from worker.telemetry.metrics import Metrics

A, B = AudienceId("a"), AudienceId("b")
LISTS = {A: ListId(1), B: ListId(2)}
THRESHOLD = 100


@dataclass(frozen=True)
class Status:
    """A bulk import's status as the fake answers it."""

    status: str
    rows_failed: int = 0
    rows_warned: int = 0
    message: str | None = None


@dataclass
class ScriptedBulk:
    """Marketo's bulk import: remembers each file and list, answers `queue_full` times 1016
    first, then each status poll from `statuses` (the last one repeats), with `failures` as
    the failures file."""

    queue_full: int = 0
    statuses: list[str] = field(default_factory=lambda: ["Importing", "Complete"])
    failures: bytes | None = None
    imports: list[tuple[bytes, str, ListId | None]] = field(default_factory=list)
    polls: int = 0
    clock: Callable[[], float] = lambda: 0.0
    submits: list[float] = field(default_factory=list)  # when each submit came, on `clock`

    async def import_leads(
        self, csv: bytes, *, lookup_field: str, list_id: ListId | None = None
    ) -> int:
        self.submits.append(self.clock())
        if self.queue_full:
            self.queue_full -= 1
            raise ImportQueueFull("1016", "Too many imports")
        self.imports.append((csv, lookup_field, list_id))
        return len(self.imports)

    async def import_status(self, batch_id: int) -> Status:
        state = self.statuses[min(self.polls, len(self.statuses) - 1)]
        self.polls += 1
        failed = 0 if self.failures is None else self.failures.count(b"\n") - 1
        return Status(state, rows_failed=failed if state == "Complete" else 0)

    async def import_failures(self, batch_id: int) -> bytes | None:
        return self.failures

    async def import_warnings(self, batch_id: int) -> bytes | None:
        return None

    def emails(self) -> list[str]:
        """The lookup values of every row imported."""
        return [row["email"] for data, _, _ in self.imports for row in _rows(data)]


def _rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode(), newline="")))


def bulk_flusher(
    make_core: MakeCore,
    writer: ScriptedWriter,
    bulk: ScriptedBulk,
    clock: FakeClock,
    publisher: FakePublisher,
) -> Flusher:
    """A flusher for lists A and B with the bulk lane at `THRESHOLD` adds."""
    core = make_core([A, B])
    core.outbox.bulk_threshold = THRESHOLD
    core.store.assign(0)
    core.ledger.assign(0, 1)
    return Flusher(
        core.outbox,
        writer,
        core.store,
        publisher,
        Metrics(),
        LISTS,
        LeadFields("email", Converter([], EMAIL), match_only=False),
        max_in_flight=2,
        clock=clock.monotonic,
        wall=clock.time,
        bulk=bulk,
    )


def queue(flusher: Flusher, audience: AudienceId, count: int, offset: int | None = None) -> None:
    """Queue `count` adds of new persons to `audience`: a backlog's (no offset) or the stream's
    (one record each from `offset` on)."""
    outbox = flusher.outbox
    for i in range(count):
        profile = ProfileId(f"{audience}{i}")
        at = None if offset is None else offset + i
        state = ProfileState(
            ts_ms=1, offset=at or 0, email=f"{profile}@x.io", desired=frozenset({audience})
        )
        flusher.store.put(0, profile, state)
        if at is not None:
            outbox.ledger.read(0, at)
        outbox.enqueue(profile, state, {audience: True}, 0, at, flusher.clock())


def members(flusher: Flusher, audience: AudienceId, count: int) -> int:
    """How many of the first `count` profiles queued for `audience` Marketo acknowledged."""
    states = [flusher.store.get(ProfileId(f"{audience}{i}")) for i in range(count)]
    return sum(1 for state in states if state is not None and audience in state.acked)


async def test_a_backlog_over_the_threshold_goes_out_as_one_import_with_the_list_id(
    make_core: MakeCore, writer: ScriptedWriter, clock: FakeClock, publisher: FakePublisher
) -> None:
    """150 backlog adds of new persons: one import into list A, no lead sync or list add, and
    every profile an acknowledged member without a lead id."""
    bulk = ScriptedBulk()
    flusher = bulk_flusher(make_core, writer, bulk, clock, publisher)
    queue(flusher, A, 150)
    await run_for(flusher, clock, 30.0)
    assert [list_id for _, _, list_id in bulk.imports] == [LISTS[A]]
    assert sorted(bulk.emails()) == sorted(f"a{i}@x.io" for i in range(150))
    assert writer.sizes == []
    assert flusher.outbox.leads.waiting(Lane.BACKLOG) == 0
    assert members(flusher, A, 150) == 150
    assert flusher.store.get(ProfileId("a0")) is not None
    assert flusher.store.lead_id(ProfileId("a0")) is None


async def test_a_backlog_under_the_threshold_stays_on_rest(
    make_core: MakeCore, writer: ScriptedWriter, clock: FakeClock, publisher: FakePublisher
) -> None:
    """99 backlog adds: lead syncs and list adds, no import."""
    bulk = ScriptedBulk()
    flusher = bulk_flusher(make_core, writer, bulk, clock, publisher)
    queue(flusher, A, THRESHOLD - 1)
    await run_for(flusher, clock, 10.0)
    assert bulk.imports == []
    assert sum(writer.sizes) == THRESHOLD - 1


async def test_a_failed_row_becomes_a_rejection_with_marketos_reason(
    make_core: MakeCore, writer: ScriptedWriter, clock: FakeClock, publisher: FakePublisher
) -> None:
    """The failures file names a7@x.io: its profile is rejected with the reason, the rest are
    members."""
    failures = f"email,{FAILURE_COLUMN}\r\nA7@x.io,Invalid email\r\n".encode()
    bulk = ScriptedBulk(failures=failures)
    flusher = bulk_flusher(make_core, writer, bulk, clock, publisher)
    queue(flusher, A, 150)
    await run_for(flusher, clock, 30.0)
    (rejection,) = publisher.rejections
    assert (rejection.profile, rejection.audience, rejection.op) == ("a7", A, "add")
    assert (rejection.code, rejection.message) == (FAILED_ROW, "Invalid email")
    assert members(flusher, A, 150) == 149


async def test_a_failed_job_puts_its_changes_back(
    make_core: MakeCore, writer: ScriptedWriter, clock: FakeClock, publisher: FakePublisher
) -> None:
    """An import Marketo reports Failed: no profile is acknowledged, no rejection, and every add
    is pending again, its lead sync queued again."""
    bulk = ScriptedBulk(statuses=["Importing", "Failed"])
    flusher = bulk_flusher(make_core, writer, bulk, clock, publisher)
    queue(flusher, A, 150)
    while not bulk.polls or (flusher.bulk and flusher.bulk.running):
        flusher.start_due(clock.now)
        await asyncio.gather(*flusher.tasks)
        clock.advance(0.5)
    assert members(flusher, A, 150) == 0
    assert publisher.rejections == []
    assert len(flusher.outbox.lists[A]) == 150
    assert flusher.outbox.leads.waiting(Lane.BACKLOG) == 150


async def test_a_full_import_queue_waits_then_succeeds(
    make_core: MakeCore, writer: ScriptedWriter, clock: FakeClock, publisher: FakePublisher
) -> None:
    """1016 on the submit: nothing is submitted again before the wait, then the import goes
    and the job settles."""
    bulk = ScriptedBulk(queue_full=1)
    flusher = bulk_flusher(make_core, writer, bulk, clock, publisher)
    queue(flusher, A, 150)
    await run_for(flusher, clock, QUEUE_FULL_FIRST_S - 1)
    assert bulk.imports == []
    assert members(flusher, A, 150) == 0
    await run_for(flusher, clock, 30.0)
    assert len(bulk.imports) == 1
    assert members(flusher, A, 150) == 150
    assert publisher.rejections == []


async def test_a_streamed_add_to_another_list_is_not_delayed_by_a_running_job(
    make_core: MakeCore, writer: ScriptedWriter, clock: FakeClock, publisher: FakePublisher
) -> None:
    """A job for A still importing, one streamed add to B (a known person): B's add is sent
    within its linger."""
    bulk = ScriptedBulk(statuses=["Importing"])
    flusher = bulk_flusher(make_core, writer, bulk, clock, publisher)
    queue(flusher, A, 150)
    await run_for(flusher, clock, 5.0)
    assert len(bulk.imports) == 1
    assert flusher.bulk is not None
    assert flusher.bulk.running
    queue(flusher, B, 1, offset=0)
    streamed_at = clock.now
    while not writer.added:
        await run_for(flusher, clock, 0.5)
    assert writer.added == [LISTS[B]]
    assert clock.now <= streamed_at + 1.0 + 0.5
    assert flusher.bulk.running


async def test_a_queue_full_again_and_again_waits_longer_each_time(
    make_core: MakeCore, writer: ScriptedWriter, clock: FakeClock, publisher: FakePublisher
) -> None:
    """1016 five times: the submits come after waits doubling from the first to the most, then
    the import goes and the job settles, nothing rejected."""
    bulk = ScriptedBulk(queue_full=5, clock=clock.monotonic)
    flusher = bulk_flusher(make_core, writer, bulk, clock, publisher)
    queue(flusher, A, 150)
    await run_for(flusher, clock, 200.0)
    waits = [round(b - a) for a, b in zip(bulk.submits, bulk.submits[1:], strict=False)]
    first = int(QUEUE_FULL_FIRST_S)
    assert waits == [first, 2 * first, 4 * first, 8 * first, int(QUEUE_FULL_MAX_S)]
    assert members(flusher, A, 150) == 150
    assert publisher.rejections == []


async def test_after_a_queue_full_no_other_job_submits_before_the_wait(
    make_core: MakeCore, writer: ScriptedWriter, clock: FakeClock, publisher: FakePublisher
) -> None:
    """A's submit gets 1016; B's job, begun a second later, submits no sooner than A's wait."""
    bulk = ScriptedBulk(queue_full=1, clock=clock.monotonic)
    flusher = bulk_flusher(make_core, writer, bulk, clock, publisher)
    queue(flusher, A, 150)
    await run_for(flusher, clock, 1.0)
    queue(flusher, B, 150)
    await run_for(flusher, clock, 60.0)
    refused_at, *later = bulk.submits
    assert len(later) == 2
    assert min(later) >= refused_at + QUEUE_FULL_FIRST_S
    assert members(flusher, A, 150) == members(flusher, B, 150) == 150


async def test_a_job_beyond_the_replicas_import_slots_waits_for_one_to_free(
    make_core: MakeCore, writer: ScriptedWriter, clock: FakeClock, publisher: FakePublisher
) -> None:
    """One slot, backlogs for A and B: B's file is submitted only once A's import is Complete,
    and both lists fill without a REST call."""
    bulk = ScriptedBulk(statuses=["Importing"] * 4 + ["Complete"], clock=clock.monotonic)
    flusher = bulk_flusher(make_core, writer, bulk, clock, publisher)
    assert flusher.bulk is not None
    flusher.bulk.slots = lambda: 1
    queue(flusher, A, 150)
    queue(flusher, B, 150)
    await run_for(flusher, clock, 20.0)
    assert [list_id for _, _, list_id in bulk.imports] == [LISTS[A]]
    assert flusher.bulk.in_queue() == 1
    await run_for(flusher, clock, 120.0)
    assert [list_id for _, _, list_id in bulk.imports] == [LISTS[A], LISTS[B]]
    assert members(flusher, A, 150) == members(flusher, B, 150) == 150
    assert writer.sizes == []


@pytest.mark.parametrize(("share", "slots"), [(1.0, 3), (0.5, 1), (1 / 12, 1), (0.0, 0), (2.0, 3)])
def test_a_replicas_import_slots_are_its_partition_share_of_the_groups(
    share: float, slots: int
) -> None:
    """`marketo.budget.bulk_imports` 3 split by partition share: floored, at least one while the
    replica has a partition, none without, never more than the group's."""
    settings = load_settings(DEMO_CONFIG, env={}, require_credentials=False)
    assert settings.marketo.budget.bulk_imports == DEFAULT_SLOTS == 3
    assert import_slots(settings, share) == slots
