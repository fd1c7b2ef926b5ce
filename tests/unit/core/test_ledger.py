"""The offset ledger releases an offset only when every change at or before it is settled."""

from __future__ import annotations

from worker.core.ledger import OffsetLedger


def ledger_with(partition: int = 0) -> OffsetLedger:
    ledger = OffsetLedger()
    ledger.assign(partition, 1)
    return ledger


def test_nothing_is_committable_before_a_record_is_read() -> None:
    """A freshly assigned partition has nothing to commit."""
    assert ledger_with().committable() == {}


def test_records_without_holds_commit_past_the_last_read() -> None:
    """Records that created no change are done at once: commit the next offset."""
    ledger = ledger_with()
    for offset in range(5):
        ledger.read(0, offset)
    assert ledger.committable() == {0: 5}


def test_a_held_offset_stops_the_commit_at_itself() -> None:
    """An unflushed change at offset 2 keeps the commit at 2 although 4 was read."""
    ledger = ledger_with()
    for offset in range(5):
        ledger.read(0, offset)
        if offset == 2:
            hold = ledger.hold(0, 2)
    assert ledger.committable() == {0: 2}
    ledger.release(hold)
    assert ledger.committable() == {0: 5}


def test_an_offset_held_twice_needs_both_releases() -> None:
    """One event feeding two lists commits only after both lists flushed."""
    ledger = ledger_with()
    ledger.read(0, 0)
    first, second = ledger.hold(0, 0), ledger.hold(0, 0)
    ledger.release(first)
    assert ledger.committable() == {0: 0}
    ledger.release(second)
    assert ledger.committable() == {0: 1}


def test_the_slowest_hold_bounds_the_commit() -> None:
    """A slow list at offset 1 keeps later flushed offsets from being committed."""
    ledger = ledger_with()
    holds = {}
    for offset in range(4):
        ledger.read(0, offset)
        holds[offset] = ledger.hold(0, offset)
    for offset in (0, 2, 3):
        ledger.release(holds[offset])
    assert ledger.committable() == {0: 1}


def test_a_committed_offset_is_not_offered_again() -> None:
    """After a commit, the same offset is not due until more is settled."""
    ledger = ledger_with()
    ledger.read(0, 0)
    ledger.committed(0, 1)
    assert ledger.committable() == {}
    ledger.read(0, 1)
    assert ledger.committable() == {0: 2}


def test_a_release_from_an_earlier_assignment_is_ignored() -> None:
    """A late completion for a revoked then re-assigned partition does not free a new hold."""
    ledger = ledger_with()
    ledger.read(0, 7)
    old = ledger.hold(0, 7)
    ledger.revoke(0)
    ledger.assign(0, 2)
    ledger.read(0, 7)
    new = ledger.hold(0, 7)
    ledger.release(old)
    assert ledger.committable() == {0: 7}
    ledger.release(new)
    assert ledger.committable() == {0: 8}


def test_a_revoked_partition_is_never_committable() -> None:
    """Once revoked, a partition offers no offset at all."""
    ledger = ledger_with()
    ledger.read(0, 3)
    assert ledger.committable() == {0: 4}  # seen before the revoke, so its absence means it
    ledger.revoke(0)
    assert ledger.committable() == {}
    assert ledger.hold(0, 4) is None


def test_a_hold_of_no_offset_never_blocks_a_commit() -> None:
    """A change a restore sends again holds no offset: the commit moves on, its release is
    harmless."""
    ledger = ledger_with()
    tag = ledger.hold(0, None)
    ledger.read(0, 0)
    assert (tag is not None, ledger.committable()) == (True, {0: 1})
    ledger.release(tag)
    assert ledger.committable() == {0: 1}


def test_a_hold_from_an_earlier_assignment_is_not_current() -> None:
    """A partition revoked and assigned again: the changes read before are no longer ours."""
    ledger = ledger_with()
    old = ledger.hold(0, None)
    ledger.revoke(0)
    ledger.assign(0, 2)
    assert (ledger.is_current(old), ledger.is_current(ledger.hold(0, None))) == (False, True)
