"""Coalescing buffers (guarantee 3): last write wins per key; a key is never in two calls at once.

One buffer per list (key: profile, value: the op) and one lead-sync buffer shared by all lists
(key: email). Pure: the caller passes `now`; the holds the entries carry are handed back to it
(worker.core.outbox, which releases them).

Each entry is in one of two lanes: the stream (a change read from the input, whose offset waits
for it) or the backlog (what a restore sends again or an activation queues, holding no offset).
Entries are taken stream first, then backlog, each oldest first, so that a streamed change never
queues behind a backlog of thousands in the same buffer; a key the stream changes while it
waits in the backlog moves to the stream lane (and ages from then).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Generic, TypeVar

from worker.core.ledger import Hold

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Lane(IntEnum):
    """Where a change comes from, which decides its turn (worker.core.outbox.Turns)."""

    STREAM = 0  # read from the input: its offset is held until Marketo answers
    BACKLOG = 1  # a restore's re-send or an activation: nothing waits on an offset


LANES = (Lane.STREAM, Lane.BACKLOG)


def lane_of(offset: int | None) -> Lane:
    """The lane of a change holding `offset` (None: a restore's or an activation's)."""
    return Lane.BACKLOG if offset is None else Lane.STREAM


@dataclass(slots=True)
class Entry(Generic[V]):
    """A buffered change: its value, the offset hold it carries, when it was first buffered (in
    its lane), and its lane."""

    value: V
    hold: Hold | None
    since: float
    lane: Lane = Lane.STREAM


@dataclass(frozen=True, slots=True)
class Taken(Generic[K, V]):
    """One entry taken for a call; it stays in flight until `finish`."""

    key: K
    entry: Entry[V]


class CoalescingBuffer(Generic[K, V]):
    """Pending entries per key, plus the keys whose call is in flight."""

    def __init__(self, presence: dict[K, set[str]] | None = None, name: str = "") -> None:
        # per lane (indexed by Lane), insertion order = age order (updates keep place)
        self._lanes: tuple[dict[K, Entry[V]], dict[K, Entry[V]]] = ({}, {})
        self._in_flight: dict[K, Entry[V]] = {}
        # shared by several buffers: per key, the names of those where it has an entry pending
        # or in flight (absent: none), so what holds a key is one lookup, not one per buffer
        self._presence = presence
        self._name = name

    def __len__(self) -> int:
        return len(self._lanes[0]) + len(self._lanes[1])

    def waiting(self, lane: Lane) -> int:
        """Return the number of entries pending in `lane`."""
        return len(self._lanes[lane])

    def _entry(self, key: K) -> Entry[V] | None:
        stream, backlog = self._lanes
        entry = stream.get(key)
        return backlog.get(key) if entry is None else entry

    def pending(self, key: K) -> V | None:
        """Return the value buffered for `key`, if any."""
        entry = self._entry(key)
        return None if entry is None else entry.value

    def in_flight(self, key: K) -> V | None:
        """Return the value of the call in flight for `key`, if any."""
        entry = self._in_flight.get(key)
        return None if entry is None else entry.value

    def put(
        self, key: K, value: V, hold: Hold | None, now: float, lane: Lane = Lane.STREAM
    ) -> Hold | None:
        """Buffer `value` for `key` in `lane`, replacing a pending one (which keeps its age and
        place, unless it moves from the backlog to the stream); return the replaced hold."""
        entry = self._entry(key)
        if entry is None:
            self._add_pending(key, Entry(value, hold, now, lane))
            return None
        if lane < entry.lane:  # the stream now waits for it: its turn is the stream's
            del self._lanes[entry.lane][key]
            entry.lane, entry.since = lane, now
            self._lanes[lane][key] = entry
        replaced, entry.value, entry.hold = entry.hold, value, hold
        return replaced

    def in_flight_values(self) -> list[V]:
        """Return the values of every call in flight."""
        return [entry.value for entry in self._in_flight.values()]

    def update(self, key: K, value: V) -> None:
        """Change the value pending for `key`, keeping its hold, its age and its lane."""
        entry = self._entry(key)
        assert entry is not None  # only called for a pending key
        entry.value = value

    def cancel(self, key: K) -> Hold | None:
        """Drop the pending entry for `key` (e.g. enter then exit before a flush)."""
        entry = self._entry(key)
        if entry is None:
            return None
        del self._lanes[entry.lane][key]
        if key not in self._in_flight:
            self._lose(key)
        return entry.hold

    def oldest_since(self, lane: Lane | None = None) -> float | None:
        """Return when the oldest entry pending in `lane` (None: in either) was buffered."""
        oldest = None
        for part in LANES if lane is None else (lane,):
            for entry in self._lanes[part].values():
                oldest = entry.since if oldest is None else min(oldest, entry.since)
                break
        return oldest

    def take(
        self, limit: int, eligible: Callable[[K, V], bool] = lambda _k, _v: True
    ) -> list[Taken[K, V]]:
        """Move up to `limit` eligible pending entries, the stream's then the backlog's, oldest
        first, to in flight."""
        taken: list[Taken[K, V]] = []
        for pending in self._lanes:
            for key, entry in pending.items():
                if len(taken) >= limit:
                    break
                if key not in self._in_flight and eligible(key, entry.value):
                    taken.append(Taken(key, entry))
        for item in taken:
            del self._lanes[item.entry.lane][item.key]
            self._in_flight[item.key] = item.entry
        return taken

    def count(self, lane: Lane, matches: Callable[[V], bool]) -> int:
        """Return the number of entries pending in `lane` whose value matches."""
        return sum(1 for entry in self._lanes[lane].values() if matches(entry.value))

    def take_lane(self, lane: Lane, eligible: Callable[[K, V], bool]) -> list[Taken[K, V]]:
        """Move every eligible pending entry of `lane` (oldest first) to in flight."""
        pending = self._lanes[lane]
        taken = [
            Taken(key, entry)
            for key, entry in pending.items()
            if key not in self._in_flight and eligible(key, entry.value)
        ]
        for item in taken:
            del pending[item.key]
            self._in_flight[item.key] = item.entry
        return taken

    def finish(self, taken: Iterable[Taken[K, V]]) -> None:
        """Mark a call's entries as done (acknowledged, rejected or abandoned)."""
        for item in taken:
            self._end_flight(item)

    def give_back(
        self, taken: Iterable[Taken[K, V]], keep: Callable[[Entry[V]], bool] = lambda _e: True
    ) -> list[Hold | None]:
        """Return a failed call's entries for a later retry, those that are still to `keep`;
        return the holds of the others and of those a newer value superseded meanwhile (the
        caller releases them)."""
        released: list[Hold | None] = []
        for item in taken:
            self._end_flight(item)
            if self._entry(item.key) is not None or not keep(item.entry):
                released.append(item.entry.hold)
            else:
                self._add_pending(item.key, item.entry)
        return released

    def _end_flight(self, item: Taken[K, V]) -> None:
        # only the call's own entry: after `drop`, another call may have the key in flight
        if self._in_flight.get(item.key) is item.entry:
            self._forget_flight(item.key)

    def drop(self, should_drop: Callable[[Entry[V]], bool]) -> list[Hold | None]:
        """Remove pending entries that match (revoked partitions), and forget calls in flight
        for such entries (their answers no longer count); return the pending ones' holds."""
        for key in [key for key, entry in self._in_flight.items() if should_drop(entry)]:
            self._forget_flight(key)
        doomed = [key for pending in self._lanes for key, e in pending.items() if should_drop(e)]
        return [self.cancel(key) for key in doomed]

    # -- presence: every change of a key's pending or in-flight entry goes through these --

    def _add_pending(self, key: K, entry: Entry[V]) -> None:
        if key not in self._in_flight:
            self._gain(key)
        self._lanes[entry.lane][key] = entry

    def _forget_flight(self, key: K) -> None:
        del self._in_flight[key]
        if self._entry(key) is None:
            self._lose(key)

    def _gain(self, key: K) -> None:
        if self._presence is not None:
            self._presence.setdefault(key, set()).add(self._name)

    def _lose(self, key: K) -> None:
        if self._presence is not None:
            names = self._presence[key]
            names.discard(self._name)
            if not names:
                del self._presence[key]
