"""Output topics on the real broker: created with the configured retention, and a dead-letter
topic's record limit read back for sizing dead letters."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
from structlog.testing import capture_logs

from tests.kafka_support import create_topic, wait_for
from worker.kafka.topics import ensure_topics, max_message_bytes
from worker.settings import KafkaSettings

pytestmark = pytest.mark.integration
RETENTION_MS = 45 * 86_400_000


def _kafka(bootstrap: str, topic: str) -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers=bootstrap,
        topic=topic,
        dead_letter_topic=f"{topic}.dlq",
        rejections_topic=f"{topic}.rejections",
        state_topic=f"{topic}.state",
        output_retention_ms=RETENTION_MS,
    )


def _config(bootstrap: str, topic: str, name: str) -> str | None:
    """One configuration value of a topic, waiting until the broker knows the new topic."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    found: list[str | None] = []

    def described() -> bool:
        try:
            found.append(admin.describe_configs([resource])[resource].result(timeout=5)[name].value)
        except KafkaException:
            return False
        return True

    wait_for(described, 30, f"the configuration of {topic}")
    return found[0]


def test_created_dead_letter_and_rejections_topics_keep_records_for_the_configured_retention(
    kafka_bootstrap: str,
) -> None:
    """The dead-letter and rejections topics the worker creates have kafka.output_retention_ms."""
    topic = create_topic(kafka_bootstrap, 2, prefix="profiles")
    kafka = _kafka(kafka_bootstrap, topic)
    ensure_topics(kafka.client_config(), kafka)
    retention = {
        name: _config(kafka_bootstrap, name, "retention.ms")
        for name in (kafka.dead_letter_topic, kafka.rejections_topic)
    }
    assert retention == dict.fromkeys(retention, str(RETENTION_MS))


def test_an_existing_output_topic_with_a_shorter_retention_is_named_in_a_warning(
    kafka_bootstrap: str,
) -> None:
    """A dead-letter topic made beforehand with one day's retention is left but logged."""
    topic = create_topic(kafka_bootstrap, 1, prefix="profiles")
    kafka = _kafka(kafka_bootstrap, topic)
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    short = NewTopic(kafka.dead_letter_topic, 1, 1, config={"retention.ms": "86400000"})
    admin.create_topics([short])[kafka.dead_letter_topic].result(timeout=30)
    with capture_logs() as logs:
        ensure_topics(kafka.client_config(), kafka)
    warnings = [entry for entry in logs if entry["event"] == "topics.short_retention"]
    assert [(w["topic"], w["retention_ms"]) for w in warnings] == [
        (kafka.dead_letter_topic, 86_400_000)
    ]


def test_the_dead_letter_topic_record_limit_is_read_from_the_broker(kafka_bootstrap: str) -> None:
    """max_message_bytes returns the topic's own max.message.bytes, not the default."""
    topic = create_topic(kafka_bootstrap, 1, prefix="dlq", config={"max.message.bytes": "300000"})
    config = {"bootstrap.servers": kafka_bootstrap}
    assert max_message_bytes(config, topic, default=1_048_588) == 300_000
