"""The input consumer: the one place where librdkafka's synchronous calls meet the event loop.

Concurrency model: one thread and one event loop; every confluent-kafka call runs on
that thread. `poll_batch` never blocks (consume with timeout 0), so flush tasks keep running.
Rebalance callbacks run inside `consume()`, hence synchronously on the loop's thread: they only
touch memory (the loop drops revoked partitions' buffers; restores happen outside callbacks).
Offsets are committed explicitly and synchronously, never automatically (guarantee 2
in docs/guarantees.md), and every partition's commit result is checked. Group protocol:
KIP-848 (`group.protocol=consumer`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from worker.core.ids import Record
from worker.kafka.logs import LOGGER

PartitionsCallback = Callable[[set[int]], None]


class KafkaConsumer:
    """Group member on one topic, with explicit commits and pause/resume by partition."""

    def __init__(
        self,
        config: Mapping[str, str],
        topic: str,
        on_stats: Callable[[str], None] | None = None,
    ) -> None:
        settings: dict[str, object] = {
            "group.protocol": "consumer",
            "auto.offset.reset": "earliest",
            **config,
            # the worker's guarantees depend on these; a pass-through option cannot undo them
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "logger": LOGGER,  # librdkafka's lines as JSON log events
        }
        if on_stats is not None:
            settings.setdefault("statistics.interval.ms", 5000)
            settings["stats_cb"] = on_stats
        self.topic = topic
        self._consumer = Consumer(settings)
        self._on_assign: PartitionsCallback = lambda _partitions: None
        self._on_revoke: PartitionsCallback = lambda _partitions: None

    def subscribe(self, on_assign: PartitionsCallback, on_revoke: PartitionsCallback) -> None:
        """Join the group; the callbacks run inside `poll_batch` at each rebalance (a lost
        partition is a revoked one). Separate from construction, so that what the callbacks
        drive can be built with this consumer first."""
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self._consumer.subscribe(
            [self.topic], on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._revoked
        )

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # assign first, so that the loop's pause() applies to partitions we really own:
        # they stay paused until their state is restored
        consumer.incremental_assign(partitions)
        self._on_assign({tp.partition for tp in partitions})

    def _revoked(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        self._on_revoke({tp.partition for tp in partitions})

    def poll_batch(self, max_messages: int) -> list[Record]:
        """Return up to `max_messages` records already fetched; never waits."""
        records: list[Record] = []
        for message in self._consumer.consume(max_messages, 0):
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF and error.fatal():
                    raise KafkaException(error)
                continue  # transient errors are retried by librdkafka itself
            partition, offset = message.partition(), message.offset()
            if partition is not None and offset is not None:  # always set on a fetched record
                records.append(Record(partition, offset, message.key(), message.value()))
        return records

    def commit(self, offsets: Mapping[int, int]) -> dict[int, str | None]:
        """Commit `partition -> next offset` synchronously; return each partition's error."""
        tps = [TopicPartition(self.topic, p, o) for p, o in offsets.items()]
        try:
            results = self._consumer.commit(offsets=tps, asynchronous=False) or []
        except KafkaException as exc:  # e.g. the group is rebalancing: nothing was committed
            return dict.fromkeys(offsets, str(exc.args[0]))
        return {tp.partition: None if tp.error is None else str(tp.error) for tp in results}

    def pause(self, partitions: set[int]) -> None:
        """Stop fetching these partitions; polling goes on, so the group membership stays."""
        self._consumer.pause([TopicPartition(self.topic, p) for p in partitions])

    def resume(self, partitions: set[int]) -> None:
        """Fetch these partitions again from where they stopped."""
        self._consumer.resume([TopicPartition(self.topic, p) for p in partitions])

    def partition_count(self) -> int:
        """Return the number of partitions of the input topic."""
        metadata = self._consumer.list_topics(self.topic, timeout=10)
        return len(metadata.topics[self.topic].partitions)

    def close(self) -> None:
        """Leave the group (a rebalance hands our partitions over at once)."""
        self._consumer.close()
