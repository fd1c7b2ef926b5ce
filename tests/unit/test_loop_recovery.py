"""Crash and handover scenarios of the loop, with a fake Marketo whose answers can be held back
after the call has landed (unit tier: fakes for Kafka and Marketo; the real-broker proofs are
in tests/faults). Each scenario ends with the list as Marketo holds it."""

from __future__ import annotations

import msgspec

from tests.fakes import Changelog, FakeClock, FakePublisher, ScriptedWriter, run_until_idle
from tests.unit.conftest import AUDIENCES, FR, MakeLoop
from worker.core.ids import LeadId, Record
from worker.core.profile import ProfileState
from worker.core.snapshot import CLEAN_HANDOVER, StateCodec, layout_of
from worker.loop import Loop

CODEC = StateCodec()
LEAD = LeadId(7)


def changelog_of(state: ProfileState) -> Changelog:
    """A changelog holding the state of profile `p`, after its layout's record."""
    data = CODEC.encode(state)
    layout = layout_of(data)
    assert layout is not None
    return [CODEC.layout_record(layout), (b"p", data)]


def owner(
    make_loop: MakeLoop, changelog: Changelog, end: int, *, delete_persons: bool = False
) -> Loop:
    """A worker that reads and writes `changelog`; `end` is the input's end at assignment. It
    commits only when a scenario says so."""
    return make_loop(
        restorer=lambda _p: [list(changelog)],
        publisher=FakePublisher(changelog),
        end_offset=end,
        commit_interval_s=float("inf"),
        delete_persons=delete_persons,
        max_in_flight=4,
    )


async def restore(loop: Loop) -> None:
    """Assign partition 0 and turn the loop until its state is restored."""
    loop.on_assign({0})
    await run_until_idle(loop)
    assert not loop.restores


async def settle(loop: Loop, clock: FakeClock) -> None:
    """Let every due call start and the answered ones settle."""
    for _ in range(5):
        clock.advance(2.0)
        await run_until_idle(loop)


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
    return changelog_of(state)


async def crash_between_enter_and_exit(
    make_loop: MakeLoop,
    clock: FakeClock,
    marketo: ScriptedWriter,
    changelog: Changelog,
    *,
    commit: bool,
) -> set[LeadId]:
    """Owner 1 reads an enter (offset 5) and an exit (6); its add lands in Marketo but has not
    answered when it is killed (after a regular commit, or before any). Owner 2 takes over and
    replays both events; return the list's members as Marketo holds them then."""
    marketo.hold_adds = True
    first = owner(make_loop, changelog, end=5)
    await restore(first)
    first.process(event(5, 10, "FR"), clock.monotonic())
    await settle(first, clock)  # the add is in flight
    added = set(marketo.members)
    first.process(event(6, 11, "DE"), clock.monotonic())
    if commit:
        await first.commit()
    for task in list(first.flusher.tasks):
        task.cancel()  # kill -9
    second = owner(make_loop, changelog, end=7)
    await restore(second)
    for offset, ts, country in [(5, 10, "FR"), (6, 11, "DE")]:
        second.process(event(offset, ts, country), clock.monotonic())
    await settle(second, clock)
    assert added == {LEAD}  # the dead owner's add had landed
    return marketo.members


async def test_a_record_written_while_a_call_is_in_flight_makes_the_next_owner_resend(
    make_loop: MakeLoop, clock: FakeClock, writer: ScriptedWriter
) -> None:
    """The commit writes the state of offset 6 while the add of offset 5 is unanswered: the
    record says the membership is unsettled, so the next owner removes the person again."""
    members = await crash_between_enter_and_exit(
        make_loop, clock, writer, outside_the_list(), commit=True
    )
    assert members == set()


async def test_a_crash_before_the_first_commit_is_repaired_by_the_replay(
    make_loop: MakeLoop, clock: FakeClock, writer: ScriptedWriter
) -> None:
    """Without any record of the dead owner, the replay sends the final membership."""
    members = await crash_between_enter_and_exit(
        make_loop, clock, writer, outside_the_list(), commit=False
    )
    assert members == set()


async def test_a_clean_handover_marker_is_not_trusted_after_its_reader_crashed(
    make_loop: MakeLoop, clock: FakeClock, writer: ScriptedWriter
) -> None:
    """The marker vouches for the owner that wrote it; the next owner withdraws it before
    processing, so a crash of that owner still makes its successor replay explicitly."""
    changelog = [*outside_the_list(), (CLEAN_HANDOVER, AUDIENCES.fingerprint)]
    members = await crash_between_enter_and_exit(make_loop, clock, writer, changelog, commit=False)
    assert members == set()


async def test_a_partition_given_back_while_its_call_is_out_still_gets_its_exit(
    make_loop: MakeLoop, clock: FakeClock, writer: ScriptedWriter
) -> None:
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
    changelog = changelog_of(unacknowledged)
    marketo = writer
    marketo.hold_adds = True
    loop = owner(make_loop, changelog, end=5)
    await restore(loop)
    await settle(loop, clock)  # the re-sent add is out
    loop.on_revoke({0})
    await restore(loop)  # the same partition comes back to this worker
    marketo.release.set()
    await settle(loop, clock)
    loop.process(event(9, 100, "DE"), clock.monotonic())
    await settle(loop, clock)
    assert marketo.members == set()


async def test_a_call_waiting_for_its_slot_when_its_partition_is_revoked_is_not_sent(
    make_loop: MakeLoop, clock: FakeClock, writer: ScriptedWriter
) -> None:
    """The new owner sends the partition's changes; ours, late, could undo theirs, so the call
    is abandoned and its changes are not put back."""
    marketo = writer
    marketo.slot.clear()
    loop = owner(make_loop, outside_the_list(), end=5)
    await restore(loop)
    loop.process(event(5, 10, "FR"), clock.monotonic())
    await settle(loop, clock)  # the add waits for a slot
    loop.on_revoke({0})
    marketo.slot.set()
    await settle(loop, clock)
    assert (marketo.members, loop.outbox.size(), len(loop.flusher.tasks)) == (set(), 0, 0)


async def test_a_person_deletion_unanswered_at_a_crash_is_sent_by_the_next_owner(
    make_loop: MakeLoop, clock: FakeClock, writer: ScriptedWriter
) -> None:
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
    changelog = changelog_of(settled)
    marketo = writer
    marketo.members = {LEAD}
    marketo.deletes.clear()
    delete = Record(0, 5, b"p", msgspec.json.encode({"profile_id": "p", "ts": 10, "op": "delete"}))
    first = owner(make_loop, changelog, end=5, delete_persons=True)
    await restore(first)
    first.process(delete, clock.monotonic())
    await settle(first, clock)  # out of the list; the deletion is out, unanswered
    await first.commit()
    written = first.store.codec.decode(changelog[-1][1] or b"")  # the deleted state is in it
    assert (marketo.members, marketo.persons, written.deleted) == (set(), {LEAD}, True)
    for task in list(first.flusher.tasks):
        task.cancel()  # kill -9
    marketo.deletes.set()
    second = owner(make_loop, changelog, end=6, delete_persons=True)
    await restore(second)
    second.process(delete, clock.monotonic())  # stale: the state says deleted at this ts
    await settle(second, clock)
    assert marketo.persons == set()
