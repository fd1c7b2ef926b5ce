"""Restoring an assigned partition's state from the changelog, beside the loop.

A newly assigned partition stays paused while its changelog is read in a thread. If the changelog
ends with a clean-handover marker (its previous owner stopped with every call answered), the
restore goes on at once; else it is read again once every Marketo call its previous owner may
have started has ended (`handover_s`, a crash or a lost assignment), and then sorted by
worker.core.restore and loaded, whatever Marketo has not acknowledged is buffered again (and,
with `marketo.delete_persons`, every person deletion not yet answered), and the partition is
resumed, if it still is the same assignment (worker.core.partitions keeps where each one is). A
restore that fails (Kafka unreachable) is retried a second later: the partition never stays
paused for good.

The partition's audience definitions record (worker.core.activation) decides first: the same
as ours, the restore goes on as above; other ones, recorded by a replica started before us (or
none), and the restore activates ours: every stored profile is brought to the configured
audiences, the changed states are written, then our record, and the differences are queued
like the re-sends above; other ones recorded by a replica started after us, and the partition
is stood down: left paused and unread, this replica not ready, until the next rebalance.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

import structlog

from worker.core import activation, snapshot
from worker.core.activation import Activation, Decision, Definitions, RecordTap, Verdict
from worker.core.delivery import FLUSH_TIMEOUT_S
from worker.core.ids import AudienceId, ProfileId
from worker.core.membership import Audiences
from worker.core.outbox import Outbox
from worker.core.partitions import Partitions
from worker.core.profile import ProfileState
from worker.core.restore import Restored, triage
from worker.core.store import StateStore
from worker.errors import DeliveryFailed
from worker.telemetry.metrics import Metrics

log = structlog.get_logger("worker.restoring")

Restorer = Callable[[int], Iterable[list[tuple[bytes, bytes | None]]]]
EndOffset = Callable[[int], int]  # an input partition's high watermark, asked of the broker
StateWriter = Callable[[int, bytes, bytes | None], None]  # (partition, key, value) to the changelog
Flush = Callable[[float], bool]  # wait up to so many seconds for every record written; all in?
RETRY_AFTER_S = 1.0


class Restores:
    """The restore tasks of the partitions the table says are restoring."""

    def __init__(
        self,
        *,
        partitions: Partitions,
        store: StateStore,
        outbox: Outbox,
        audiences: Audiences,
        metrics: Metrics,
        read: Restorer,
        write_state: StateWriter,
        flush: Flush,
        end_offset: EndOffset,
        resume: Callable[[set[int]], None],
        definitions: Definitions,
        release_memory: Callable[[], object] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.partitions = partitions
        self.store = store
        self.outbox = outbox
        self.audiences = audiences
        self.metrics = metrics
        self.read = read
        self.write_state = write_state
        self.flush = flush
        self.end_offset = end_offset
        self.resume = resume  # the consumer's: a restored partition's records are fetched again
        self.definitions = definitions  # the configured audiences', and when we started
        self.release_memory = release_memory  # what a restore's reading freed, back to the OS
        self.clock = clock
        self.tasks: dict[int, asyncio.Task[None]] = {}  # the running ones

    def __len__(self) -> int:
        return len(self.partitions.restoring())

    def revoke(self, partitions: set[int]) -> None:
        """Lost partitions: cancel their restores."""
        for partition in partitions:
            task = self.tasks.pop(partition, None)
            if task is not None:
                task.cancel()

    def start_due(self, now: float) -> None:
        """Start the restores whose handover time has passed."""
        for partition in self.partitions.start_due(now):
            epoch = self.partitions.epoch(partition)
            assert epoch is not None  # start_due names assigned partitions only
            self.tasks[partition] = asyncio.create_task(self._restore_or_retry(partition, epoch))

    async def _restore_or_retry(self, partition: int, epoch: int) -> None:
        try:
            await self._restore(partition, epoch)
        except Exception as exc:  # noqa: BLE001 - any failure: the partition stays paused, retried
            log.warning("state.restore_failed", partition=partition, error=str(exc))
            if self.partitions.epoch(partition) == epoch:
                self.partitions.retry_restore(partition, self.clock() + RETRY_AFTER_S)
        finally:
            if self.tasks.get(partition) is asyncio.current_task():
                del self.tasks[partition]

    async def _restore(self, partition: int, epoch: int) -> None:
        started = time.monotonic()
        end = await asyncio.to_thread(self.end_offset, partition)
        # read in a worker thread: the loop keeps polling and serving /healthz
        read_started = time.monotonic()
        image, recorded = await asyncio.to_thread(self._read_image, partition)
        await asyncio.to_thread(self.release_memory)
        read_s = time.monotonic() - read_started
        handover_until = self.partitions.handover_until(partition)
        if image.marker is None and handover_until > self.clock():
            # calls its previous owner started may still run, and their answers still be
            # written: read the changelog again once they have all ended
            if self.partitions.epoch(partition) == epoch:
                self.partitions.retry_restore(partition, handover_until)
            log.info(
                "state.handover_wait",
                partition=partition,
                seconds=round(handover_until - self.clock(), 3),
            )
            return
        decision = activation.decide(recorded, self.definitions)
        if decision.verdict is Verdict.STAND_DOWN:
            self._stand_down(partition, epoch, decision, recorded)
            return
        run = self._activation(partition, decision, image)
        restored = await asyncio.to_thread(self._triage, image, run)
        clean = image.marker is not None
        if clean:
            end = -1  # the previous owner wrote all it did: replayed events need no re-send
        self._keep_changed(partition, image, restored.changed)
        self.store.load(partition, image.states, image.layouts)
        resent = sum(
            self._resend_unacknowledged(partition, profile, state)
            for profile, state in restored.pending.items()
        )
        resent += self._erase_again(partition, restored)
        await self._write_control_records(partition, image, activated=run is not None)
        elapsed = time.monotonic() - started
        self.metrics.state_restore.inc(elapsed)
        self.metrics.state_restored_profiles.inc(len(image.states))
        self.metrics.state_profiles.set(len(self.store))
        # offsets below `end` were readable before we owned the partition, so its previous owner
        # may have acted on them (-1: it wrote all it did)
        if self.partitions.restored(partition, epoch, end):  # still this assignment
            self.resume({partition})
        if restored.corrupt:
            log.warning("state.corrupt_record", partition=partition, records=restored.corrupt)
        if run is not None:
            self._log_activation(partition, decision, run, restored, elapsed)
        log.info(
            "state.restored",
            partition=partition,
            profiles=len(image.states),
            resent=resent,
            clean_handover=clean,
            read_s=round(read_s, 3),
            seconds=round(elapsed, 3),
        )

    def _activation(
        self, partition: int, decision: Decision, image: snapshot.Image
    ) -> Activation | None:
        """The activation to run on the partition's states, if the decision is one."""
        if decision.verdict is not Verdict.ACTIVATE:
            return None
        log.info(
            "activation.started",
            partition=partition,
            **_differences(decision),
            unrecorded=decision.unrecorded,
            profiles=len(image.states),
        )
        return Activation(decision, self.audiences)

    async def _write_control_records(
        self, partition: int, image: snapshot.Image, *, activated: bool
    ) -> None:
        """Our definitions after an activation, and the withdrawal of a clean-handover marker;
        in Kafka before the partition is resumed."""
        if activated:
            # our record goes after the states it vouches for, once Kafka has them all: should
            # we die before, the next restore finds the old record and activates again (the
            # evaluation is idempotent; what is unacknowledged is sent again)
            await self._flushed("the states of an activation")
            self.write_state(partition, *activation.record(self.definitions))
        clean = image.marker is not None
        if clean:
            # the marker vouches for the previous owner's writes, not for ours: should we die
            # before our first commit, the next owner must not trust it. In Kafka before any
            # record of this partition is processed, or the restore is tried again.
            self.write_state(partition, snapshot.CLEAN_HANDOVER, None)
        if clean or activated:
            await self._flushed("the clean-handover marker's withdrawal or the definitions")

    async def _flushed(self, what: str) -> None:
        if not await asyncio.to_thread(self.flush, FLUSH_TIMEOUT_S):
            raise DeliveryFailed(f"{what} could not be written")

    def _read_image(self, partition: int) -> tuple[snapshot.Image, Definitions | None]:
        """Read a partition's last states and its definitions record. Runs in a thread: it
        changes only its locals (and teaches the codec the layouts it finds)."""
        tap = RecordTap()
        image = snapshot.read_image(tap(self.read(partition)), self.store.codec)
        return image, activation.parse(tap.value)

    def _triage(self, image: snapshot.Image, run: Activation | None) -> Restored:
        """Sort the states (worker.core.restore). Runs in a thread, like the read."""
        return triage(
            image,
            self.store.codec,
            self.audiences,
            delete_persons=self.outbox.deletes_persons,
            activation=run,
        )

    def _keep_changed(
        self, partition: int, image: snapshot.Image, changed: dict[ProfileId, ProfileState]
    ) -> None:
        """States evaluated afresh: encoded into the image the store loads, and written to the
        changelog now (before an activation's record), not at a commit; a layout the partition
        has no record of is written before its first state, as the store's commits do."""
        codec = self.store.codec
        for profile, state in changed.items():
            key = profile.encode()
            image.states[key] = data = codec.encode(state)
            layout = snapshot.layout_of(data)
            if layout is not None and layout not in image.layouts:
                self.write_state(partition, *codec.layout_record(layout))
                image.layouts.add(layout)
            self.write_state(partition, key, data)

    def _stand_down(
        self, partition: int, epoch: int, decision: Decision, recorded: Definitions | None
    ) -> None:
        """Newer definitions than ours evaluated the partition: leave it to their replicas."""
        if not self.partitions.stand_down(partition, epoch):
            return  # no longer this assignment
        # its store partition stays empty (never loaded): nothing of it is read or written
        log.warning(
            "activation.stood_down",
            partition=partition,
            ours=self.definitions.summary(),
            recorded=recorded.summary() if recorded else None,
            **_differences(decision),
        )

    def _log_activation(
        self,
        partition: int,
        decision: Decision,
        run: Activation,
        restored: Restored,
        elapsed: float,
    ) -> None:
        configured = run.configured
        adds = removes = 0
        for state in restored.pending.values():
            adds += len((state.desired - state.acked) & configured)
            removes += len((state.acked - state.desired) & configured)
        removed: dict[AudienceId, int] = dict.fromkeys(decision.removed, 0) | run.dropped
        for audience, members in sorted(removed.items()):
            log.info(
                "activation.audience_removed",
                partition=partition,
                audience=audience,
                members=members,
            )
        log.info(
            "activation.completed",
            partition=partition,
            changed_profiles=len(restored.changed),
            adds=adds,
            removes=removes,
            seconds=round(elapsed, 3),
        )

    def _resend_unacknowledged(
        self, partition: int, profile: ProfileId, state: ProfileState
    ) -> int:
        """Whatever Marketo has not acknowledged is sent again (holding no offset: its event
        was committed long ago); return 1 if any."""
        pending = state.desired ^ state.acked
        if not pending or partition not in self.partitions:
            return 0
        flips = {audience: audience in state.desired for audience in pending}
        self.outbox.enqueue(profile, state, flips, partition, None, self.clock())
        return 1

    def _erase_again(self, partition: int, restored: Restored) -> int:
        """Queue again the person deletions a previous owner had not seen answered (its delete
        events, replayed, are stale); each waits for the profile's list removals, as before;
        return how many."""
        if partition not in self.partitions:
            return 0
        for profile, state in restored.erasing.items():
            self.outbox.erase_if_deleted(profile, state, partition, None, self.clock())
        return len(restored.erasing)


def _differences(decision: Decision) -> dict[str, list[AudienceId]]:
    """The audiences a decision found added, changed (rule or list) and removed, for logs."""
    return {
        "added": sorted(decision.added),
        "changed": sorted(decision.changed | decision.relisted),
        "removed": sorted(decision.removed),
    }
