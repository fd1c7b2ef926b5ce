"""The outbox: every change waiting for Marketo, and what Marketo's answers do to state. Pure.

One coalescing buffer per audience's list (profile -> member?) and one lead-sync buffer shared by
all lists (email -> profiles), so a person entering three lists costs one lead sync. A list
entry needs the person's lead id; until the lead sync returns it, the entry waits.

The outbox owns the offset holds: it takes one from the ledger for every change it buffers and
releases it when the change is settled, refused, replaced, cancelled or dropped. A call carries
its entries' holds and comes back whole (settled, put back, or refused), so no caller has holds
to release, and a call that holds offsets for long (a bulk import job) needs nothing more.
What an answer changes in a profile's state (an ack, a lead id) goes through the state store.

Fair share between the stream and the backlog (docs/message-flow.md): every buffer keeps its
stream entries ahead of its backlog ones (worker.core.buffers), and each due call is asked of
one lane, in the order `Turns` gives: the stream first, but never twice in a row while the
backlog has a call due, so either lane gets at least half of the calls whenever both have work.

The bulk lane (docs/message-flow.md): a list whose backlog adds reach `bulk_threshold` hands all
of them to one `BulkJob`, an import with the list's id, one per list in flight. A job is one
more call: its entries stay in flight (a streamed change of the same person waits in the buffer
as it would behind a list call) and it comes back whole, settled (failed rows are rejections)
or put back. The lead syncs those adds waited for are dropped (an import matches by the lookup
field) and queued again if the job is put back.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from worker.core.buffers import CoalescingBuffer, Entry, Lane, Taken, lane_of
from worker.core.ids import AudienceId, LeadId, Op, ProfileId
from worker.core.ledger import Hold, OffsetLedger
from worker.core.marketo_api import LEAD_NOT_FOUND, NOT_IN_LIST
from worker.core.profile import ProfileState
from worker.core.store import StateStore

SUCCESS = frozenset({"created", "updated", "added", "removed"})
_NOTHING: frozenset[AudienceId] = frozenset()
# a person deletion whose lead id is still to come from a lead sync in flight (Marketo's lead ids
# are positive)
AWAITED = LeadId(0)


def takes_bulk(backlog_adds: int, threshold: int | None) -> bool:
    """Tell whether a list's backlog of `backlog_adds` goes by bulk import (None: never)."""
    return threshold is not None and backlog_adds >= threshold


@dataclass(frozen=True, slots=True)
class LeadSyncCall:
    """Sync these emails' persons; the results bring their lead ids."""

    taken: Sequence[Taken[str, frozenset[ProfileId]]]


@dataclass(frozen=True, slots=True)
class ListCall:
    """Add or remove these leads to or from one audience's list."""

    audience: AudienceId
    op: Op
    taken: Sequence[Taken[ProfileId, bool]]
    lead_ids: Sequence[LeadId]


@dataclass(frozen=True, slots=True)
class EraseCall:
    """Delete these deleted profiles' Marketo persons (`marketo.delete_persons`)."""

    taken: Sequence[Taken[ProfileId, LeadId]]

    @property
    def lead_ids(self) -> list[LeadId]:
        """The persons to delete, one per profile."""
        return [item.entry.value for item in self.taken]


@dataclass(frozen=True, slots=True)
class BulkJob:
    """Import these backlog adds of one list in bulk: insert or update each person by the
    lookup field, and make every imported row a member of the list."""

    audience: AudienceId
    taken: Sequence[Taken[ProfileId, bool]]
    op: Op = Op.ADD  # a job only adds: removals need lead ids, and stay on REST


Call = LeadSyncCall | ListCall | EraseCall | BulkJob


class Turns:
    """Whose turn the next call is: the stream's, unless the last call served was the stream's
    (then the backlog's first). A lane with nothing due passes its turn without banking it."""

    def __init__(self) -> None:
        self._last = Lane.BACKLOG

    def order(self) -> tuple[Lane, Lane]:
        """The lanes in the order to ask them for a call."""
        if self._last is Lane.STREAM:
            return Lane.BACKLOG, Lane.STREAM
        return Lane.STREAM, Lane.BACKLOG

    def served(self, lane: Lane) -> None:
        """Record that a call of `lane` was started."""
        self._last = lane


@dataclass(frozen=True, slots=True)
class Rejection:
    """A change Marketo refused for good, to be written to the rejections topic. `audience`
    is the list call's; `audiences` every list the person is missing from because of it (a
    refused lead sync cancels the adds of every list that waited for it)."""

    profile: ProfileId
    audience: AudienceId | None
    op: str
    code: str
    message: str
    audiences: tuple[AudienceId, ...] = ()


@dataclass(frozen=True, slots=True)
class Settled:
    """What a call's answer settled for the shell: refusals to publish, and the profiles whose
    state it changed (for the end-to-end latency)."""

    rejections: list[Rejection]
    changed: list[ProfileId]
    unmatched: int = 0


class Outbox:
    """The buffers, their due calls, and the effect of each call's results on profile state."""

    def __init__(
        self,
        ledger: OffsetLedger,
        store: StateStore,
        audiences: Sequence[AudienceId],
        max_batch: int,
        linger_s: float,
        *,
        delete_persons: bool = False,
        bulk_threshold: int | None = None,
    ) -> None:
        self.ledger = ledger
        self.store = store
        # per profile, the lists with a change for it pending or in flight
        self._busy: dict[ProfileId, set[str]] = {}
        self.lists: dict[AudienceId, CoalescingBuffer[ProfileId, bool]] = {
            audience: CoalescingBuffer(self._busy, audience) for audience in audiences
        }
        self.leads: CoalescingBuffer[str, frozenset[ProfileId]] = CoalescingBuffer()
        # the email each profile's pending lead sync is buffered under: the state that cancels
        # it may have none any more (a delete) or another one
        self.syncing: dict[ProfileId, str] = {}
        self.max_batch = max_batch
        self.linger_s = linger_s
        # deleted profiles whose Marketo person is to be deleted too (profile -> lead id), when
        # `delete_persons` is on; each entry holds the delete event's offset until Marketo's answer
        self.erasures: CoalescingBuffer[ProfileId, LeadId] | None = (
            CoalescingBuffer() if delete_persons else None
        )
        # a list's backlog adds at least this many go by bulk import; None or 0: never
        self.bulk_threshold = bulk_threshold or None
        self.importing: set[AudienceId] = set()  # the lists with a bulk job in flight

    @property
    def deletes_persons(self) -> bool:
        """Tell whether a deleted profile's Marketo person is deleted too."""
        return self.erasures is not None

    def size(self) -> int:
        """Return the number of buffered changes (the bound that pauses partitions)."""
        erasing = len(self.erasures) if self.erasures is not None else 0
        return len(self.leads) + erasing + sum(len(buffer) for buffer in self.lists.values())

    def enqueue(
        self,
        profile: ProfileId,
        state: ProfileState,
        flips: Mapping[AudienceId, bool],
        partition: int,
        offset: int | None,
        now: float,
        *,
        explicit: bool = False,
    ) -> None:
        """Buffer the membership flips of the event at `offset` of `partition` (None: a change a
        restore sends again, holding no offset), holding the offset until Marketo answers.

        `explicit` is for events a previous owner of the partition may already have acted on
        (the replay after a crash or a rebalance): what it sent to Marketo is unknown, so the
        final membership is sent as is, even where it equals what the state says was
        acknowledged; coalescing still keeps only the last change.
        """
        release = self.ledger.release
        lane = lane_of(offset)
        for audience, member in flips.items():
            buffer = self.lists.get(audience)
            if buffer is None:
                continue  # an audience no longer configured: nothing to send
            in_flight = buffer.in_flight(profile)
            baseline = in_flight if in_flight is not None else audience in state.acked
            if member == baseline and not explicit:
                release(buffer.cancel(profile))  # enter then exit: no call at all
                self._forget_lead_sync(profile)
                continue
            release(buffer.put(profile, member, self.ledger.hold(partition, offset), now, lane))
            if state.lead_id is None and state.email is not None:
                waiting = self.leads.pending(state.email) or frozenset()
                self.leads.put(state.email, waiting | {profile}, None, now, lane)
                self.syncing[profile] = state.email

    def erase_if_deleted(
        self,
        profile: ProfileId,
        state: ProfileState,
        partition: int,
        offset: int | None,
        now: float,
    ) -> None:
        """With `delete_persons`, buffer the deletion of a deleted profile's Marketo person
        (holding `offset` as `enqueue` does), or cancel it when the profile came back. Called
        once the event's list changes are buffered. A person the worker has no lead id for yet,
        but a lead sync for it is still to answer (it may create the person), waits for that id."""
        if self.erasures is None:
            return
        lead = state.lead_id
        if lead is None and state.deleted and self._lead_sync_outstanding(profile):
            lead = AWAITED
        if not state.deleted or lead is None:
            self.ledger.release(self.erasures.cancel(profile))
            return
        if not state.erasing:  # written with the state: a restore queues the deletion again
            self.store.set_erasing(profile, True)
        hold = self.ledger.hold(partition, offset)
        self.ledger.release(self.erasures.put(profile, lead, hold, now, lane_of(offset)))

    def _lead_sync_outstanding(self, profile: ProfileId) -> bool:
        """Tell whether a lead sync naming `profile` is buffered or in flight."""
        return profile in self.syncing or any(
            profile in waiting for waiting in self.leads.in_flight_values()
        )

    def next_erase(
        self, now: float, force: bool = False, lane: Lane | None = None
    ) -> EraseCall | None:
        """Return the persons to delete now (for `lane`, None: either): due as other buffers
        are, and only those whose list removals Marketo has acknowledged (nothing of theirs
        buffered or in flight) and whose lead id is known."""
        buffer = self.erasures
        if buffer is None or not self._due(buffer, now, force, lane):
            return None
        taken = buffer.take(
            self.max_batch, lambda profile, lead: lead != AWAITED and profile not in self._busy
        )
        return EraseCall(taken) if taken else None

    def settle_erase(self, call: EraseCall, results: Sequence[tuple[str, str, str]]) -> Settled:
        """Apply delete-leads results: `deleted`, or 1004 (already gone), is done; the state
        forgets the lead id, so a later return of the profile syncs a new person. Either way
        (done or refused) the deletion is no longer outstanding, so a restore never sends it."""
        assert self.erasures is not None  # only called for a call it made
        self.erasures.finish(call.taken)
        settled = Settled([], [])
        for item, (status, code, message) in zip(call.taken, results, strict=True):
            self.ledger.release(item.entry.hold)
            done = status == "deleted" or code == LEAD_NOT_FOUND
            if not done:
                settled.rejections.append(Rejection(item.key, None, "delete_person", code, message))
            state = self.store.get(item.key)
            if state is None or state.lead_id != item.entry.value:
                continue  # the profile came back meanwhile, under another person
            self.store.set_erasing(item.key, False)
            if done:
                self.store.set_lead_id(item.key, None)
            settled.changed.append(item.key)
        return settled

    def outstanding(self, profile: ProfileId) -> frozenset[AudienceId]:
        """The audiences with a change for `profile` buffered or in flight: what Marketo has
        for them is not settled yet."""
        lists = self._busy.get(profile)  # asked of every changed state at each commit
        return _NOTHING if lists is None else frozenset(map(AudienceId, lists))

    def _forget_lead_sync(self, profile: ProfileId) -> None:
        """Drop a pending lead sync that no list entry waits for any more (a deleted person is
        never created in Marketo)."""
        if any(b.pending(profile) is not None for b in self.lists.values()):
            return
        email = self.syncing.pop(profile, None)
        waiting = None if email is None else self.leads.pending(email)
        if email is not None and waiting is not None and profile in waiting:
            rest = waiting - {profile}
            if rest:
                self.leads.update(email, rest)
            else:
                self.leads.cancel(email)

    def _is_due(self, oldest: float | None, ready: int, now: float) -> bool:
        return ready >= self.max_batch or (oldest is not None and oldest + self.linger_s <= now)

    def _due(
        self, buffer: CoalescingBuffer[Any, Any], now: float, force: bool, lane: Lane | None
    ) -> bool:
        """Tell whether `buffer` has a call due for `lane` (None: either): the stream's entries
        fill a call or the oldest waited `linger_s`; the backlog's too, or the whole buffer
        fills a call (the stream's entries go first in it)."""
        if lane is None:
            return bool(len(buffer)) and (
                force or self._is_due(buffer.oldest_since(), len(buffer), now)
            )
        waiting = buffer.waiting(lane)
        if not waiting:
            return False
        ready = len(buffer) if lane is Lane.BACKLOG else waiting
        return force or self._is_due(buffer.oldest_since(lane), ready, now)

    def next_lead_sync(
        self, now: float, force: bool = False, lane: Lane | None = None
    ) -> LeadSyncCall | None:
        """Return the lead sync due now for `lane` (None: either): 300 waiting, or the oldest
        waited `linger_s`."""
        if not self._due(self.leads, now, force, lane):
            return None
        taken = self.leads.take(self.max_batch)
        for item in taken:
            for profile in item.entry.value:
                if self.syncing.get(profile) == item.key:  # not when it waits under a new email
                    del self.syncing[profile]
        return LeadSyncCall(taken) if taken else None

    def next_list_call(
        self,
        now: float,
        force: bool = False,
        skip: Container[AudienceId] = (),
        lane: Lane | None = None,
    ) -> ListCall | None:
        """Return a call for a list due for `lane` (None: either) but those to `skip`: full
        batches first (most records per call), and among equals the list whose oldest change
        (in the lane) waited longest, so that no list starves and holds back the commit of
        every partition."""
        due = []
        for audience, buffer in self.lists.items():
            if audience in skip or not self._due(buffer, now, force, lane):
                continue
            oldest = buffer.oldest_since(lane)
            assert oldest is not None  # a due lane has entries
            # a partial batch that waited ten lingers ranks with the full ones: no starvation
            partial = len(buffer) < self.max_batch and now - oldest < 10 * self.linger_s
            due.append((partial, oldest, audience))
        for _, _, audience in sorted(due):
            call = self._take_list_call(audience, self.lists[audience])
            if call is not None:
                return call
        return None

    def _take_list_call(
        self, audience: AudienceId, buffer: CoalescingBuffer[ProfileId, bool]
    ) -> ListCall | None:
        lead_of = self.store.lead_id  # from the encoded head: cheaper than the whole state
        first = buffer.take(1, lambda p, _m: lead_of(p) is not None)
        if not first:
            return None
        op_member = first[0].entry.value
        lead_ids = [lead_of(first[0].key) or LeadId(0)]
        seen = set(lead_ids)

        def eligible(profile: ProfileId, member: bool) -> bool:
            # one lead id once per call: profiles sharing a person (one email) would make
            # Marketo answer fewer results than ids; the other waits for the next call
            lead = lead_of(profile) if member == op_member else None
            if lead is None or lead in seen:
                return False
            seen.add(lead)
            lead_ids.append(lead)
            return True

        taken = [*first, *buffer.take(self.max_batch - 1, eligible)]
        return ListCall(audience, Op.ADD if op_member else Op.REMOVE, taken, lead_ids)

    def next_bulk_job(self, skip: Container[AudienceId | None] = ()) -> BulkJob | None:
        """Return a bulk job for a list (but those to `skip`) whose backlog adds reach the
        threshold and that has no job in flight: all of its backlog adds (the stream's stay on
        REST, never behind a job)."""
        threshold = self.bulk_threshold
        if threshold is None:
            return None
        for audience, buffer in self.lists.items():
            if audience in self.importing or audience in skip:
                continue
            if buffer.waiting(Lane.BACKLOG) < threshold:
                continue  # the cheap test first: counting the adds walks the lane
            if not takes_bulk(buffer.count(Lane.BACKLOG, lambda member: member), threshold):
                continue
            taken = buffer.take_lane(Lane.BACKLOG, lambda _profile, member: member)
            for item in taken:
                self._forget_lead_sync(item.key)  # the import matches by the lookup field
            self.importing.add(audience)
            return BulkJob(audience, taken)
        return None

    def settle_bulk_job(self, job: BulkJob, results: Sequence[tuple[str, str, str]]) -> Settled:
        """Apply a finished import's per-entry results (status, reason code, reason message):
        a row imported is an acknowledged member (its lead id still unknown), a failed row a
        rejection with Marketo's reason."""
        self.importing.discard(job.audience)
        return self.settle_list_call(job, results)

    def still_ours(self, call: Call) -> bool:
        """Tell whether every change in `call` was read in its partition's current assignment:
        once one is not, the partition's new owner sends it, and ours could land after theirs."""
        current = self.ledger.is_current
        return all(current(item.entry.hold) for item in call.taken)

    def retry_later(self, call: Call) -> None:
        """Put a failed call's entries back (a newer buffered value wins), but those read from
        a partition since revoked (the new owner sends them); their holds are released."""
        for hold in self._give_back(call):
            self.ledger.release(hold)

    def _give_back(self, call: Call) -> list[Hold | None]:
        current = self.ledger.is_current
        if isinstance(call, LeadSyncCall):
            for item in call.taken:
                newer = self.leads.pending(item.key)
                if newer is not None:  # others with this email came meanwhile: one sync for all
                    lane = item.entry.lane
                    self.leads.put(item.key, newer | item.entry.value, None, item.entry.since, lane)
                for profile in item.entry.value:
                    self.syncing.setdefault(profile, item.key)  # unless it waits under another
            return self.leads.give_back(call.taken)
        if isinstance(call, EraseCall):
            assert self.erasures is not None
            return self.erasures.give_back(call.taken, lambda e: current(e.hold))
        buffer = self.lists[call.audience]
        released = buffer.give_back(call.taken, lambda e: current(e.hold))
        if isinstance(call, BulkJob):
            self.importing.discard(call.audience)
            for back in call.taken:  # back on REST unless a next job takes them: they need ids
                if buffer.pending(back.key) is not None:
                    self._await_lead(back.key, back.entry)
        return released

    def drop_partitions(self, partitions: set[int]) -> None:
        """Forget changes read from revoked partitions (the new owner re-reads them), pending or
        in flight: should the partition come back, a call still out must not count as sent."""

        def revoked(entry: Entry[bool]) -> bool:
            return entry.hold is not None and entry.hold.partition in partitions

        dropped = [hold for buffer in self.lists.values() for hold in buffer.drop(revoked)]
        if self.erasures is not None:
            dropped += self.erasures.drop(
                lambda entry: entry.hold is not None and entry.hold.partition in partitions
            )
        for hold in dropped:
            self.ledger.release(hold)

    def settle_list_call(
        self, call: ListCall | BulkJob, results: Sequence[tuple[str, str, str]]
    ) -> Settled:
        """Apply a list call's per-record results: (status, reason code, reason message). A
        profile whose partition was revoked since the call began is not ours to change."""
        buffer = self.lists[call.audience]
        buffer.finish(call.taken)
        settled = Settled([], [])
        current = self.ledger.is_current
        for item, (status, code, message) in zip(call.taken, results, strict=True):
            state = self.store.get(item.key) if current(item.entry.hold) else None
            still_wanted = buffer.pending(item.key) is None  # no newer change replaced the add
            if call.op is Op.ADD and code == LEAD_NOT_FOUND and state and state.email:
                if still_wanted:
                    self._resync_lead(item, state.email, buffer)
                    self.store.set_lead_id(item.key, None)
                    settled.changed.append(item.key)
                else:
                    self.ledger.release(item.entry.hold)  # settled: not in the list, as wanted
                continue
            self.ledger.release(item.entry.hold)
            # a non-member, or a lead Marketo no longer has, is out of the list as wanted
            gone = code in (NOT_IN_LIST, LEAD_NOT_FOUND)
            ok = status in SUCCESS or (call.op is Op.REMOVE and gone)
            if not ok:
                settled.rejections.append(_list_rejection(item.key, call, code, message))
                continue
            if state is not None:
                self.store.acknowledge(item.key, call.audience, call.op is Op.ADD)
                settled.changed.append(item.key)
        return settled

    def _resync_lead(
        self, item: Taken[ProfileId, bool], email: str, buffer: CoalescingBuffer[ProfileId, bool]
    ) -> None:
        """Sync the person again (by email) for a lead id Marketo no longer knows, and put the
        add back to wait for the new id."""
        self._sync_lead(item.key, email, item.entry)
        buffer.give_back([item])

    def _await_lead(self, profile: ProfileId, entry: Entry[bool]) -> None:
        """Queue the lead sync a list entry waits for, when its person's lead id is unknown."""
        state = self.store.get(profile)
        if state is not None and state.lead_id is None and state.email is not None:
            self._sync_lead(profile, state.email, entry)

    def _sync_lead(self, profile: ProfileId, email: str, entry: Entry[bool]) -> None:
        waiting = self.leads.pending(email) or frozenset()
        self.leads.put(email, waiting | {profile}, None, entry.since, entry.lane)
        self.syncing[profile] = email

    def settle_lead_sync(
        self,
        call: LeadSyncCall,
        results: Sequence[tuple[str, LeadId | None, str, str]],
        match_only: bool,
    ) -> Settled:
        """Apply lead-sync results (status, lead id, code, message); refusals cancel the adds."""
        self.leads.finish(call.taken)
        settled = Settled([], [])
        unmatched = 0
        for item, (status, lead_id, code, message) in zip(call.taken, results, strict=True):
            for profile in item.entry.value:
                state = self.store.get(profile)
                if state is None:
                    continue
                if status in SUCCESS and lead_id is not None:
                    self.store.set_lead_id(profile, lead_id)
                    settled.changed.append(profile)
                    self._erase_created(profile, state, lead_id)
                    continue
                if match_only and code == LEAD_NOT_FOUND:
                    self._cancel_waiting(profile)
                    unmatched += 1  # match_only: a person unknown to Marketo is never created
                else:
                    settled.rejections.append(self._reject_sync(profile, code, message))
        return Settled(settled.rejections, settled.changed, unmatched)

    def _erase_created(self, profile: ProfileId, state: ProfileState, lead_id: LeadId) -> None:
        """A lead sync in flight when the profile was deleted answered: the person it may have
        created is the one to delete."""
        buffer = self.erasures
        if buffer is not None and state.deleted and buffer.pending(profile) == AWAITED:
            buffer.update(profile, lead_id)

    def _cancel_waiting(self, profile: ProfileId) -> list[AudienceId]:
        """Cancel the changes that waited for a lead id that will not come (a person deletion
        too: no person was created), releasing their holds; return their audiences."""
        waiting = [a for a, buffer in self.lists.items() if buffer.pending(profile) is not None]
        for audience in waiting:
            self.ledger.release(self.lists[audience].cancel(profile))
        if self.erasures is not None and self.erasures.pending(profile) == AWAITED:
            self.ledger.release(self.erasures.cancel(profile))
        return waiting

    def _reject_sync(self, profile: ProfileId, code: str, message: str) -> Rejection:
        """A refused lead sync: cancel what waited for it, and say which lists miss the person."""
        audiences = self._cancel_waiting(profile)
        return Rejection(profile, None, "sync_lead", code, message, tuple(audiences))

    def _release_all(self, call: Call) -> None:
        for item in call.taken:
            self.ledger.release(item.entry.hold)

    def reject_call(self, call: Call, code: str, message: str) -> Settled:
        """A whole call was refused for good: every record in it becomes a rejection."""
        if isinstance(call, EraseCall):
            assert self.erasures is not None
            self.erasures.finish(call.taken)
            self._release_all(call)
            return Settled(
                [Rejection(i.key, None, "delete_person", code, message) for i in call.taken], []
            )
        if isinstance(call, LeadSyncCall):
            self.leads.finish(call.taken)
            rejections = [
                self._reject_sync(profile, code, message)
                for item in call.taken
                for profile in item.entry.value
            ]
            return Settled(rejections, [])
        if isinstance(call, BulkJob):
            self.importing.discard(call.audience)
        self.lists[call.audience].finish(call.taken)
        self._release_all(call)
        return Settled([_list_rejection(item.key, call, code, message) for item in call.taken], [])


def _list_rejection(
    profile: ProfileId, call: ListCall | BulkJob, code: str, message: str
) -> Rejection:
    return Rejection(profile, call.audience, call.op, code, message, (call.audience,))
