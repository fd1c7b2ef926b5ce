"""Everything the worker writes to Kafka: dead letters, rejections and the state changelog.

Records are produced asynchronously and `flush()` is awaited before every offset commit, so an
input offset is never committed before what was derived from it is in Kafka (DESIGN §3.2).
"""

from __future__ import annotations

from collections.abc import Mapping

from confluent_kafka import KafkaError, Message, Producer

from worker.kafka.logs import LOGGER


class Publisher:
    """One idempotent producer for the three output topics."""

    def __init__(
        self,
        config: Mapping[str, str],
        dead_letter_topic: str,
        rejections_topic: str,
        state_topic: str,
    ) -> None:
        self._producer = Producer(
            {
                "linger.ms": 20,
                **config,
                "enable.idempotence": True,  # retries never duplicate or reorder changelog records
                "acks": "all",
                "logger": LOGGER,  # librdkafka's lines as JSON log events
            }
        )
        self.dead_letter_topic = dead_letter_topic
        self.rejections_topic = rejections_topic
        self.state_topic = state_topic
        self.failures = 0

    def _delivered(self, error: KafkaError | None, _: Message) -> None:
        if error is not None:
            self.failures += 1  # checked by flush(): the commit waits for a clean flush

    def dead_letter(
        self, key: bytes | None, value: bytes | None, headers: list[tuple[str, str | bytes | None]]
    ) -> None:
        """Publish an invalid input record unchanged, with the reason in its headers."""
        self._produce(self.dead_letter_topic, key, value, headers=headers)

    def rejection(self, key: bytes, value: bytes) -> None:
        """Publish a change Marketo refused, with its reason code."""
        self._produce(self.rejections_topic, key, value)

    def state(self, partition: int, key: bytes, value: bytes | None) -> None:
        """Write a profile's state (or a tombstone) to its co-partitioned changelog partition."""
        self._produce(self.state_topic, key, value, partition=partition)

    def _produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        partition: int = -1,
        headers: list[tuple[str, str | bytes | None]] | None = None,
    ) -> None:
        while True:
            try:
                self._producer.produce(
                    topic,
                    value,
                    key,
                    partition=partition,
                    headers=headers,
                    on_delivery=self._delivered,
                )
                return
            except BufferError:  # the local queue is full: serve deliveries, then try again
                self._producer.poll(0.1)

    def poll(self) -> None:
        """Serve delivery reports (cheap; called from the loop)."""
        self._producer.poll(0)

    def flush(self, timeout_s: float) -> bool:
        """Wait until every record is delivered; False while any is undelivered.

        A record that failed for good (after librdkafka's own retries, `message.timeout.ms`) is
        never re-produced: the caller must stop without committing, so a restart re-reads it.
        """
        remaining = self._producer.flush(timeout_s)
        return remaining == 0 and self.failures == 0
