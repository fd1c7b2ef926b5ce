"""Test support for the real broker: where it comes from, topics with unique names, waiting."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from worker.kafka.localbroker import BrokerLayout, LocalBroker, free_port


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll `condition` until it holds; fail naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)  # polling an external process or broker: the condition is the sync
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def new_local_broker(run_dir: Path) -> LocalBroker:
    """Return a broker (not started) on two free loopback ports with its data in `run_dir`."""
    layout = BrokerLayout(run_dir=run_dir, port=free_port(), controller_port=free_port())
    return LocalBroker(layout)


def docker_answers() -> bool:
    """Tell whether a Docker engine answers, so testcontainers can start a broker."""
    if shutil.which("docker") is None:
        return False
    try:
        import docker  # optional: comes with testcontainers

        docker.from_env().ping()
    except Exception:  # noqa: BLE001 - any failure means "no usable engine"
        return False
    return True


@contextmanager
def broker_from_environment(tmp_dir: Path) -> Iterator[str]:
    """Yield a bootstrap address: $KAFKA_BOOTSTRAP_SERVERS, the local jars broker, or Docker."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"]
        return
    if os.environ.get("KAFKA_TEST_BROKER") == "docker" or (
        shutil.which("java") is None and docker_answers()
    ):
        from testcontainers.community.kafka import KafkaContainer

        with KafkaContainer("confluentinc/cp-kafka:7.6.0").with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    broker = new_local_broker(tmp_dir)
    try:
        yield broker.start()
    finally:
        broker.stop()


def create_topic(
    bootstrap: str, partitions: int, prefix: str = "t", config: dict[str, str] | None = None
) -> str:
    """Create a uniquely named topic and wait until every partition has a leader."""
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})
    admin.create_topics([topic])[name].result(timeout=30)

    def ready() -> bool:
        try:
            meta = admin.list_topics(topic=name, timeout=5).topics[name]
        except KafkaException:
            return False
        leaders = [p.leader for p in meta.partitions.values()]
        return meta.error is None and len(leaders) == partitions and min(leaders) >= 0

    wait_for(ready, 30, f"topic {name} to have {partitions} partitions with leaders")
    return name
