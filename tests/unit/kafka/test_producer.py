"""The publisher: dead letters cut to what Kafka accepts (a refused one is reported, not fatal),
and the rejections' wire format."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from confluent_kafka import KafkaError, KafkaException

from worker.core.ids import AudienceId, ListId, ProfileId
from worker.core.outbox import Rejection
from worker.kafka import producer
from worker.kafka.producer import Publisher

Delivery = Callable[[KafkaError | None, object], None]


class FakeProducer:
    """Keeps what was produced; answers each delivery with `error` when flushed."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.error: KafkaError | None = None
        self.refuse: KafkaError | None = None  # raised by produce() itself
        self.produced: list[tuple[str, bytes | None, bytes | None]] = []
        self.pending: list[Delivery] = []

    def produce(self, topic: str, value: bytes | None, key: bytes | None, **kw: Any) -> None:
        if self.refuse is not None:
            raise KafkaException(self.refuse)
        self.produced.append((topic, key, value))
        self.pending.append(kw["on_delivery"])

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        for delivered in self.pending:
            delivered(self.error, None)
        self.pending.clear()
        return 0


def publisher(
    monkeypatch: pytest.MonkeyPatch, config: dict[str, str], topic_max: int = 1_048_588
) -> tuple[Publisher, FakeProducer]:
    made: list[FakeProducer] = []

    def make(producer_config: dict[str, Any]) -> FakeProducer:
        made.append(FakeProducer(producer_config))
        return made[-1]

    monkeypatch.setattr(producer, "Producer", make)
    return Publisher(config, "dlq", "rej", "state", topic_max), made[0]


def test_dead_letter_is_cut_to_the_smaller_of_producer_and_topic_limits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 10 MB record is cut below the topic's limit when it is smaller than the producer's."""
    pub, fake = publisher(monkeypatch, {"message.max.bytes": "20000000"}, topic_max=500_000)
    pub.dead_letter(b"p-1", b"x" * 10_000_000, [("error.kind", "oversize")], lambda _: None)
    _, _, value = fake.produced[0]
    assert value is not None
    assert 400_000 < len(value) < 500_000


def test_batches_are_kept_within_the_dead_letter_topic_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """batch.size is lowered to the dead-letter topic's limit: the broker checks whole batches."""
    _, fake = publisher(monkeypatch, {}, topic_max=500_000)
    assert fake.config["batch.size"] == 500_000


def test_dead_letter_refused_at_delivery_for_its_size_is_reported_and_commit_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """MSG_SIZE_TOO_LARGE from the broker goes to on_lost; flush stays clean."""
    pub, fake = publisher(monkeypatch, {})
    fake.error = KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)
    lost: list[str] = []
    pub.dead_letter(b"p-1", b"{}", [], lost.append)
    assert pub.flush(1.0) is True
    assert lost == ["msg_size_too_large"]


def test_dead_letter_refused_when_produced_is_reported_not_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A per-record error raised by produce() itself goes to on_lost instead of the loop."""
    pub, fake = publisher(monkeypatch, {})
    fake.refuse = KafkaError(KafkaError.INVALID_RECORD)
    lost: list[str] = []
    pub.dead_letter(b"p-1", b"{}", [], lost.append)
    assert lost == ["invalid_record"]
    assert pub.flush(1.0) is True


def test_dead_letter_that_timed_out_holds_the_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A transient failure is not reported as lost: flush fails, so nothing is committed."""
    pub, fake = publisher(monkeypatch, {})
    fake.error = KafkaError(KafkaError._MSG_TIMED_OUT)
    lost: list[str] = []
    pub.dead_letter(b"p-1", b"{}", [], lost.append)
    assert pub.flush(1.0) is False
    assert lost == []


def test_a_rejection_is_written_as_json_keyed_by_its_profile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The rejections topic's wire format: every list the person misses, with its list id."""
    pub, fake = publisher(monkeypatch, {})
    fr, de = AudienceId("fr"), AudienceId("de")
    refused = Rejection(ProfileId("p-1"), None, "sync_lead", "1003", "bad", (fr, de))
    pub.rejection(refused, {fr: ListId(1), de: ListId(2)}, rejected_at_ms=5)
    ((topic, key, value),) = fake.produced
    assert (topic, key, orjson.loads(value or b"")) == (
        "rej",
        b"p-1",
        {
            "profile_id": "p-1",
            "audience": None,
            "list_id": None,
            "audiences": ["fr", "de"],
            "list_ids": [1, 2],
            "op": "sync_lead",
            "code": "1003",
            "message": "bad",
            "rejected_at_ms": 5,
        },
    )
