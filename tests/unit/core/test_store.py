"""The state store: encoded at rest, decoded while in use, written and forgotten at commit."""

from __future__ import annotations

import random
from dataclasses import replace

from worker.core.ids import AudienceId, LeadId, ProfileId
from worker.core.profile import ProfileState
from worker.core.progress import progress
from worker.core.snapshot import StateCodec, layout_of
from worker.core.store import MAX_DEFERRED_COMMITS, StateStore
from worker.core.tally import Counts

CODEC = StateCodec()
P1, P2 = ProfileId("p1"), ProfileId("p2")
FR, DE = AudienceId("fr"), AudienceId("de")


def fr(ts: int = 1) -> ProfileState:
    return ProfileState(ts_ms=ts, offset=0, email="a@x.io", attributes={"country": "FR"})


def load(store: StateStore, partition: int, states: dict[bytes, bytes]) -> None:
    """Fill a partition as a restore does: its changelog has the layouts of its states."""
    store.load(partition, states, {layout_of(data) or 0 for data in states.values()})


def store_with(*partitions: int) -> StateStore:
    store = StateStore(CODEC)
    for partition in partitions:
        store.assign(partition)
    return store


def test_a_put_state_is_written_once_at_the_commit_and_then_kept_encoded() -> None:
    """take_dirty returns each changed state's bytes once; a later get decodes them back."""
    store = store_with(0)
    store.put(0, P1, fr())
    written = store.take_dirty()
    assert [(p, profile, CODEC.decode(data)) for p, profile, data in written] == [(0, P1, fr())]
    assert store.take_dirty() == []
    assert store.get(P1) == fr()


def test_an_acknowledgement_recorded_by_the_store_reaches_the_changelog() -> None:
    """An acknowledgement of a restored state is in the next commit's bytes."""
    store = store_with(0)
    load(store, 0, {b"p1": CODEC.encode(fr())})
    store.acknowledge(P1, FR, member=True)
    state = store.get(P1)
    ((_, _, data),) = store.take_dirty()
    assert CODEC.decode(data).acked == frozenset({FR})
    assert store.get(P1) == state


def test_len_counts_restored_and_new_profiles_once() -> None:
    """A profile restored then changed, and a new one, count as two before and after commit."""
    store = store_with(0)
    load(store, 0, {b"p1": CODEC.encode(fr())})
    store.put(0, P1, fr(2))
    store.put(0, P2, fr())
    assert len(store) == 2
    store.take_dirty()
    assert len(store) == 2


def test_drop_forgets_a_partitions_states_at_rest_and_in_use() -> None:
    """A revoked partition's states, encoded or decoded, are gone; the others stay."""
    store = store_with(0, 1)
    load(store, 0, {b"p1": CODEC.encode(fr())})
    store.put(0, P2, fr())
    store.put(1, ProfileId("p3"), fr())
    store.drop(0)
    assert (store.get(P1), store.get(P2), len(store)) == (None, None, 1)
    assert [profile for _, profile, _ in store.take_dirty()] == ["p3"]


def test_a_state_for_a_revoked_partition_is_not_stored() -> None:
    """A put that arrives after its partition was revoked is ignored."""
    store = store_with(0)
    store.put(5, P1, fr())
    assert (store.get(P1), len(store)) == (None, 0)


def test_the_partition_hint_looks_in_that_partition_only() -> None:
    """get(profile, partition) does not find the profile in another partition."""
    store = store_with(0, 1)
    load(store, 1, {b"p1": CODEC.encode(fr())})
    assert store.get(P1, 0) is None
    assert store.get(P1, 1) == fr()


def test_a_corrupt_state_is_reported_dropped_and_read_as_absent() -> None:
    """Bytes that do not decode call on_corrupt once and leave no state behind."""
    corrupt: list[ProfileId] = []
    store = StateStore(CODEC, on_corrupt=corrupt.append)
    store.assign(0)
    load(store, 0, {b"p1": b"\x93\x01"})
    assert (store.get(P1), store.get(P1), corrupt, len(store)) == (None, None, [P1], 0)


def awaiting(offset: int) -> ProfileState:
    """A state whose membership of FR Marketo has not acknowledged yet."""
    return ProfileState(
        ts_ms=1,
        offset=offset,
        email="a@x.io",
        attributes={"country": "FR"},
        desired=frozenset({FR}),
    )


def test_a_state_awaiting_marketo_waits_while_the_commit_does_not_pass_its_event() -> None:
    """Committing up to the state's own event keeps it back; committing past it writes it."""
    store = store_with(0)
    store.put(0, P1, awaiting(10))
    assert store.take_dirty({0: 10}) == []
    assert [profile for _, profile, _ in store.take_dirty({0: 11})] == [P1]


def test_an_acknowledgement_joins_the_kept_back_state_in_one_record() -> None:
    """The event and its acknowledgement, a commit apart, reach the changelog as one record."""
    store = store_with(0)
    store.put(0, P1, awaiting(10))
    store.take_dirty({0: 10})
    store.acknowledge(P1, FR, member=True)
    ((_, _, data),) = store.take_dirty({0: 10})
    assert CODEC.decode(data).acked == {FR}


def test_a_kept_back_state_is_written_after_the_most_deferred_commits() -> None:
    """A state whose acknowledgement never comes is written after MAX_DEFERRED_COMMITS."""
    store = store_with(0)
    store.put(0, P1, awaiting(10))
    written = [store.take_dirty({0: 10}) for _ in range(MAX_DEFERRED_COMMITS)]
    assert [len(batch) for batch in written] == [0] * (MAX_DEFERRED_COMMITS - 1) + [1]


def test_the_final_commit_writes_every_changed_state() -> None:
    """A shutdown (no offsets given) writes even a state that awaits Marketo."""
    store = store_with(0)
    store.put(0, P1, awaiting(10))
    assert [profile for _, profile, _ in store.take_dirty(None)] == [P1]


def test_the_lead_id_is_read_from_the_encoded_head_alone() -> None:
    """lead_id answers from a state in use, and from the head of bytes at rest: even under a
    layout this codec cannot decode the rest of."""
    store = store_with(0)
    store.put(0, P2, ProfileState(ts_ms=1, offset=0, lead_id=LeadId(9)))
    unknown = ProfileState(ts_ms=1, offset=0, attributes={"unknown": 1}, lead_id=LeadId(4))
    other_layout = StateCodec().encode(unknown)
    load(store, 0, {b"p1": other_layout})
    assert (store.lead_id(P1), store.lead_id(P2), store.lead_id(ProfileId("p9"))) == (4, 9, None)
    assert store.get(P1) is None  # the whole state does not decode


def test_a_membership_with_a_call_outstanding_is_written_unacknowledged() -> None:
    """While a call for the profile is buffered or in flight, the record says so (a restore
    re-sends it), and the state at rest keeps what Marketo really acknowledged."""
    store = store_with(0)
    settled = fr()
    settled.offset = 10
    store.put(0, P1, settled)
    ((_, _, data),) = store.take_dirty(None, lambda _p: frozenset({FR}))
    assert (CODEC.decode(data).acked, CODEC.unacknowledged(data)) == (frozenset({FR}), True)
    at_rest = store.get(P1)
    assert at_rest is not None
    assert at_rest.acked == frozenset()


def counted(store: StateStore, states: dict[ProfileId, ProfileState]) -> bool:
    """Tell whether the store's running counts equal a count over every state (progress)."""
    expected = {
        item.audience: Counts(item.wanted, item.in_marketo, item.pending_adds, item.pending_removes)
        for item in progress(states.values(), [FR, DE]).audiences
    }
    return store.tally.totals([FR, DE]) == expected


def member(*desired: AudienceId, acked: frozenset[AudienceId] = frozenset()) -> ProfileState:
    return ProfileState(ts_ms=1, offset=0, email="a@x.io", desired=frozenset(desired), acked=acked)


def test_the_counts_follow_puts_and_acknowledgements_as_a_scan_would() -> None:
    """Random puts, deletes and acks: the running counts always equal a count of every state."""
    rng = random.Random(7)
    store, states = store_with(0), {}
    for step in range(400):
        profile = ProfileId(f"p{rng.randrange(30)}")
        if step % 50 == 0:
            store.take_dirty()  # states go to rest and are decoded again
        state = store.get(profile)
        if state is not None and rng.random() < 0.5:
            store.acknowledge(profile, rng.choice([FR, DE]), rng.random() < 0.7)
        else:
            desired = [a for a in (FR, DE) if rng.random() < 0.5]
            acked = frozenset() if state is None else state.acked
            new = member(*desired, acked=acked)
            new.deleted = rng.random() < 0.1
            store.put(0, profile, new)
        states[profile] = store.get(profile) or member()
        assert counted(store, states)


def test_restored_states_add_their_counts_and_a_revoked_partition_removes_them() -> None:
    """Loaded encoded states count as their heads say; dropping the partition uncounts them."""
    store = store_with(0, 1)
    states = {P1: member(FR, acked=frozenset({FR})), P2: member(FR, DE)}
    load(store, 0, {b"p1": CODEC.encode(states[P1])})
    load(store, 1, {b"p2": CODEC.encode(states[P2])})
    assert counted(store, states)
    store.drop(1)
    assert counted(store, {P1: states[P1]})


def test_a_restored_state_evaluated_afresh_moves_its_counts() -> None:
    """A put of a loaded state never decoded (a restore's evaluation) replaces its counts."""
    store = store_with(0)
    load(store, 0, {b"p1": CODEC.encode(member(FR, acked=frozenset({FR})))})
    store.put(0, P1, member(DE, acked=frozenset({FR})))
    assert counted(store, {P1: member(DE, acked=frozenset({FR}))})


def test_a_corrupt_state_dropped_on_read_is_uncounted() -> None:
    """A record whose head decodes but not its body (an unknown layout) is counted, then
    dropped by get."""
    store = store_with(0)
    unknown = replace(member(FR), attributes={"city": "Lyon"})  # a layout CODEC never learnt
    store.load(0, {b"p1": StateCodec().encode(unknown)}, set())
    assert not counted(store, {})
    assert store.get(P1) is None
    assert counted(store, {})
