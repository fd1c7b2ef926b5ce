"""`validate --online`'s look at Kafka: what `ensure_topics` would refuse or create at start-up,
without creating anything (the same reach and state-topic checks)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from worker.errors import ConfigError
from worker.kafka.topics import check_state_topic, list_topics


@dataclass(frozen=True, slots=True)
class TopicReport:
    """The problems found (each naming its key), the input's partitions and what `run` creates."""

    problems: list[str]
    partitions: int = 0
    to_create: tuple[str, ...] = ()


def inspect_topics(
    config: Mapping[str, str], topic: str, dead_letter: str, rejections: str, state: str
) -> TopicReport:
    """Reach Kafka (bounded, naming kafka.bootstrap_servers), find the input topic, check an
    existing state topic, and list the output topics start-up would create."""
    try:
        admin, existing = list_topics(config)
    except ConfigError as exc:
        return TopicReport([str(exc)])
    if topic not in existing:
        return TopicReport([f"kafka.topic: input topic {topic!r} does not exist"])
    partitions = len(existing[topic].partitions)
    problems: list[str] = []
    if state in existing:
        try:
            check_state_topic(admin, state, len(existing[state].partitions), partitions)
        except ConfigError as exc:
            problems.append(str(exc))
    to_create = tuple(name for name in (dead_letter, rejections, state) if name not in existing)
    return TopicReport(problems, partitions, to_create)
