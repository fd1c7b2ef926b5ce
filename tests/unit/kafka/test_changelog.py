"""Reading a state partition back: a stop before its end is an error, never a short image
(fake librdkafka consumer; the real reads are proven in the integration and fault suites)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaError, KafkaException

from worker.kafka import changelog
from worker.kafka.changelog import RestoreInterrupted, read_partition


class Message:
    def __init__(self, offset: int, error: KafkaError | None = None) -> None:
        self._offset = offset
        self._error = error

    def error(self) -> KafkaError | None:
        return self._error

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return f"p{self._offset}".encode()

    def value(self) -> bytes:
        return b"state"


class FourRecords:
    """A state partition of four records, handed out two per consume."""

    def __init__(self, _config: object) -> None:
        self.position = 0

    def get_watermark_offsets(self, _tp: object, timeout: float) -> tuple[int, int]:
        return 0, 4

    def assign(self, _tps: object) -> None: ...

    def consume(self, _n: int, _timeout: float) -> list[Message]:
        batch = [Message(o) for o in range(self.position, min(self.position + 2, 4))]
        self.position += len(batch)
        return batch

    def close(self) -> None: ...


@pytest.fixture(autouse=True)
def fake_consumer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(changelog, "Consumer", FourRecords)


def read(batches: Iterator[list[tuple[bytes, bytes | None]]]) -> list[bytes]:
    return [key for batch in batches for key, _ in batch]


def test_a_whole_partition_is_read_to_its_end() -> None:
    """Without a stop, every record up to the high watermark comes back."""
    assert read(read_partition({}, "state", 0, lambda: False)) == [b"p0", b"p1", b"p2", b"p3"]


def test_a_stop_before_the_end_raises_instead_of_returning_part_of_the_state() -> None:
    """A shutdown during a restore must not leave half a partition passing for all of it."""
    stops = iter([False, True])
    with pytest.raises(RestoreInterrupted):
        read(read_partition({}, "state", 0, lambda: next(stops)))


class GonePartition(FourRecords):
    """The state partition disappeared (or the right to read it): every fetch fails so."""

    def consume(self, _n: int, _timeout: float) -> list[Message]:
        self.position += 1
        if self.position > 100:  # bounded: a reader that keeps waiting fails the test
            raise AssertionError("the read kept waiting for records that cannot come")
        return [Message(-1, KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART))]


def test_an_error_no_retry_cures_fails_the_read_instead_of_waiting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The restore is then retried and logged, rather than hanging with its partition paused."""
    monkeypatch.setattr(changelog, "Consumer", GonePartition)
    with pytest.raises(KafkaException):
        read(read_partition({}, "state", 0, lambda: False))
