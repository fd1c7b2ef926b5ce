"""`marketo-worker create-topics CONFIG`: the input and output topics of a config, created once."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from tests.integration.harness import write_config
from tests.kafka_support import wait_for
from worker.commands import create_topics
from worker.kafka.localbroker import free_port

pytestmark = pytest.mark.integration
AUDIENCES = [{"id": "all", "name": "All", "rule": "exists(country)", "list": {"name": "All"}}]


def _config(tmp_path: Path, bootstrap: str) -> tuple[Path, str]:
    topic = f"fresh-{uuid.uuid4().hex[:10]}"
    path = write_config(tmp_path / "config.yaml", bootstrap, "http://127.0.0.1:1", topic, AUDIENCES)
    return path, topic


def _partitions(bootstrap: str) -> dict[str, int]:
    topics = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics
    return {name: len(meta.partitions) for name, meta in topics.items()}


def test_create_topics_creates_the_input_and_the_worker_s_output_topics(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    """A fresh config gets its input with --partitions, and the three output topics alike."""
    config, topic = _config(tmp_path, kafka_bootstrap)
    assert create_topics.main([str(config), "--partitions", "3"]) == 0
    names = (topic, f"{topic}.dlq", f"{topic}.rejections", f"{topic}.state")
    wait_for(lambda: set(names) <= set(_partitions(kafka_bootstrap)), 30, "the four topics")
    have = _partitions(kafka_bootstrap)
    assert [have[name] for name in names] == [3, 3, 3, 3]
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    state = ConfigResource(ConfigResource.Type.TOPIC, f"{topic}.state")
    policy = admin.describe_configs([state])[state].result(timeout=15)["cleanup.policy"].value
    assert policy == "compact"


def test_create_topics_run_twice_changes_nothing_and_says_the_topics_exist(
    tmp_path: Path, kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second run exits 0, keeps the partition counts and reports every topic as existing."""
    config, topic = _config(tmp_path, kafka_bootstrap)
    assert create_topics.main([str(config), "--partitions", "2"]) == 0
    names = {topic, f"{topic}.dlq", f"{topic}.rejections", f"{topic}.state"}
    wait_for(lambda: names <= set(_partitions(kafka_bootstrap)), 30, "the four topics")
    capsys.readouterr()
    assert create_topics.main([str(config), "--partitions", "5"]) == 0
    out = capsys.readouterr().out
    assert out.count("exists (2 partitions)") == 4, out
    assert "--partitions 5 applies only to a topic this command creates" in out
    assert _partitions(kafka_bootstrap)[topic] == 2


def test_create_topics_exits_2_naming_the_broker_when_it_is_unreachable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing listening at kafka.bootstrap_servers is a start-up error: exit 2, key named."""
    config, _ = _config(tmp_path, f"127.0.0.1:{free_port()}")
    assert create_topics.main([str(config)]) == 2
    assert "kafka.bootstrap_servers: cannot reach Kafka" in capsys.readouterr().err
