"""Start-up checks of the topics (DESIGN §2.5): the input must exist; the worker creates its own.

The state changelog must have exactly the input's partition count (co-partitioning: a profile's
state lives in the same partition number as its events) and be compacted.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, TopicMetadata

from worker.errors import ConfigError
from worker.kafka.logs import LOGGER

_METADATA_TIMEOUT_S = 15.0
# librdkafka reports a refused login only through error_cb; list_topics just times out
_REFUSED = frozenset({KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED})


def ensure_topics(
    config: Mapping[str, str], topic: str, dead_letter: str, rejections: str, state: str
) -> int:
    """Check the input topic, create missing output topics; return the partition count."""
    admin, existing = _list_topics(config)
    if topic not in existing:
        raise ConfigError(f"kafka.topic: input topic {topic!r} does not exist")
    partitions = len(existing[topic].partitions)
    wanted = {
        dead_letter: NewTopic(dead_letter, num_partitions=partitions, replication_factor=-1),
        rejections: NewTopic(rejections, num_partitions=partitions, replication_factor=-1),
        state: NewTopic(
            state,
            num_partitions=partitions,
            replication_factor=-1,
            config={"cleanup.policy": "compact"},
        ),
    }
    # checked before creating anything, so a bad state topic is refused whatever else is missing
    if state in existing:
        _check_state_topic(admin, state, len(existing[state].partitions), partitions)
    missing = [new for name, new in wanted.items() if name not in existing]
    if missing:
        for name, future in admin.create_topics(missing).items():
            try:
                future.result(timeout=30)
            except KafkaException as exc:
                if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":  # another replica won the race
                    raise ConfigError(f"cannot create topic {name!r}: {exc}") from None
    return partitions


def _list_topics(config: Mapping[str, str]) -> tuple[AdminClient, dict[str, TopicMetadata]]:
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


def _check_state_topic(admin: AdminClient, state: str, have: int, want: int) -> None:
    if have != want:
        raise ConfigError(
            f"kafka.state_topic: {state!r} has {have} partitions but the input has {want}; "
            "they must match (co-partitioned state): delete it or name another one"
        )
    resource = ConfigResource(ConfigResource.Type.TOPIC, state)
    configs = admin.describe_configs([resource])[resource].result(timeout=15)
    policy = configs["cleanup.policy"].value
    if "compact" not in (policy or ""):
        raise ConfigError(f"kafka.state_topic: {state!r} must be compacted, not {policy!r}")


def create_topic_if_missing(config: Mapping[str, str], topic: str, partitions: int) -> None:
    """Create a topic unless it exists (the demo's input topic; production creates its own)."""
    admin, existing = _list_topics(config)
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
    _, existing = _list_topics(config)
    return {name: len(meta.partitions) for name, meta in existing.items()}
