"""Start-up topic checks: an existing state topic is checked whatever else must be created."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from worker.errors import ConfigError
from worker.kafka import topics
from worker.settings import KafkaSettings

KAFKA = KafkaSettings(
    topic="in", dead_letter_topic="in.dlq", rejections_topic="in.rej", state_topic="in.state"
)


class _Done:
    """A future that has already succeeded (topic creation, or a config description)."""

    def __init__(self, value: object = None) -> None:
        self.value = value

    def result(self, timeout: float | None = None) -> object:
        return self.value


class FakeAdmin:
    """Just enough of AdminClient: the listed topics, the state topic's policy, what it created."""

    def __init__(self, partitions: dict[str, int], policy: str) -> None:
        self.partitions = partitions
        self.policy = policy
        self.created: list[str] = []

    def list_topics(self, timeout: float | None = None) -> SimpleNamespace:
        return SimpleNamespace(
            topics={
                name: SimpleNamespace(partitions=dict.fromkeys(range(count)))
                for name, count in self.partitions.items()
            }
        )

    def create_topics(self, new: list[SimpleNamespace]) -> dict[str, _Done]:
        self.created += [topic.topic for topic in new]
        return {topic.topic: _Done() for topic in new}

    def describe_configs(self, resources: list[object]) -> dict[object, _Done]:
        policy = SimpleNamespace(value=self.policy)
        return {resource: _Done({"cleanup.policy": policy}) for resource in resources}


def ensure(
    monkeypatch: pytest.MonkeyPatch, partitions: dict[str, int], policy: str = "compact"
) -> FakeAdmin:
    admin = FakeAdmin(partitions, policy)
    monkeypatch.setattr(topics, "AdminClient", lambda config, error_cb=None: admin)
    topics.ensure_topics({}, KAFKA)
    return admin


def test_state_topic_with_other_partition_count_is_refused_when_another_topic_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A state topic not co-partitioned with the input is refused though rejections is missing."""
    with pytest.raises(ConfigError, match="has 3 partitions but the input has 6"):
        ensure(monkeypatch, {"in": 6, "in.dlq": 6, "in.state": 3})


def test_state_topic_not_compacted_is_refused_when_another_topic_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A state topic that is not compacted is refused even if the dead-letter topic must be made."""
    with pytest.raises(ConfigError, match="must be compacted"):
        ensure(monkeypatch, {"in": 6, "in.rej": 6, "in.state": 6}, policy="delete")


def test_bad_state_topic_is_refused_before_anything_is_created(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Refusing the state topic leaves the cluster as it was: no output topic was created."""
    admin = FakeAdmin({"in": 6, "in.state": 3}, "compact")
    monkeypatch.setattr(topics, "AdminClient", lambda config, error_cb=None: admin)
    with pytest.raises(ConfigError):
        topics.ensure_topics({}, KAFKA)
    assert admin.created == []


def test_missing_output_topics_are_created_beside_a_good_state_topic(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A co-partitioned, compacted state topic is accepted and the missing topics are created."""
    admin = ensure(monkeypatch, {"in": 6, "in.state": 6})
    assert sorted(admin.created) == ["in.dlq", "in.rej"]
