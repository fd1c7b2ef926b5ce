"""The outbox coalesces membership changes and needs one lead sync per person."""

from __future__ import annotations

from collections.abc import Sequence

from worker.core.buffers import Lane
from worker.core.ids import AudienceId, LeadId, Op, ProfileId
from worker.core.ledger import OffsetLedger
from worker.core.outbox import LeadSyncCall, ListCall, Outbox, Turns
from worker.core.profile import ProfileState
from worker.core.snapshot import StateCodec
from worker.core.store import StateStore

A, B, C = AudienceId("a"), AudienceId("b"), AudienceId("c")
P = ProfileId("p-1")


class States:
    """The profile states as the store holds them (partition 0): set as a test says, read back
    as the outbox left them."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def __setitem__(self, profile: ProfileId, state: ProfileState) -> None:
        self.store.put(0, profile, state)

    def __getitem__(self, profile: ProfileId) -> ProfileState:
        state = self.store.get(profile)
        assert state is not None
        return state


def outbox_on(
    audiences: Sequence[AudienceId],
    max_batch: int = 300,
    linger_s: float = 1.0,
    *,
    delete_persons: bool = False,
) -> tuple[Outbox, OffsetLedger, States]:
    """An outbox with its ledger and its states, partition 0 assigned."""
    ledger, store = OffsetLedger(), StateStore(StateCodec())
    ledger.assign(0, 1)
    store.assign(0)
    outbox = Outbox(ledger, store, audiences, max_batch, linger_s, delete_persons=delete_persons)
    return outbox, ledger, States(store)


def setup() -> tuple[Outbox, OffsetLedger, States]:
    outbox, ledger, states = outbox_on([A, B, C])
    states[P] = ProfileState(ts_ms=1, offset=0, email="ann@example.com")
    return outbox, ledger, states


def enqueue(
    outbox: Outbox,
    ledger: OffsetLedger,
    state: ProfileState,
    flips: dict[AudienceId, bool],
    offset: int,
    now: float = 0.0,
) -> None:
    ledger.read(0, offset)
    outbox.enqueue(P, state, flips, 0, offset, now)


def known_person_call(member: bool) -> tuple[Outbox, OffsetLedger, States, ListCall]:
    """A person Marketo knows (lead 7) entering list A (or leaving it) at offset 0, and the
    list call taken for it."""
    outbox, ledger, states = outbox_on([A, B, C])
    acked = frozenset() if member else frozenset({A})
    states[P] = ProfileState(ts_ms=1, offset=0, email="ann@example.com", acked=acked)
    states.store.set_lead_id(P, LeadId(7))
    enqueue(outbox, ledger, states[P], {A: member}, offset=0)
    call = outbox.next_list_call(now=100.0)
    assert call is not None
    return outbox, ledger, states, call


def test_enter_then_exit_before_flush_makes_no_call() -> None:
    """An add cancelled by a remove before the flush leaves nothing to send and frees offsets."""
    outbox, ledger, states = setup()
    enqueue(outbox, ledger, states[P], {A: True}, offset=0)
    enqueue(outbox, ledger, states[P], {A: False}, offset=1)
    assert outbox.lists[A].pending(P) is None
    assert outbox.next_list_call(now=100.0, force=True) is None
    assert ledger.committable() == {0: 2}


def test_entering_three_lists_needs_one_lead_sync() -> None:
    """A person without a lead id entering three lists is synced once, then added to each."""
    outbox, ledger, states = setup()
    enqueue(outbox, ledger, states[P], {A: True, B: True, C: True}, offset=0)
    call = outbox.next_lead_sync(now=100.0)
    assert call is not None
    assert [item.key for item in call.taken] == ["ann@example.com"]
    assert outbox.next_lead_sync(now=100.0) is None
    outbox.settle_lead_sync(call, [("created", LeadId(7), "", "")], match_only=False)
    audiences = set()
    while (list_call := outbox.next_list_call(now=100.0)) is not None:
        audiences.add(list_call.audience)
        assert list_call.lead_ids == [LeadId(7)]
    assert audiences == {A, B, C}


def test_list_entries_wait_for_the_lead_id() -> None:
    """No list call is made for a person whose lead id is still unknown."""
    outbox, ledger, states = setup()
    enqueue(outbox, ledger, states[P], {A: True}, offset=0)
    assert outbox.next_list_call(now=100.0) is None


def test_acknowledged_add_updates_state_and_releases_the_offset() -> None:
    """Marketo's `added` records the membership and lets the offset be committed."""
    outbox, ledger, states, call = known_person_call(member=True)
    assert call.op is Op.ADD
    outbox.settle_list_call(call, [("added", "", "")])
    assert states[P].acked == {A}
    assert ledger.committable() == {0: 1}


def test_exit_while_the_add_is_in_flight_queues_a_remove() -> None:
    """The baseline is the call in flight, so an exit during an add is not lost."""
    outbox, ledger, states, _call = known_person_call(member=True)
    enqueue(outbox, ledger, states[P], {A: False}, offset=1)
    assert outbox.lists[A].pending(P) is False


def test_refused_record_becomes_a_rejection_with_its_code() -> None:
    """A skipped record is not retried: it becomes a rejection and frees its offset."""
    outbox, ledger, states, call = known_person_call(member=True)
    settled = outbox.settle_list_call(call, [("skipped", "1008", "Access denied")])
    assert [(r.profile, r.code) for r in settled.rejections] == [(P, "1008")]
    assert states[P].acked == frozenset()
    assert ledger.committable() == {0: 1}


def test_removing_a_non_member_counts_as_done() -> None:
    """Marketo's 1015 (lead not in list) on a remove means the list is already right."""
    outbox, _ledger, states, call = known_person_call(member=False)
    settled = outbox.settle_list_call(call, [("skipped", "1015", "Lead not in list")])
    assert settled.rejections == []
    assert states[P].acked == frozenset()


def test_an_add_for_a_lead_marketo_lost_syncs_the_person_again_and_waits() -> None:
    """1004 on an add (the lead was merged or deleted): the old id is forgotten, the person is
    synced again by email, and the add waits for the new id, its offset still held."""
    outbox, ledger, states, call = known_person_call(member=True)
    settled = outbox.settle_list_call(call, [("skipped", "1004", "Lead not found")])
    assert (settled.rejections, ledger.committable(), states[P].lead_id) == ([], {0: 0}, None)
    sync = outbox.next_lead_sync(now=100.0, force=True)
    assert sync is not None
    assert [item.key for item in sync.taken] == ["ann@example.com"]
    assert outbox.lists[A].pending(P) is True


def test_removing_a_lead_marketo_lost_counts_as_done() -> None:
    """1004 on a remove: a lead Marketo no longer has is in no list, as wanted."""
    outbox, _ledger, states, call = known_person_call(member=False)
    settled = outbox.settle_list_call(call, [("skipped", "1004", "Lead not found")])
    assert (settled.rejections, states[P].acked) == ([], frozenset())


def test_match_only_unknown_person_is_unmatched_not_rejected() -> None:
    """In match_only mode, 1004 from the lead sync counts as unmatched and cancels the adds."""
    outbox, ledger, states = setup()
    enqueue(outbox, ledger, states[P], {A: True}, offset=0)
    call = outbox.next_lead_sync(now=100.0)
    assert call is not None
    settled = outbox.settle_lead_sync(
        call, [("skipped", None, "1004", "Lead not found")], match_only=True
    )
    assert settled.unmatched == 1
    assert settled.rejections == []
    assert outbox.lists[A].pending(P) is None


def test_a_refused_lead_sync_names_every_list_the_person_misses() -> None:
    """A lead sync Marketo refuses cancels the adds that waited for it; its rejection names
    each of their lists, so the user knows where the person is missing."""
    outbox, ledger, states = setup()
    enqueue(outbox, ledger, states[P], {A: True, C: True}, offset=0)
    call = outbox.next_lead_sync(now=100.0)
    assert call is not None
    settled = outbox.settle_lead_sync(
        call, [("skipped", None, "1003", "Invalid email")], match_only=False
    )
    (rejection,) = settled.rejections
    assert (rejection.audience, sorted(rejection.audiences)) == (None, [A, C])


def test_a_refused_list_call_names_its_own_list() -> None:
    """A record refused by a list call names that list in both `audience` and `audiences`."""
    outbox, _ledger, _states, call = known_person_call(member=True)
    settled = outbox.settle_list_call(call, [("skipped", "1008", "Access denied")])
    (rejection,) = settled.rejections
    assert (rejection.audience, rejection.audiences) == (A, (A,))


def test_a_buffer_is_due_at_max_batch_before_its_linger() -> None:
    """300 waiting entries make a call at once; fewer wait for the linger."""
    outbox, _ledger, states = outbox_on([A], max_batch=3, linger_s=10.0)
    for i in range(3):
        profile = ProfileId(f"p{i}")
        states[profile] = ProfileState(ts_ms=1, offset=i, email=f"{i}@x.io", lead_id=LeadId(i + 1))
        assert outbox.next_list_call(now=0.0) is None
        outbox.enqueue(profile, states[profile], {A: True}, 0, i, now=0.0)
    call = outbox.next_list_call(now=0.0)
    assert call is not None
    assert len(call.taken) == 3


def test_enter_then_exit_before_flush_needs_no_lead_sync() -> None:
    """A cancelled add also cancels the lead sync that only it was waiting for."""
    outbox, ledger, states = setup()
    enqueue(outbox, ledger, states[P], {A: True}, offset=0)
    enqueue(outbox, ledger, states[P], {A: False}, offset=1)
    assert outbox.next_lead_sync(now=100.0, force=True) is None


def test_a_delete_before_flush_cancels_the_lead_sync() -> None:
    """An erased person (whose marker has no email) is not created in Marketo by a sync that
    its cancelled add had asked for."""
    outbox, ledger, states = setup()
    enqueue(outbox, ledger, states[P], {A: True, B: True}, offset=0)
    erased = ProfileState(ts_ms=2, offset=1, deleted=True)
    enqueue(outbox, ledger, erased, {A: False, B: False}, offset=1)
    assert outbox.next_lead_sync(now=100.0, force=True) is None


def test_a_failed_lead_sync_given_back_can_still_be_cancelled() -> None:
    """A lead sync put back after a failure is still found by the delete that cancels it."""
    outbox, ledger, states = setup()
    enqueue(outbox, ledger, states[P], {A: True}, offset=0)
    call = outbox.next_lead_sync(now=100.0, force=True)
    assert call is not None
    outbox.retry_later(call)
    enqueue(outbox, ledger, ProfileState(ts_ms=2, offset=1, deleted=True), {A: False}, offset=1)
    assert outbox.next_lead_sync(now=100.0, force=True) is None


def test_replayed_exit_is_sent_even_when_the_state_saw_no_add() -> None:
    """After a takeover, a replayed enter-then-exit still sends the remove: the previous owner
    may have added the person before it died without recording it."""
    outbox, ledger, states = setup()
    states.store.set_lead_id(P, LeadId(7))
    enqueue_explicit = [(True, 0), (False, 1)]
    for member, offset in enqueue_explicit:
        ledger.read(0, offset)
        outbox.enqueue(P, states[P], {A: member}, 0, offset, 0.0, explicit=True)
    call = outbox.next_list_call(now=100.0)
    assert call is not None
    assert call.op is Op.REMOVE


def test_a_partial_list_that_waited_long_is_not_starved_by_full_ones() -> None:
    """Full batches go first, but a small list whose change waited ten lingers gets its turn."""
    outbox, _ledger, states = outbox_on([A, B], max_batch=2)
    for i in range(5):
        states[ProfileId(f"p{i}")] = ProfileState(
            ts_ms=1, offset=i, email=f"{i}@x.io", lead_id=LeadId(i + 1)
        )
    outbox.enqueue(ProfileId("p0"), states[ProfileId("p0")], {B: True}, 0, 0, now=0.0)
    for i in (1, 2):
        outbox.enqueue(ProfileId(f"p{i}"), states[ProfileId(f"p{i}")], {A: True}, 0, i, now=5.0)
    first = outbox.next_list_call(now=5.0)
    assert first is not None
    assert first.audience == A  # a full batch beats a partial one that waited 5 lingers
    for i in (3, 4):  # A is full again
        outbox.enqueue(ProfileId(f"p{i}"), states[ProfileId(f"p{i}")], {A: True}, 0, i, now=11.0)
    assert len(outbox.lists[A]) == 2
    second = outbox.next_list_call(now=11.0)
    assert second is not None
    assert second.audience == B  # waited 11 lingers: its turn, although A is full again


def test_a_failed_lead_sync_merges_with_a_newer_one_for_the_same_email() -> None:
    """Two profiles sharing an email: the failed sync of one is not dropped because the other
    queued the same email meanwhile; one sync carries both."""
    outbox, ledger, states = setup()
    q = ProfileId("p-2")
    states[q] = ProfileState(ts_ms=1, offset=1, email="ann@example.com")
    enqueue(outbox, ledger, states[P], {A: True}, offset=0)
    failed = outbox.next_lead_sync(now=100.0, force=True)
    assert failed is not None
    outbox.enqueue(q, states[q], {A: True}, 0, 1, 0.0)
    outbox.retry_later(failed)
    retried = outbox.next_lead_sync(now=100.0, force=True)
    assert retried is not None
    taken = [(i.key, i.entry.value) for i in retried.taken]
    assert taken == [("ann@example.com", frozenset({P, q}))]


def test_a_delete_cancels_the_sync_under_the_new_email_after_the_old_one_was_sent() -> None:
    """The index of pending syncs follows the profile's current email: sending the sync of its
    old email does not make the new one uncancellable."""
    outbox, ledger, _states = outbox_on([A, B], max_batch=1)
    enqueue(outbox, ledger, ProfileState(ts_ms=1, offset=0, email="old@x.io"), {A: True}, 0)
    enqueue(outbox, ledger, ProfileState(ts_ms=2, offset=1, email="new@x.io"), {B: True}, 1)
    sent = outbox.next_lead_sync(now=100.0, force=True)
    assert sent is not None
    assert [item.key for item in sent.taken] == ["old@x.io"]
    erased = ProfileState(ts_ms=3, offset=2, deleted=True)
    enqueue(outbox, ledger, erased, {A: False, B: False}, offset=2)
    assert outbox.next_lead_sync(now=100.0, force=True) is None


def test_a_list_call_names_each_lead_once() -> None:
    """Profiles sharing a person (one lead id) go in separate calls, so Marketo answers one
    result per id."""
    outbox, ledger, states = setup()
    q = ProfileId("p-2")
    states.store.set_lead_id(P, LeadId(7))
    states[q] = ProfileState(ts_ms=1, offset=1, email="ann@example.com", lead_id=LeadId(7))
    enqueue(outbox, ledger, states[P], {A: True}, offset=0)
    outbox.enqueue(q, states[q], {A: True}, 0, 1, 0.0)
    first = outbox.next_list_call(now=100.0, force=True)
    second = outbox.next_list_call(now=100.0, force=True)
    assert first is not None
    assert second is not None
    assert (first.lead_ids, second.lead_ids) == ([LeadId(7)], [LeadId(7)])


def test_an_add_lost_to_1004_and_replaced_by_a_remove_syncs_no_one() -> None:
    """Once a newer remove replaced the add, a 1004 answer settles it: no person is created
    only to be removed."""
    outbox, ledger, states, call = known_person_call(member=True)
    enqueue(outbox, ledger, states[P], {A: False}, offset=1)
    settled = outbox.settle_list_call(call, [("skipped", "1004", "Lead not found")])
    assert (settled.rejections, states[P].lead_id) == ([], LeadId(7))
    assert outbox.next_lead_sync(now=100.0, force=True) is None


def erasing_setup() -> tuple[Outbox, OffsetLedger, States]:
    """Lead 7, member of A, deleted at offset 1 with `delete_persons` on."""
    outbox, ledger, states = outbox_on([A], delete_persons=True)
    states[P] = ProfileState(
        ts_ms=2, offset=1, acked=frozenset({A}), lead_id=LeadId(7), deleted=True
    )
    deleted = states[P]
    enqueue(outbox, ledger, deleted, {A: False}, offset=1)
    outbox.erase_if_deleted(P, deleted, 0, 1, 0.0)
    return outbox, ledger, states


def test_a_person_is_deleted_only_after_leaving_every_list() -> None:
    """The deletion of a deleted profile's person waits until its list removal is settled."""
    outbox, _ledger, _states = erasing_setup()
    assert outbox.next_erase(now=100.0) is None
    remove = outbox.next_list_call(now=100.0)
    assert remove is not None
    outbox.settle_list_call(remove, [("removed", "", "")])
    erase = outbox.next_erase(now=100.0)
    assert erase is not None
    assert erase.lead_ids == [LeadId(7)]


def test_a_person_marketo_no_longer_has_counts_as_deleted() -> None:
    """1004 on a delete is done: the hold is released and the state forgets the lead id."""
    outbox, ledger, states = erasing_setup()
    remove = outbox.next_list_call(now=100.0)
    assert remove is not None
    outbox.settle_list_call(remove, [("removed", "", "")])
    erase = outbox.next_erase(now=100.0)
    assert erase is not None
    settled = outbox.settle_erase(erase, [("skipped", "1004", "Lead not found")])
    assert (settled.rejections, states[P].lead_id, ledger.committable()) == ([], None, {0: 2})


def test_a_profile_back_before_the_deletion_cancels_it() -> None:
    """An event after the delete (the profile came back) cancels the pending deletion."""
    outbox, ledger, _states = erasing_setup()
    back = ProfileState(ts_ms=3, offset=2, email="ann@example.com", lead_id=LeadId(7))
    held = ledger.held_count()
    outbox.erase_if_deleted(P, back, 0, 2, 0.0)
    assert (outbox.size(), ledger.held_count()) == (1, held - 1)  # the removal only


def deleted_while_syncing(
    sync_in_flight: bool,
) -> tuple[Outbox, OffsetLedger, States, LeadSyncCall | None]:
    """With `delete_persons`, Ann (no lead id yet) enters A at offset 0, her lead sync is taken
    (or still buffered), and her profile is deleted at offset 1; return the sync taken."""
    outbox, ledger, states = outbox_on([A], delete_persons=True)
    states[P] = ProfileState(ts_ms=1, offset=0, email="ann@example.com")
    enqueue(outbox, ledger, states[P], {A: True}, offset=0)
    sync = outbox.next_lead_sync(now=100.0, force=True) if sync_in_flight else None
    states[P] = ProfileState(ts_ms=2, offset=1, deleted=True)
    enqueue(outbox, ledger, states[P], {A: False}, offset=1)
    outbox.erase_if_deleted(P, states[P], 0, 1, 100.0)
    return outbox, ledger, states, sync


def test_a_person_created_by_a_sync_in_flight_at_the_delete_is_deleted() -> None:
    """The lead id the sync brings back after the delete is the person to delete; until then
    the delete's offset is held."""
    outbox, ledger, _states, sync = deleted_while_syncing(sync_in_flight=True)
    assert sync is not None
    assert (outbox.next_erase(now=100.0, force=True), ledger.committable()) == (None, {0: 1})
    outbox.settle_lead_sync(sync, [("created", LeadId(7), "", "")], match_only=False)
    erase = outbox.next_erase(now=100.0, force=True)
    assert erase is not None
    assert erase.lead_ids == [LeadId(7)]


def test_a_refused_sync_in_flight_at_the_delete_leaves_no_person_to_delete() -> None:
    """A sync refused after the delete created no one: the deletion is dropped, the offset
    released."""
    outbox, ledger, _states, sync = deleted_while_syncing(sync_in_flight=True)
    assert sync is not None
    outbox.settle_lead_sync(sync, [("skipped", None, "1006", "bad field")], match_only=False)
    assert (outbox.size(), ledger.committable()) == (0, {0: 2})


def test_a_buffered_sync_cancelled_by_the_delete_leaves_nothing_to_delete() -> None:
    """The delete cancels the sync not yet sent, so no person is created and none awaited."""
    outbox, ledger, _states, _sync = deleted_while_syncing(sync_in_flight=False)
    assert (outbox.next_lead_sync(now=100.0, force=True), outbox.size()) == (None, 0)
    assert ledger.committable() == {0: 2}


def test_an_answered_deletion_is_no_longer_outstanding_in_the_state() -> None:
    """Once Marketo deleted the person, the state forgets its lead id and the marker, so no
    restore sends the deletion again."""
    outbox, _ledger, states = erasing_setup()
    assert states[P].erasing
    remove = outbox.next_list_call(now=100.0)
    assert remove is not None
    outbox.settle_list_call(remove, [("removed", "", "")])
    erase = outbox.next_erase(now=100.0)
    assert erase is not None
    outbox.settle_erase(erase, [("deleted", "", "")])
    assert (states[P].lead_id, states[P].erasing) == (None, False)


def test_turns_alternate_while_both_lanes_have_calls_and_start_with_the_stream() -> None:
    """The stream is asked first, but after a stream call the backlog is asked first."""
    turns = Turns()
    assert turns.order() == (Lane.STREAM, Lane.BACKLOG)
    turns.served(Lane.STREAM)
    assert turns.order() == (Lane.BACKLOG, Lane.STREAM)
    turns.served(Lane.BACKLOG)
    assert turns.order() == (Lane.STREAM, Lane.BACKLOG)


def test_a_backlog_that_fills_a_call_is_due_for_the_backlog_but_not_for_the_stream() -> None:
    """300 backlog adds (no offset) make a backlog call due at once; the stream has none due."""
    outbox, _ledger, states = outbox_on([A])
    for i in range(300):
        profile = ProfileId(f"p{i}")
        states[profile] = ProfileState(ts_ms=1, offset=0, email=f"{i}@x.io", lead_id=LeadId(i + 1))
        outbox.enqueue(profile, states[profile], {A: True}, 0, None, 0.0)
    assert outbox.next_list_call(0.0, lane=Lane.STREAM) is None
    call = outbox.next_list_call(0.0, lane=Lane.BACKLOG)
    assert call is not None
    assert len(call.taken) == 300
