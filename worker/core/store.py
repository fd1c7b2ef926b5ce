"""Profile states in memory, per input partition, and which ones the changelog lacks. Pure.

At rest a state is kept as its changelog bytes (worker.core.snapshot), about 180 bytes with the
benchmark's 13 attributes instead of several KB of Python objects (the target: a million
profiles in 450 MiB). A state in use is
decoded once and kept as an object ("hot") until the next commit, which encodes the changed
ones and forgets the objects: callers re-read a state with `get` rather than keep it across a
commit, and change a stored state through the store's methods (an ack, a lead id), not in
place, so that the store knows what to write. States are grouped by partition so that a
revoked partition is dropped whole and a restored one is filled whole.

A changed state is written to the changelog at a commit, unless it still waits for Marketo's
acknowledgement and the commit does not pass its first unwritten event: then the record waits
for the acknowledgement, so that an event and its acknowledgement make one record, not two (a
restore reads half as many and keeps no replaced copies in memory). An acknowledgement is thus
kept only in memory for at most MAX_DEFERRED_COMMITS commits; a crash meanwhile costs a repeated
(idempotent) call, never a lost event, since the commit never passes an unwritten one.

The store keeps the audiences' counts (worker.core.tally) in step with the states it holds: each
state in use remembers what it was counted as, and a change counts the difference.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

import msgspec

from worker.core.ids import AudienceId, LeadId, ProfileId
from worker.core.profile import ProfileState
from worker.core.snapshot import StateCodec, layout_of
from worker.core.tally import NO_MEMBERSHIPS, Head, Memberships, Tally, from_head, memberships

_NONE: Mapping[bytes, bytes] = {}
# a profile's memberships with a Marketo call buffered or in flight (worker.core.outbox)
Outstanding = Callable[[ProfileId], frozenset[AudienceId]]


def _no_calls(_profile: ProfileId) -> frozenset[AudienceId]:
    return frozenset()


MAX_DEFERRED_COMMITS = 30  # bounds how long an acknowledgement can stay only in memory


@dataclass(slots=True)
class _Unwritten:
    """A state the changelog does not have yet, and what its record can wait for."""

    since: int  # the store's commit count when it first changed
    first_offset: int | None  # the first event not in the changelog; None: only acks changed
    awaiting: bool = False  # Marketo has yet to acknowledge a membership (as last encoded)
    # memberships with a call outstanding when last encoded: written unacknowledged (take_dirty)
    unknown: frozenset[AudienceId] = frozenset()

    def may_wait(self, limit: int | None, commits: int) -> bool:
        """Tell whether the record can wait past a commit to `limit` (None: this partition's
        commit does not move): it waits for an ack, it has not waited long, and no event it
        holds is passed."""
        if not self.awaiting or commits - self.since >= MAX_DEFERRED_COMMITS:
            return False
        return self.first_offset is None or limit is None or self.first_offset >= limit


class StateStore:
    """Per-partition maps of encoded states, the decoded ones in use since the last commit, and
    the ones whose changelog record is still to be written."""

    def __init__(
        self, codec: StateCodec, on_corrupt: Callable[[ProfileId], None] = lambda _p: None
    ) -> None:
        self.codec = codec
        self.on_corrupt = on_corrupt  # a changelog record that does not decode: logged, dropped
        # keyed by the changelog record's key (the UTF-8 profile id): bytes take 16 bytes less
        # than str per profile, and a restore keeps the keys Kafka handed it
        self._cold: dict[int, dict[bytes, bytes]] = {}
        # states in use: their partition, and the memberships the tally counts them for
        self._hot: dict[ProfileId, tuple[int, ProfileState, Memberships]] = {}
        self._changed: set[ProfileId] = set()  # hot states to encode at the next commit
        self._unwritten: dict[int, dict[ProfileId, _Unwritten]] = {}
        # per restored partition, the layouts its changelog has a record of (worker.core.snapshot)
        self._layouts: dict[int, set[int]] = {}
        self._new = 0  # profiles put since the last commit and not yet at rest
        self._commits = 0
        self.tally = Tally()

    def __len__(self) -> int:
        return sum(map(len, self._cold.values())) + self._new

    def assign(self, partition: int) -> None:
        """Start an empty partition (restore fills it)."""
        self._cold[partition] = {}
        self._unwritten[partition] = {}

    def load(self, partition: int, states: Mapping[bytes, bytes], layouts: Iterable[int]) -> None:
        """Fill a restored partition with encoded states, as read from the changelog with the
        `layouts` it has records of: a state written under another one is preceded by its
        layout's record (take_dirty)."""
        cold = self._cold.get(partition)
        if cold is None:
            return
        if cold:  # states read again replace those counted
            replaced = [cold[key] for key in states.keys() & cold.keys()]
            self.tally.load(partition, self._heads(replaced), sign=-1)
        self.tally.load(partition, self._heads(states.values()))
        cold.update(states)
        self._layouts[partition] = set(layouts)

    def _heads(self, states: Iterable[bytes]) -> Iterator[Head]:
        """The memberships of encoded states, those that do not decode left out (`get` drops
        them, uncounting nothing)."""
        head = self.codec.memberships
        for data in states:
            try:
                yield head(data)
            except msgspec.DecodeError:
                continue

    def drop(self, partition: int) -> None:
        """Forget a revoked partition's states."""
        states = self._cold.pop(partition, {})
        self._unwritten.pop(partition, None)
        self.tally.drop(partition)
        self._layouts.pop(partition, None)
        for profile in [p for p, (part, _, _) in self._hot.items() if part == partition]:
            del self._hot[profile]
            self._changed.discard(profile)
            if profile.encode() not in states:
                self._new -= 1

    def get(self, profile: ProfileId, partition: int | None = None) -> ProfileState | None:
        """Return a profile's state (decoded and kept until the next commit); `partition`, when
        known, spares the search through every partition."""
        hot = self._hot.get(profile)
        if hot is not None:
            return hot[1]
        found = self._find(profile, partition)
        if found is None:
            return None
        partition, data = found
        try:
            state = self.codec.decode(data)
        except msgspec.DecodeError:
            del self._cold[partition][profile.encode()]
            self.tally.load(partition, self._heads([data]), sign=-1)  # if its head was counted
            self.on_corrupt(profile)
            return None
        self._hot[profile] = (partition, state, memberships(state))
        return state

    def lead_id(self, profile: ProfileId) -> LeadId | None:
        """A profile's Marketo lead id, read from its encoded head when not in use (a list call
        asks for 300 of them; decoding whole states for it was a tenth of the ingest time)."""
        hot = self._hot.get(profile)
        if hot is not None:
            return hot[1].lead_id
        found = self._find(profile, None)
        if found is None:
            return None
        try:
            return self.codec.lead_id(found[1])
        except msgspec.DecodeError:
            return None  # `get` reports and drops it

    def _find(self, profile: ProfileId, partition: int | None) -> tuple[int, bytes] | None:
        key = profile.encode()
        if partition is not None:
            data = self._cold.get(partition, _NONE).get(key)
            return None if data is None else (partition, data)
        for part, states in self._cold.items():
            data = states.get(key)
            if data is not None:
                return part, data
        return None

    def put(self, partition: int, profile: ProfileId, state: ProfileState) -> None:
        """Store the state an event made; it is written to the changelog from the next commit."""
        unwritten = self._unwritten.get(partition)
        if unwritten is None:
            return  # the partition was revoked meanwhile
        hot = self._hot.get(profile)
        if hot is not None:
            before = hot[2]
        else:
            data = self._cold[partition].get(profile.encode())
            if data is None:
                self._new += 1
                before = NO_MEMBERSHIPS
            else:  # put without a get (a restore's evaluation): counted from its head
                head = next(self._heads([data]), None)
                before = NO_MEMBERSHIPS if head is None else from_head(head)
        after = memberships(state)
        self.tally.change(partition, before, after)
        self._hot[profile] = (partition, state, after)
        self._changed.add(profile)
        mark = unwritten.get(profile)
        if mark is None:
            unwritten[profile] = _Unwritten(self._commits, state.offset)
        elif mark.first_offset is None:
            mark.first_offset = state.offset

    def acknowledge(self, profile: ProfileId, audience: AudienceId, member: bool) -> None:
        """Record that Marketo has the profile in `audience`'s list (`member`) or not."""
        state = self.get(profile)
        if state is not None:
            state.acked = state.acked | {audience} if member else state.acked - {audience}
            partition, _, before = self._hot[profile]
            after = memberships(state)
            self.tally.change(partition, before, after)
            self._hot[profile] = (partition, state, after)
            self._touch(profile)

    def set_lead_id(self, profile: ProfileId, lead_id: LeadId | None) -> None:
        """Record the profile's Marketo person (None: Marketo no longer has it)."""
        state = self.get(profile)
        if state is not None:
            state.lead_id = lead_id
            self._touch(profile)

    def set_erasing(self, profile: ProfileId, erasing: bool) -> None:
        """Record whether the deleted profile's Marketo person is still to be deleted."""
        state = self.get(profile)
        if state is not None and state.erasing != erasing:
            state.erasing = erasing
            self._touch(profile)

    def _touch(self, profile: ProfileId) -> None:
        """Mark a hot state as changed in place, to be written from the next commit."""
        hot = self._hot.get(profile)
        if hot is None:
            return
        self._changed.add(profile)
        self._unwritten[hot[0]].setdefault(profile, _Unwritten(self._commits, None))

    def take_dirty(
        self, committing: Mapping[int, int] | None = None, outstanding: Outstanding = _no_calls
    ) -> list[tuple[int, ProfileId, bytes]]:
        """Encode the changed states, forget the decoded ones, and return the records to write:
        with `committing` (the offsets about to be committed) those that may not wait (see the
        module's docstring); without (a shutdown), every one the changelog lacks.

        A record can get ahead of the commit (its event's offset is past the committed one)
        while a call for the profile is buffered or in flight. Should the worker die then, the
        next owner finds the newer record and skips the replayed events as stale, so the
        record itself must say what is not settled: `outstanding` names those memberships,
        written unacknowledged so that a restore sends them again.

        A state under a layout its restored partition has no record of is preceded by that
        layout's control record, once (its key stands where a profile's would)."""
        self._commits += 1
        encode = self.codec.encode
        for profile in self._changed:
            partition, state, _ = self._hot[profile]
            self._cold[partition][profile.encode()] = encode(state)
            mark = self._unwritten[partition][profile]
            mark.unknown = outstanding(profile)
            mark.awaiting = state.desired != state.acked or bool(mark.unknown)
        self._changed.clear()
        self._hot.clear()
        self._new = 0  # every new profile was changed, so it is at rest now
        out: list[tuple[int, ProfileId, bytes]] = []
        for partition, unwritten in self._unwritten.items():
            states = self._cold[partition]
            recorded = self._layouts.get(partition)
            limit = None if committing is None else committing.get(partition)
            due = [
                profile
                for profile, mark in unwritten.items()
                if committing is None or not mark.may_wait(limit, self._commits)
            ]
            for profile in due:
                unknown = unwritten.pop(profile).unknown
                data = states[profile.encode()]
                if unknown:  # the few written while a call is out (the others wait for it)
                    data = encode(self.codec.decode(data), unknown)
                layout = layout_of(data)
                if recorded is not None and layout is not None and layout not in recorded:
                    recorded.add(layout)
                    key, value = self.codec.layout_record(layout)
                    out.append((partition, ProfileId(key.decode()), value))
                out.append((partition, profile, data))
        return out
