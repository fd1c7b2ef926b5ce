"""The offset ledger: which input offsets may be committed (docs/guarantees.md, 2). Pure: no I/O.

A partition's committable offset is the lowest offset still held by an unflushed change, or the
next offset after the last record read when nothing is held. Holds carry the partition's
assignment epoch, so a late release for a revoked (or re-assigned) partition is ignored.
Holds are taken and released by the outbox alone (worker.core.outbox): the change that carries
a hold is the one thing that can settle it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Hold:
    """One unflushed change's claim on an input offset (None: a change re-sent by a restore,
    which holds no offset but still belongs to this assignment of the partition)."""

    partition: int
    offset: int | None
    epoch: int


@dataclass(slots=True)
class _Partition:
    epoch: int
    next_offset: int | None = None  # after the last record read; None until one is read
    committed: int | None = None
    held: dict[int, int] = field(default_factory=dict)  # offset -> number of holds


class OffsetLedger:
    """Per-partition watermark of fully flushed offsets."""

    def __init__(self) -> None:
        self._partitions: dict[int, _Partition] = {}

    def assign(self, partition: int, epoch: int) -> None:
        """Start tracking a newly assigned partition in its assignment `epoch` (a number the
        partitions' table gives each assignment, worker.core.partitions)."""
        self._partitions[partition] = _Partition(epoch=epoch)

    def revoke(self, partition: int) -> None:
        """Forget a partition: its holds die with it (the new owner re-reads them)."""
        self._partitions.pop(partition, None)

    def epoch(self, partition: int) -> int | None:
        """Return the partition's current assignment epoch, or None if it is not assigned."""
        state = self._partitions.get(partition)
        return None if state is None else state.epoch

    def read(self, partition: int, offset: int) -> None:
        """Record that `offset` was read: without holds it is done once processed."""
        state = self._partitions.get(partition)
        if state is not None:
            state.next_offset = offset + 1

    def hold(self, partition: int, offset: int | None) -> Hold | None:
        """Keep `offset` from being committed until the returned hold is released; with None,
        hold nothing but tie the change to the partition's current assignment."""
        state = self._partitions.get(partition)
        if state is None:
            return None
        if offset is not None:
            state.held[offset] = state.held.get(offset, 0) + 1
        return Hold(partition, offset, state.epoch)

    def is_current(self, hold: Hold | None) -> bool:
        """Tell whether a change was read in its partition's current assignment (or belongs to
        no partition, as lead syncs do)."""
        if hold is None:
            return True
        state = self._partitions.get(hold.partition)
        return state is not None and state.epoch == hold.epoch

    def release(self, hold: Hold | None) -> None:
        """Drop a hold; a hold from an earlier assignment of the partition is ignored."""
        if hold is None or hold.offset is None:
            return
        state = self._partitions.get(hold.partition)
        if state is None or state.epoch != hold.epoch:
            return
        count = state.held.get(hold.offset, 0)
        if count <= 1:
            state.held.pop(hold.offset, None)
        else:
            state.held[hold.offset] = count - 1

    def committable(self) -> dict[int, int]:
        """Return, per partition, the offset to commit when it moved past the last commit."""
        due: dict[int, int] = {}
        for partition, state in self._partitions.items():
            if state.next_offset is None:
                continue
            offset = min(state.held) if state.held else state.next_offset
            if state.committed is None or offset > state.committed:
                due[partition] = offset
        return due

    def committed(self, partition: int, offset: int) -> None:
        """Record a successful commit, so the same offset is not committed again."""
        state = self._partitions.get(partition)
        if state is not None and (state.committed is None or offset > state.committed):
            state.committed = offset

    def held_count(self) -> int:
        """Return how many holds are outstanding over all partitions."""
        return sum(sum(state.held.values()) for state in self._partitions.values())
