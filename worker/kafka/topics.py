"""Start-up checks of the topics: the input must exist; the worker creates its own.

The state changelog must have exactly the input's partition count (co-partitioning: a profile's
state lives in the same partition number as its events) and be compacted. The dead-letter and
rejections topics are created with `kafka.output_retention_ms`, so that their records outlive
the broker's default week until someone replays or reads them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import structlog
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, TopicMetadata

from worker.errors import ConfigError
from worker.kafka.logs import LOGGER
from worker.settings import KafkaSettings

log = structlog.get_logger("worker.kafka.topics")

_METADATA_TIMEOUT_S = 15.0
# librdkafka reports a refused login only through error_cb; list_topics just times out
_REFUSED = frozenset({KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED})


def ensure_topics(config: Mapping[str, str], kafka: KafkaSettings) -> int:
    """Check the input topic, create missing output topics; return the partition count."""
    topic, dead_letter, rejections = kafka.topic, kafka.dead_letter_topic, kafka.rejections_topic
    state, retention_ms = kafka.state_topic, kafka.output_retention_ms
    admin, existing = list_topics(config)
    if topic not in existing:
        raise ConfigError(f"kafka.topic: input topic {topic!r} does not exist")
    partitions = len(existing[topic].partitions)
    kept = {"retention.ms": str(retention_ms)}
    wanted = {
        dead_letter: NewTopic(
            dead_letter, num_partitions=partitions, replication_factor=-1, config=kept
        ),
        rejections: NewTopic(
            rejections, num_partitions=partitions, replication_factor=-1, config=kept
        ),
        state: NewTopic(
            state,
            num_partitions=partitions,
            replication_factor=-1,
            config={"cleanup.policy": "compact"},
        ),
    }
    # checked before creating anything, so a bad state topic is refused whatever else is missing
    if state in existing:
        check_state_topic(admin, state, len(existing[state].partitions), partitions)
    missing = [new for name, new in wanted.items() if name not in existing]
    if missing:
        for name, future in admin.create_topics(missing).items():
            try:
                future.result(timeout=30)
            except KafkaException as exc:
                if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":  # another replica won the race
                    raise ConfigError(f"cannot create topic {name!r}: {exc}") from None
    for name in (dead_letter, rejections):
        if name in existing:
            _warn_short_retention(admin, name, retention_ms)
    return partitions


def _warn_short_retention(admin: AdminClient, topic: str, wanted_ms: int) -> None:
    """An existing output topic is left as it is, but a shorter retention is named in a log."""
    try:
        retention = _describe(admin, topic).get("retention.ms")
    except KafkaException:  # no permission to describe: the warning is advice, not a check
        return
    have_ms = int(retention) if retention else -1
    if have_ms >= 0 and (wanted_ms < 0 or have_ms < wanted_ms):
        log.warning(
            "topics.short_retention", topic=topic, retention_ms=have_ms, wanted_ms=wanted_ms
        )


def max_message_bytes(config: Mapping[str, str], topic: str, default: int) -> int:
    """The largest record batch `topic` accepts (its max.message.bytes); `default` when the
    broker does not say (no permission to describe configurations)."""
    settings: dict[str, Any] = {**config, "logger": LOGGER}
    admin = AdminClient(settings)
    try:
        limit = _describe(admin, topic).get("max.message.bytes")
    except KafkaException as exc:
        log.warning("topics.describe_failed", topic=topic, error=str(exc), assumed=default)
        return default
    return int(limit) if limit else default


def _describe(admin: AdminClient, topic: str) -> dict[str, str | None]:
    """A topic's configuration; a topic created a moment ago is waited for (bounded)."""
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    deadline = time.monotonic() + _METADATA_TIMEOUT_S
    while True:
        try:
            configs = admin.describe_configs([resource])[resource].result(timeout=15)
            return {name: entry.value for name, entry in configs.items()}
        except KafkaException as exc:
            unknown = exc.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART
            if not unknown or time.monotonic() >= deadline:
                raise
            time.sleep(0.1)  # the new topic reaches every broker's metadata soon


def list_topics(config: Mapping[str, str]) -> tuple[AdminClient, dict[str, TopicMetadata]]:
    """Return an admin client and the topics; a refused login fails fast, naming it."""
    refused: list[KafkaError] = []

    def on_error(error: KafkaError) -> None:
        if error.code() in _REFUSED:
            refused.append(error)

    settings: dict[str, Any] = {**config, "logger": LOGGER}  # librdkafka's lines as JSON events
    admin = AdminClient(settings, error_cb=on_error)
    deadline = time.monotonic() + _METADATA_TIMEOUT_S
    while True:
        try:
            return admin, admin.list_topics(timeout=1.0).topics
        except KafkaException as exc:
            admin.poll(0)  # serves error_cb
            if refused:
                raise ConfigError(
                    "kafka.options: Kafka refused the login (authentication failed; check "
                    f"sasl.username / sasl.password): {refused[-1].str()}"
                ) from None
            if time.monotonic() >= deadline:
                raise ConfigError(f"kafka.bootstrap_servers: cannot reach Kafka: {exc}") from None


def check_state_topic(admin: AdminClient, state: str, have: int, want: int) -> None:
    if have != want:
        raise ConfigError(
            f"kafka.state_topic: {state!r} has {have} partitions but the input has {want}; "
            "they must match (co-partitioned state): delete it or name another one"
        )
    policy = _describe(admin, state).get("cleanup.policy")
    if "compact" not in (policy or ""):
        raise ConfigError(f"kafka.state_topic: {state!r} must be compacted, not {policy!r}")


def create_topic_if_missing(config: Mapping[str, str], topic: str, partitions: int) -> None:
    """Create a topic unless it exists (the demo's input topic; production creates its own)."""
    admin, existing = list_topics(config)
    if topic in existing:
        return
    future = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=-1)]
    )
    try:
        future[topic].result(timeout=30)
    except KafkaException as exc:
        if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
            raise ConfigError(f"cannot create topic {topic!r}: {exc}") from None


def topic_partitions(config: Mapping[str, str]) -> dict[str, int]:
    """Every topic on the cluster with its partition count (`create-topics` reports them)."""
    _, existing = list_topics(config)
    return {name: len(meta.partitions) for name, meta in existing.items()}
