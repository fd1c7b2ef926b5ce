"""The run loop with fakes for Kafka (unit tier): restore retries, records flow after restore."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping

from worker.core.fields import Converter, FieldSpec
from worker.core.ids import AudienceId, ListId, Record
from worker.core.ledger import OffsetLedger
from worker.core.membership import AudienceRule, Audiences
from worker.core.outbox import Outbox
from worker.core.rules import compile_rule
from worker.core.store import StateStore
from worker.flusher import Flusher, LeadFields
from worker.loop import Loop, LoopSettings
from worker.telemetry.metrics import Metrics


class FakeConsumer:
    """Records pause/resume; hands out no records."""

    def __init__(self) -> None:
        self.resumed: set[int] = set()

    def poll_batch(self, max_messages: int) -> list[Record]:
        return []

    def commit(self, offsets: Mapping[int, int]) -> dict[int, str | None]:
        return dict.fromkeys(offsets)

    def pause(self, partitions: set[int]) -> None:
        self.resumed -= partitions

    def resume(self, partitions: set[int]) -> None:
        self.resumed |= partitions


class FakePublisher:
    """Accepts everything; every flush succeeds."""

    def dead_letter(self, key: object, value: object, headers: object) -> None: ...
    def state(self, partition: int, key: bytes, value: bytes | None) -> None: ...
    def rejection(self, key: bytes, value: bytes) -> None: ...
    def poll(self) -> None: ...
    def flush(self, timeout_s: float) -> bool:
        return True


class FlakyRestorer:
    """Fails the first read of the changelog (a broker restart), then finds it empty."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, partition: int) -> Iterable[list[tuple[bytes, bytes | None]]]:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("broker transport failure")
        return []


def make_loop(restorer: FlakyRestorer, consumer: FakeConsumer, clock: list[float]) -> Loop:
    audiences = Audiences([AudienceRule(AudienceId("fr"), compile_rule('country == "FR"'))])
    fields = {"email": FieldSpec("email", "email", 255, True)}
    flusher = Flusher(
        Outbox([AudienceId("fr")], 300, 1.0),
        None,
        StateStore(),
        OffsetLedger(),  # type: ignore[arg-type]
        FakePublisher(),
        Metrics(),
        {AudienceId("fr"): ListId(1)},
        LeadFields("email", Converter([], fields), match_only=False),
        max_in_flight=1,
    )
    settings = LoopSettings("in", 65536, 1000, 1.0, handover_s=0.0)
    return Loop(
        consumer,
        FakePublisher(),
        flusher,
        audiences,
        audiences.paths,
        Metrics(),  # type: ignore[arg-type]
        settings,
        restorer,
        clock=lambda: clock[0],
    )


async def test_a_failed_restore_is_retried_and_the_partition_resumes() -> None:
    """A restore that fails (Kafka unreachable) is retried a second later, then the partition
    is resumed; it never stays paused for good."""
    consumer, restorer, clock = FakeConsumer(), FlakyRestorer(), [100.0]
    loop = make_loop(restorer, consumer, clock)
    loop.on_assign({0})
    deadline = time.monotonic() + 10  # the restore runs in a thread: wait for it, bounded
    while 0 not in consumer.resumed and time.monotonic() < deadline:
        await loop.run_once()
        await asyncio.sleep(0.01)
        clock[0] += 0.1  # the fake clock passes the one-second retry delay
    assert restorer.calls == 2
    assert consumer.resumed == {0}
    assert loop.restoring == {}
