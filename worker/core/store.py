"""Profile states in memory, per input partition, with the set written at the next commit. Pure.

States are grouped by partition so that a revoked partition is dropped whole and a restored
one is filled whole; `dirty` holds the profiles whose changelog record is out of date.
"""

from __future__ import annotations

from collections.abc import Iterator

from worker.core.ids import ProfileId
from worker.core.profile import ProfileState


class StateStore:
    """Per-partition maps of profile states."""

    def __init__(self) -> None:
        self._partitions: dict[int, dict[ProfileId, ProfileState]] = {}
        self._where: dict[ProfileId, int] = {}
        self.dirty: dict[int, set[ProfileId]] = {}

    def __len__(self) -> int:
        return len(self._where)

    def assign(self, partition: int) -> None:
        """Start an empty partition (restore fills it)."""
        self._partitions[partition] = {}
        self.dirty[partition] = set()

    def drop(self, partition: int) -> None:
        """Forget a revoked partition's states."""
        for profile in self._partitions.pop(partition, {}):
            self._where.pop(profile, None)
        self.dirty.pop(partition, None)

    def get(self, profile: ProfileId) -> ProfileState | None:
        """Return a profile's state, wherever its partition is."""
        partition = self._where.get(profile)
        return None if partition is None else self._partitions[partition].get(profile)

    def put(
        self, partition: int, profile: ProfileId, state: ProfileState, *, dirty: bool = True
    ) -> None:
        """Store a state; a dirty one is written to the changelog at the next commit."""
        states = self._partitions.get(partition)
        if states is None:
            return  # the partition was revoked meanwhile
        states[profile] = state
        self._where[profile] = partition
        if dirty:
            self.dirty[partition].add(profile)

    def touch(self, profile: ProfileId) -> None:
        """Mark a profile's state changed in place (an acknowledgement, a lead id)."""
        partition = self._where.get(profile)
        if partition is not None:
            self.dirty[partition].add(profile)

    def partition_of(self, profile: ProfileId) -> int | None:
        """Return the partition a profile's state belongs to."""
        return self._where.get(profile)

    def items(self, partition: int) -> Iterator[tuple[ProfileId, ProfileState]]:
        """Iterate over one partition's states."""
        yield from self._partitions.get(partition, {}).items()

    def take_dirty(self) -> list[tuple[int, ProfileId, ProfileState]]:
        """Return and clear every dirty state, with its partition."""
        out: list[tuple[int, ProfileId, ProfileState]] = []
        for partition, profiles in self.dirty.items():
            states = self._partitions[partition]
            out.extend((partition, p, states[p]) for p in profiles if p in states)
            profiles.clear()
        return out
