"""Crash and handover scenarios of the loop, with a fake Marketo whose answers can be held back
after the call has landed (unit tier: fakes for Kafka and Marketo; the real-broker proofs are
in tests/faults). Each scenario ends with the list as Marketo holds it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence

import msgspec

from tests.fakes import Result
from worker.core.fields import Converter, FieldSpec
from worker.core.ids import AudienceId, LeadId, ListId, Record
from worker.core.ledger import OffsetLedger
from worker.core.membership import AudienceRule, Audiences
from worker.core.outbox import Outbox
from worker.core.profile import ProfileState
from worker.core.rules import compile_rule
from worker.core.snapshot import CLEAN_HANDOVER, StateCodec
from worker.core.store import StateStore
from worker.errors import CallAbandoned
from worker.flusher import Flusher, LeadFields
from worker.loop import Loop, LoopSettings
from worker.telemetry.metrics import Metrics

FR = AudienceId("fr")
AUDIENCES = Audiences([AudienceRule(FR, compile_rule('country == "FR"'))])
CODEC = StateCodec(AUDIENCES.paths)
LIST, LEAD = ListId(1), LeadId(7)
Changelog = list[tuple[bytes, bytes | None]]
Wanted = Callable[[], bool] | None


class Marketo:
    """List membership as Marketo holds it; an add can land at once and answer much later."""

    def __init__(self) -> None:
        self.members: set[LeadId] = set()
        self.hold_adds = False
        self.release = asyncio.Event()
        self.slot = asyncio.Event()  # the budget slot calls wait for, as the transport does
        self.slot.set()
        self.persons = {LEAD}
        self.deletes = asyncio.Event()  # a person deletion is not sent until this is set
        self.deletes.set()

    async def sync_leads(
        self, records: Sequence[Mapping[str, object]], *, action: str, lookup_field: str
    ) -> list[Result]:
        return [Result("updated", LEAD) for _ in records]

    async def add_to_list(
        self, list_id: ListId, lead_ids: Sequence[LeadId], still_wanted: Wanted = None
    ) -> list[Result]:
        await self.slot.wait()
        if still_wanted is not None and not still_wanted():
            raise CallAbandoned("not ours any more")
        self.members |= set(lead_ids)  # the add lands in Marketo...
        if self.hold_adds:
            await self.release.wait()  # ...but its answer is slow
        return [Result("added") for _ in lead_ids]

    async def remove_from_list(
        self, list_id: ListId, lead_ids: Sequence[LeadId], still_wanted: Wanted = None
    ) -> list[Result]:
        await self.slot.wait()
        if still_wanted is not None and not still_wanted():
            raise CallAbandoned("not ours any more")
        self.members -= set(lead_ids)
        return [Result("removed") for _ in lead_ids]

    async def delete_leads(
        self, lead_ids: Sequence[LeadId], still_wanted: Wanted = None
    ) -> list[Result]:
        await self.deletes.wait()
        self.persons -= set(lead_ids)
        return [Result("deleted") for _ in lead_ids]


class Consumer:
    """Hands out no records (tests call `process`); remembers commits and resumes."""

    def __init__(self) -> None:
        self.resumed: set[int] = set()
        self.committed: dict[int, int] = {}

    def poll_batch(self, max_messages: int) -> list[Record]:
        return []

    def commit(self, offsets: Mapping[int, int]) -> dict[int, str | None]:
        self.committed.update(offsets)
        return dict.fromkeys(offsets)

    def pause(self, partitions: set[int]) -> None:
        self.resumed -= partitions

    def resume(self, partitions: set[int]) -> None:
        self.resumed |= partitions


class Publisher:
    """Appends state records to a changelog shared by successive owners."""

    def __init__(self, changelog: Changelog) -> None:
        self.changelog = changelog

    def dead_letter(self, key: object, value: object, headers: object, on_lost: object) -> None: ...
    def rejection(self, rejection: object, list_ids: object, rejected_at_ms: int) -> None: ...
    def poll(self) -> None: ...
    def state(self, partition: int, key: bytes, value: bytes | None) -> None:
        self.changelog.append((key, value))

    def flush(self, timeout_s: float) -> bool:
        return True


def owner(
    changelog: Changelog,
    marketo: Marketo,
    clock: list[float],
    end: int,
    *,
    delete_persons: bool = False,
) -> Loop:
    """A worker that reads and writes `changelog`; `end` is the input's end at assignment."""
    fields = {"email": FieldSpec("email", "email", 255, True)}
    publisher = Publisher(changelog)
    flusher = Flusher(
        Outbox(OffsetLedger(), [FR], 300, 1.0, delete_persons=delete_persons),
        marketo,
        StateStore(StateCodec(AUDIENCES.paths)),
        publisher,
        Metrics(),
        {FR: LIST},
        LeadFields("email", Converter([], fields), match_only=False),
        max_in_flight=4,
        clock=lambda: clock[0],
    )
    return Loop(
        Consumer(),
        publisher,
        flusher,
        AUDIENCES,
        AUDIENCES.paths,
        Metrics(),
        LoopSettings("in", 65536, 1000, 1.0),
        lambda _p: [list(changelog)],
        clock=lambda: clock[0],
        end_offset=lambda _p: end,
    )


async def restore(loop: Loop) -> None:
    """Assign partition 0 and wait (bounded) until its state is restored."""
    loop.on_assign({0})
    deadline = time.monotonic() + 10
    while loop.restores and time.monotonic() < deadline:
        await loop.run_once()
        await asyncio.sleep(0.01)  # the restore reads in a thread: let it run
    assert not loop.restores


async def settle(loop: Loop, clock: list[float]) -> None:
    """Let every due call start and the answered ones settle."""
    for _ in range(5):
        clock[0] += 2.0
        loop.flusher.start_due(clock[0])
        await asyncio.sleep(0.01)  # yields to the call tasks; the fake answers at once


def event(offset: int, ts: int, country: str) -> Record:
    body = {
        "profile_id": "p",
        "ts": ts,
        "op": "upsert",
        "identities": {"email": "a@x.io"},
        "attributes": {"country": country},
    }
    return Record(0, offset, b"p", msgspec.json.encode(body))


def outside_the_list() -> Changelog:
    """A changelog where the person is known, outside the list, and settled."""
    state = ProfileState(
        ts_ms=1, offset=0, email="a@x.io", attributes={"country": "DE"}, lead_id=LEAD
    )
    return [CODEC.layout_record(), (b"p", CODEC.encode(state))]


async def crash_between_enter_and_exit(changelog: Changelog, *, commit: bool) -> Marketo:
    """Owner 1 reads an enter (offset 5) and an exit (6); its add lands in Marketo but has not
    answered when it is killed (after a regular commit, or before any). Owner 2 takes over and
    replays both events."""
    marketo, clock = Marketo(), [0.0]
    marketo.hold_adds = True
    first = owner(changelog, marketo, clock, end=5)
    await restore(first)
    first.process(event(5, 10, "FR"), clock[0])
    await settle(first, clock)  # the add is in flight
    first.process(event(6, 11, "DE"), clock[0])
    if commit:
        await first.commit()
    for task in list(first.flusher.tasks):
        task.cancel()  # kill -9
    second = owner(changelog, marketo, clock, end=7)
    await restore(second)
    for offset, ts, country in [(5, 10, "FR"), (6, 11, "DE")]:
        second.process(event(offset, ts, country), clock[0])
    await settle(second, clock)
    return marketo


async def test_a_record_written_while_a_call_is_in_flight_makes_the_next_owner_resend() -> None:
    """The commit writes the state of offset 6 while the add of offset 5 is unanswered: the
    record says the membership is unsettled, so the next owner removes the person again."""
    marketo = await crash_between_enter_and_exit(outside_the_list(), commit=True)
    assert marketo.members == set()


async def test_a_crash_before_the_first_commit_is_repaired_by_the_replay() -> None:
    """Without any record of the dead owner, the replay sends the final membership."""
    marketo = await crash_between_enter_and_exit(outside_the_list(), commit=False)
    assert marketo.members == set()


async def test_a_clean_handover_marker_is_not_trusted_after_its_reader_crashed() -> None:
    """The marker vouches for the owner that wrote it; the next owner withdraws it before
    processing, so a crash of that owner still makes its successor replay explicitly."""
    changelog = [*outside_the_list(), (CLEAN_HANDOVER, AUDIENCES.fingerprint)]
    marketo = await crash_between_enter_and_exit(changelog, commit=False)
    assert marketo.members == set()


async def test_a_partition_given_back_while_its_call_is_out_still_gets_its_exit() -> None:
    """A call still out from before a revocation does not count for the partition's next
    assignment: the restore sends the add again, its answer is recorded, and the later exit
    is sent."""
    unacknowledged = ProfileState(
        ts_ms=1,
        offset=0,
        email="a@x.io",
        attributes={"country": "FR"},
        desired=frozenset({FR}),
        lead_id=LEAD,
    )
    changelog: Changelog = [CODEC.layout_record(), (b"p", CODEC.encode(unacknowledged))]
    marketo, clock = Marketo(), [0.0]
    marketo.hold_adds = True
    loop = owner(changelog, marketo, clock, end=5)
    await restore(loop)
    await settle(loop, clock)  # the re-sent add is out
    loop.on_revoke({0})
    await restore(loop)  # the same partition comes back to this worker
    marketo.release.set()
    await settle(loop, clock)
    loop.process(event(9, 100, "DE"), clock[0])
    await settle(loop, clock)
    assert marketo.members == set()


async def test_a_call_waiting_for_its_slot_when_its_partition_is_revoked_is_not_sent() -> None:
    """The new owner sends the partition's changes; ours, late, could undo theirs, so the call
    is abandoned and its changes are not put back."""
    marketo, clock = Marketo(), [0.0]
    marketo.slot.clear()
    loop = owner(outside_the_list(), marketo, clock, end=5)
    await restore(loop)
    loop.process(event(5, 10, "FR"), clock[0])
    await settle(loop, clock)  # the add waits for a slot
    loop.on_revoke({0})
    marketo.slot.set()
    await settle(loop, clock)
    assert (marketo.members, loop.outbox.size(), len(loop.flusher.tasks)) == (set(), 0, 0)


async def test_a_person_deletion_unanswered_at_a_crash_is_sent_by_the_next_owner() -> None:
    """With delete_persons, the deleted state is written once the person left the list, while
    the deletion still holds the offset; the owner dies, the replayed delete is stale, and the
    next owner's restore deletes the person."""
    settled = ProfileState(
        ts_ms=1,
        offset=0,
        email="a@x.io",
        attributes={"country": "FR"},
        desired=frozenset({FR}),
        acked=frozenset({FR}),
        lead_id=LEAD,
    )
    changelog: Changelog = [CODEC.layout_record(), (b"p", CODEC.encode(settled))]
    marketo, clock = Marketo(), [0.0]
    marketo.members = {LEAD}
    marketo.deletes.clear()
    delete = Record(0, 5, b"p", msgspec.json.encode({"profile_id": "p", "ts": 10, "op": "delete"}))
    first = owner(changelog, marketo, clock, end=5, delete_persons=True)
    await restore(first)
    first.process(delete, clock[0])
    await settle(first, clock)  # out of the list; the deletion is out, unanswered
    await first.commit()
    written = CODEC.decode(changelog[-1][1] or b"")  # the deleted state is in the changelog
    assert (marketo.members, marketo.persons, written.deleted) == (set(), {LEAD}, True)
    for task in list(first.flusher.tasks):
        task.cancel()  # kill -9
    marketo.deletes.set()
    second = owner(changelog, marketo, clock, end=6, delete_persons=True)
    await restore(second)
    second.process(delete, clock[0])  # stale: the state says deleted at this ts
    await settle(second, clock)
    assert marketo.persons == set()
