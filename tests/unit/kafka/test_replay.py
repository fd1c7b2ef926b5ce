"""Reading topic metadata for resync and replay-dlq: unreachable Kafka is a configuration error."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from confluent_kafka import KafkaError, KafkaException

from worker.commands import replay_dlq as replay
from worker.commands import resync
from worker.errors import ConfigError
from worker.kafka import replay as kafka_replay
from worker.kafka.replay import partition_count
from worker.telemetry import logging as telemetry_logging

CONFIG = {
    "kafka": {"bootstrap_servers": "127.0.0.1:9"},
    "marketo": {"base_url": "https://123-ABC-456.mktorest.com"},
    "mapping": [{"from": "firstName", "to": "firstName"}, {"from": "lastName", "to": "lastName"}],
    "audiences": [
        {"id": "fr", "name": "France", "rule": 'country == "FR"', "list": {"name": "France"}},
    ],
}
UNREACHABLE = "kafka.bootstrap_servers: cannot reach Kafka: "


class UnreachableConsumer:
    """A confluent_kafka.Consumer whose metadata request fails as with no broker listening."""

    def __init__(self, config: dict[str, str]) -> None:
        self.config = config

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> object:
        raise KafkaException(KafkaError(KafkaError._TRANSPORT, "Failed to get metadata"))

    def close(self) -> None:
        pass


@pytest.fixture
def no_kafka(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Kafka cannot be reached; return a config file; commands log nowhere (no global setup)."""
    monkeypatch.setattr(kafka_replay, "Consumer", UnreachableConsumer)
    monkeypatch.setattr(telemetry_logging, "configure", lambda *args: None)  # the runner's
    monkeypatch.setenv("MARKETO_CLIENT_ID", "the-client")
    monkeypatch.setenv("MARKETO_CLIENT_SECRET", "s3cr3t-value")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    return path


@pytest.mark.usefixtures("no_kafka")
def test_unreachable_kafka_is_a_config_error_naming_bootstrap_servers() -> None:
    """partition_count raises ConfigError on kafka.bootstrap_servers, not KafkaException."""
    with pytest.raises(ConfigError, match=f"^{UNREACHABLE}"):
        partition_count({"bootstrap.servers": "127.0.0.1:9"}, "in")


def test_resync_exits_2_with_one_line_when_kafka_is_unreachable(
    no_kafka: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`resync` reports unreachable Kafka as a configuration problem: exit 2, one line."""
    assert resync.main([str(no_kafka), "--dry-run"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(UNREACHABLE)


def test_replay_dlq_exits_2_with_one_line_when_kafka_is_unreachable(
    no_kafka: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`replay-dlq` reports unreachable Kafka as a configuration problem: exit 2, one line."""
    assert replay.main([str(no_kafka), "--dry-run"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(UNREACHABLE)
