"""The assigned partitions and where each is in its life. Pure: no I/O.

A partition is assigned restoring: it stays paused until its restore has run. The restore starts
at once; it goes on only if the partition's changelog ends with a clean-handover marker (its
previous owner stopped with every call answered), else it is tried again once every Marketo call
of its previous owner has ended (the handover time, kept here); then it is active, and the
loop pauses and resumes active ones for backpressure. A restore may instead find that a newer
replica activated other audience definitions on it (worker.core.activation): the partition is
then stood down, kept paused and never processed, until a rebalance assigns it again. Each
assignment gets a new epoch, so that what was read in an earlier one is told apart (the offset
ledger's holds carry it), and the replay bound of its restore: offsets below it were readable
before we owned the partition.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(slots=True)
class Partition:
    """One assigned partition: its epoch, its phase and, once active, its replay bound."""

    epoch: int
    restore_at: float | None  # when its restore may start; None: started (or done)
    # before this, calls its previous owner started may still run (unless it handed over cleanly)
    handover_until: float = -math.inf
    restoring: bool = True
    paused: bool = False  # for backpressure (a restoring one is paused apart from this)
    # left to a newer replica's audience definitions: paused, never processed, not ready
    stood_down: bool = False
    # offsets below this were readable before we owned it, so a previous owner may have acted
    # on them (their replayed changes are sent explicitly); -1: it wrote all it did
    replay_until: int = -1


class Partitions:
    """The table of assigned partitions: restoring, active or stood down, paused, epoch, replay
    bound."""

    def __init__(self) -> None:
        self._table: dict[int, Partition] = {}
        self._epochs = 0

    def __contains__(self, partition: object) -> bool:
        return partition in self._table

    def __len__(self) -> int:
        return len(self._table)

    def __iter__(self) -> Iterator[int]:
        return iter(self._table)

    def assign(
        self, partitions: Iterable[int], restore_at: float, handover_until: float = -math.inf
    ) -> dict[int, int]:
        """Add newly assigned partitions, restoring from `restore_at`, their previous owner's
        calls ended by `handover_until`; return their epochs."""
        epochs = {}
        for partition in partitions:
            self._epochs += 1
            self._table[partition] = Partition(self._epochs, restore_at, handover_until)
            epochs[partition] = self._epochs
        return epochs

    def revoke(self, partitions: Iterable[int]) -> None:
        """Forget lost partitions."""
        for partition in partitions:
            self._table.pop(partition, None)

    def epoch(self, partition: int) -> int | None:
        """Return the partition's assignment epoch, or None if it is not assigned."""
        entry = self._table.get(partition)
        return None if entry is None else entry.epoch

    def handover_until(self, partition: int) -> float:
        """When every call the partition's previous owner may have started has ended."""
        entry = self._table.get(partition)
        return -math.inf if entry is None else entry.handover_until

    def restoring(self) -> set[int]:
        """The partitions waiting for, or in, their restore."""
        return {p for p, entry in self._table.items() if entry.restoring}

    def active(self) -> set[int]:
        """The partitions restored: their records are processed."""
        return {
            p for p, entry in self._table.items() if not entry.restoring and not entry.stood_down
        }

    def stood_down(self) -> set[int]:
        """The partitions left to a newer replica: kept paused until the next rebalance."""
        return {p for p, entry in self._table.items() if entry.stood_down}

    def paused(self) -> set[int]:
        """The active partitions paused for backpressure."""
        return {p for p, entry in self._table.items() if entry.paused}

    def start_due(self, now: float) -> list[int]:
        """Return the restores due at `now`, marked as started."""
        due = []
        for partition, entry in self._table.items():
            if entry.restore_at is not None and entry.restore_at <= now:
                entry.restore_at = None
                due.append(partition)
        return due

    def retry_restore(self, partition: int, at: float) -> None:
        """A restore failed: try it again from `at` (unless the partition was revoked)."""
        entry = self._table.get(partition)
        if entry is not None and entry.restoring:
            entry.restore_at = at

    def restored(self, partition: int, epoch: int, replay_until: int) -> bool:
        """A restore of the assignment `epoch` ended: the partition is active; return whether
        it is still that assignment (else the restore counts for nothing)."""
        entry = self._table.get(partition)
        if entry is None or entry.epoch != epoch:
            return False
        entry.restoring, entry.replay_until = False, replay_until
        return True

    def stand_down(self, partition: int, epoch: int) -> bool:
        """A restore of the assignment `epoch` found newer audience definitions than ours: the
        partition stays paused for good (this assignment); return whether it is still that
        assignment."""
        entry = self._table.get(partition)
        if entry is None or entry.epoch != epoch:
            return False
        entry.restoring, entry.stood_down = False, True
        return True

    def replay_until(self, partition: int) -> int:
        """Offsets below this are replayed ones a previous owner may have acted on."""
        entry = self._table.get(partition)
        return -1 if entry is None else entry.replay_until

    def pause(self, partitions: Iterable[int]) -> None:
        """Mark active partitions as paused for backpressure."""
        for partition in partitions:
            self._table[partition].paused = True

    def resume_all(self) -> set[int]:
        """Clear every backpressure pause; return the partitions it paused."""
        resumed = self.paused()
        for partition in resumed:
            self._table[partition].paused = False
        return resumed
