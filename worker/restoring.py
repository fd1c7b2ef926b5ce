"""Restoring an assigned partition's state from the changelog, beside the loop.

A newly assigned partition stays paused until every Marketo call its previous owner may have
started has ended (`handover_s`); then its changelog is read in a thread, sorted by
worker.core.restore and loaded, whatever Marketo has not acknowledged is buffered again (and,
with `marketo.delete_persons`, every person deletion not yet answered), and the partition is
resumed, if it still is the same assignment (worker.core.partitions keeps where each one is). A
restore that fails (Kafka unreachable) is retried a second later: the partition never stays
paused for good.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

import structlog

from worker.core import snapshot
from worker.core.delivery import FLUSH_TIMEOUT_S
from worker.core.ids import ProfileId
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
        restored = await asyncio.to_thread(self._read_states, partition)
        await asyncio.to_thread(self.release_memory)
        read_s = time.monotonic() - read_started
        image = restored.image
        clean = image.marker is not None
        if clean:
            end = -1  # the previous owner wrote all it did: replayed events need no re-send
        self.store.load(partition, image.states, image.layouts)  # others are written first
        for profile, state in restored.changed.items():
            self.store.put(partition, profile, state)
        resent = sum(
            self._resend_unacknowledged(partition, profile, state)
            for profile, state in restored.pending.items()
        )
        resent += self._erase_again(partition, restored)
        if clean:
            # the marker vouches for the previous owner's writes, not for ours: should we die
            # before our first commit, the next owner must not trust it. In Kafka before any
            # record of this partition is processed, or the restore is tried again.
            self.write_state(partition, snapshot.CLEAN_HANDOVER, None)
            if not await asyncio.to_thread(self.flush, FLUSH_TIMEOUT_S):
                raise DeliveryFailed("the clean-handover marker could not be withdrawn")
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
        log.info(
            "state.restored",
            partition=partition,
            profiles=len(image.states),
            resent=resent,
            clean_handover=clean,
            read_s=round(read_s, 3),
            seconds=round(elapsed, 3),
        )

    def _read_states(self, partition: int) -> Restored:
        """Read a partition's last states and sort them (worker.core.restore). Runs in a
        thread: it changes only its locals (and teaches the codec the layouts it finds)."""
        codec = self.store.codec
        image = snapshot.read_image(self.read(partition), codec)
        return triage(image, codec, self.audiences, delete_persons=self.outbox.deletes_persons)

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
