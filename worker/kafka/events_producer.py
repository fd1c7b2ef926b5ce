"""Produce keyed profile events to the input topic, for the import-audience and generate commands.

Records are batched by librdkafka (`linger.ms`, `batch.size`), never flushed one by one; the
caller flushes once at the end and learns how many records were delivered or failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from worker.errors import ConfigError
from worker.kafka.logs import LOGGER

# Throughput defaults for bulk publishing; the config's kafka.options override them.
_BULK_DEFAULTS: Final = {
    "linger.ms": "50",
    "batch.size": "1000000",
    "compression.type": "lz4",
    "queue.buffering.max.messages": "500000",
}

_POLL_EVERY: Final = 1_000


class EventsProducer:
    """An idempotent producer of (key, value) records to one topic, counting delivery outcomes."""

    def __init__(self, config: Mapping[str, str], topic: str) -> None:
        self._producer = Producer(
            {
                **_BULK_DEFAULTS,
                **config,
                "logger": LOGGER,  # librdkafka's lines through Python logging
                # idempotence keeps each key's records in order, so an upload's later row wins
                "enable.idempotence": True,
                "acks": "all",
                # a Python callback per delivered record would cost more than producing it
                "delivery.report.only.error": True,
                "on_delivery": self._on_delivery,
            }
        )
        self.topic = topic
        self.produced = 0
        self.failed = 0
        self.first_error: str | None = None

    @property
    def delivered(self) -> int:
        """Records the broker acknowledged so far (all of them once flush() returns 0)."""
        return self.produced - self.failed - len(self._producer)

    def check_topic(self, timeout_s: float) -> int:
        """Return the topic's partition count; raise ConfigError when it does not exist."""
        try:
            # every topic, not list_topics(topic): asking for one lets a producer auto-create it
            metadata = self._producer.list_topics(timeout=timeout_s)
        except KafkaException as exc:
            raise ConfigError(f"kafka.bootstrap_servers: cannot reach Kafka: {exc}") from None
        topic = metadata.topics.get(self.topic)
        if topic is None or topic.error is not None or not topic.partitions:
            raise ConfigError(f"kafka.topic: input topic {self.topic!r} does not exist")
        return len(topic.partitions)

    def produce(self, key: bytes, value: bytes) -> None:
        """Queue one record; when the local queue is full, serve deliveries until it has room."""
        while True:
            try:
                self._producer.produce(self.topic, value, key)
                break
            except BufferError:
                self._producer.poll(0.05)
        self.produced += 1
        if self.produced % _POLL_EVERY == 0:  # serve error reports as we go; poll() is not free
            self._producer.poll(0)

    def flush(self, timeout_s: float) -> int:
        """Wait up to `timeout_s` for queued records; return how many are still undelivered."""
        return int(self._producer.flush(timeout_s))

    def _on_delivery(self, error: KafkaError | None, _: Message) -> None:
        if error is None:  # not called for successes (delivery.report.only.error)
            return
        self.failed += 1
        if self.first_error is None:
            self.first_error = str(error)
