"""The partitions' table: a partition restores, then is active; each assignment its epoch."""

from __future__ import annotations

from worker.core.partitions import Partitions


def test_a_partition_restores_from_its_handover_time_then_is_active() -> None:
    """Its restore is due once, at the time given; once restored it is active."""
    table = Partitions()
    epoch = table.assign([0], restore_at=5.0)[0]
    due = (table.start_due(4.9), table.start_due(5.0), table.start_due(6.0))
    assert due == ([], [0], [])
    assert (table.restoring(), table.restored(0, epoch, replay_until=7)) == ({0}, True)
    assert (table.active(), table.replay_until(0)) == ({0}, 7)


def test_each_assignment_keeps_its_handover_time() -> None:
    """The time its previous owner's calls have all ended; none for a partition not assigned."""
    table = Partitions()
    table.assign([0], restore_at=1.0, handover_until=7.0)
    assert (table.handover_until(0), table.handover_until(1)) == (7.0, float("-inf"))


def test_a_restore_of_an_earlier_assignment_counts_for_nothing() -> None:
    """Revoked and assigned again during its restore: the old restore's end is ignored."""
    table = Partitions()
    old = table.assign([0], restore_at=0.0)[0]
    table.revoke([0])
    table.assign([0], restore_at=0.0)
    assert (table.restored(0, old, replay_until=3), table.restoring()) == (False, {0})


def test_a_failed_restore_is_due_again_at_its_retry_time() -> None:
    """A restore that failed is started again once its retry time has come."""
    table = Partitions()
    table.assign([0], restore_at=0.0)
    table.start_due(0.0)
    table.retry_restore(0, at=1.0)
    assert (table.start_due(0.5), table.start_due(1.0)) == ([], [0])


def test_only_paused_partitions_are_resumed() -> None:
    """Resuming clears the backpressure pauses and names the partitions they held."""
    table = Partitions()
    epochs = table.assign([0, 1], restore_at=0.0)
    for partition, epoch in epochs.items():
        table.restored(partition, epoch, replay_until=-1)
    table.pause([1])
    assert (table.paused(), table.resume_all(), table.paused()) == ({1}, {1}, set())


def test_a_stood_down_partition_is_neither_restoring_nor_active() -> None:
    """Left to a newer replica, it is only stood down: never processed, never paused or resumed."""
    table = Partitions()
    epoch = table.assign([0], restore_at=0.0)[0]
    assert table.stand_down(0, epoch)
    assert (table.restoring(), table.active(), table.stood_down(), table.resume_all()) == (
        set(),
        set(),
        {0},
        set(),
    )


def test_a_stand_down_of_an_earlier_assignment_counts_for_nothing() -> None:
    """Revoked and assigned again during its restore: the old restore's verdict is ignored."""
    table = Partitions()
    old = table.assign([0], restore_at=0.0)[0]
    table.revoke([0])
    table.assign([0], restore_at=0.0)
    assert (table.stand_down(0, old), table.stood_down(), table.restoring()) == (False, set(), {0})


def test_a_stood_down_partition_assigned_again_restores_again() -> None:
    """The next rebalance gives it a new assignment: it is checked afresh."""
    table = Partitions()
    table.stand_down(0, table.assign([0], restore_at=0.0)[0])
    table.revoke([0])
    table.assign([0], restore_at=0.0)
    assert (table.stood_down(), table.restoring()) == (set(), {0})
