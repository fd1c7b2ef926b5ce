"""Everything the worker writes to Kafka: dead letters, rejections and the state changelog.

Records are produced asynchronously and `flush()` is awaited before every offset commit, so an
input offset is never committed before what was derived from it is in Kafka.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

import orjson
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from worker.core.dead_letters import Headers, fit
from worker.core.ids import AudienceId, ListId
from worker.core.outbox import Rejection
from worker.kafka.logs import LOGGER

# librdkafka's default message.max.bytes (the largest record this producer sends)
PRODUCER_MAX_BYTES: Final = 1_000_000
# the broker's default max.message.bytes (the largest batch a topic accepts)
TOPIC_MAX_BYTES: Final = 1_048_588
# errors that refuse one record for what it is: sending it again can never succeed
_PER_RECORD: Final = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.INVALID_MSG_SIZE,
        KafkaError.INVALID_MSG,
        KafkaError.INVALID_RECORD,
    }
)


class Publisher:
    """One idempotent producer for the three output topics."""

    def __init__(
        self,
        config: Mapping[str, str],
        dead_letter_topic: str,
        rejections_topic: str,
        state_topic: str,
        dead_letter_topic_max_bytes: int = TOPIC_MAX_BYTES,
    ) -> None:
        batch_bytes = int(config.get("batch.size", PRODUCER_MAX_BYTES))
        self._producer = Producer(
            {
                "linger.ms": 20,
                **config,
                # the broker checks a whole batch against the topic's limit, not each record
                "batch.size": min(batch_bytes, dead_letter_topic_max_bytes),
                "enable.idempotence": True,  # retries never duplicate or reorder changelog records
                "acks": "all",
                "logger": LOGGER,  # librdkafka's lines as JSON log events
            }
        )
        self.dead_letter_topic = dead_letter_topic
        self.rejections_topic = rejections_topic
        self.state_topic = state_topic
        self.failures = 0
        producer_max = int(config.get("message.max.bytes", PRODUCER_MAX_BYTES))
        self.dead_letter_max_bytes = min(producer_max, dead_letter_topic_max_bytes)

    def _delivered(self, error: KafkaError | None, _: Message) -> None:
        if error is not None:
            self.failures += 1  # checked by flush(): the commit waits for a clean flush

    def dead_letter(
        self,
        key: bytes | None,
        value: bytes | None,
        headers: Headers,
        on_lost: Callable[[str], None],
    ) -> None:
        """Publish an invalid input record with the reason in its headers: unchanged, or cut to
        what the producer and the topic accept (worker.core.dead_letters).

        A record Kafka refuses for what it is (its size, its format) is reported to `on_lost`
        with the error's name, now or at delivery, and does not hold back the commit: it could
        never be written, and a worker that stopped on it would stop again on every restart.
        Any other failure is one of `flush()`'s, as for every record.
        """

        def delivered(error: KafkaError | None, _: Message | None) -> None:
            if error is None:
                return
            if error.code() in _PER_RECORD:
                on_lost(error.name().lower())
            else:
                self.failures += 1

        key, value, headers = fit(key, value, headers, self.dead_letter_max_bytes)
        try:
            self._produce(
                self.dead_letter_topic, key, value, headers=headers, on_delivery=delivered
            )
        except KafkaException as exc:
            delivered(exc.args[0], None)

    def rejection(
        self, rejection: Rejection, list_ids: Mapping[AudienceId, ListId], rejected_at_ms: int
    ) -> None:
        """Publish a change Marketo refused, with its reason code, keyed by its profile."""
        value = encode_rejection(rejection, list_ids, rejected_at_ms)
        self._produce(self.rejections_topic, rejection.profile.encode(), value)

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
        headers: Headers | None = None,
        on_delivery: Callable[[KafkaError | None, Message], None] | None = None,
    ) -> None:
        while True:
            try:
                self._producer.produce(
                    topic,
                    value,
                    key,
                    partition=partition,
                    headers=headers,
                    on_delivery=on_delivery or self._delivered,
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


def encode_rejection(
    rejection: Rejection, list_ids: Mapping[AudienceId, ListId], rejected_at_ms: int
) -> bytes:
    """The rejections topic's JSON value for one refused change, its lists' ids resolved."""
    list_id = list_ids.get(rejection.audience) if rejection.audience else None
    body = {
        "profile_id": rejection.profile,
        "audience": rejection.audience,
        "list_id": list_id,
        # every list the person is missing from: a refused lead sync names each list that
        # waited for it, where `audience` (a list call's) is null
        "audiences": list(rejection.audiences),
        "list_ids": [list_ids.get(audience) for audience in rejection.audiences],
        "op": rejection.op,
        "code": rejection.code,
        "message": rejection.message,
        "rejected_at_ms": rejected_at_ms,
    }
    return orjson.dumps(body)
