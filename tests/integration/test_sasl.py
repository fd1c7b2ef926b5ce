"""Kafka security pass-through: `kafka.options` carries SASL settings to every client.

A second local broker gets an extra SASL_PLAINTEXT listener (PLAIN); its PLAINTEXT listener stays
for the test's own admin and producer. worker/kafka/localbroker.py is reused, not edited.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from tests.integration.harness import (
    WorkerProcess,
    event,
    new_input_topic,
    produce,
    wait_for_lists,
    write_config,
)
from worker.kafka.localbroker import BrokerLayout, LocalBroker, check_port_free, free_port
from worker.sandbox.process import SandboxProcess

pytestmark = pytest.mark.integration
AUDIENCES = [{"id": "all", "name": "All", "rule": "exists(country)", "list": {"name": "All"}}]
WORKER_PASSWORD = "worker-secret"  # a local test credential
JAAS = (
    "org.apache.kafka.common.security.plain.PlainLoginModule required "
    'username="admin" password="admin-secret" '
    f'user_admin="admin-secret" user_worker="{WORKER_PASSWORD}";'
)


class SaslBroker(LocalBroker):
    """LocalBroker plus a SASL_PLAINTEXT listener accepting PLAIN logins for `worker`."""

    def __init__(self, layout: BrokerLayout, sasl_port: int) -> None:
        super().__init__(layout)
        self.sasl_port = sasl_port

    @property
    def sasl_bootstrap(self) -> str:
        return f"127.0.0.1:{self.sasl_port}"

    def start(self, timeout_s: float = 90.0, cancelled: Callable[[], bool] = lambda: False) -> str:
        check_port_free(self.sasl_port)
        return super().start(timeout_s, cancelled)

    def _write_properties(self) -> None:
        super()._write_properties()  # the template, filled as for every local broker
        listener = f"SASL_PLAINTEXT://{self.sasl_bootstrap}"
        lines = []
        for line in self.layout.properties.read_text().splitlines():
            if line.startswith(("listeners=", "advertised.listeners=")):
                line += f",{listener}"
            elif line.startswith("listener.security.protocol.map="):
                line += ",SASL_PLAINTEXT:SASL_PLAINTEXT"
            lines.append(line)
        lines += [
            "sasl.enabled.mechanisms=PLAIN",
            f"listener.name.sasl_plaintext.plain.sasl.jaas.config={JAAS}",
        ]
        self.layout.properties.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SaslBroker]:
    """A broker of our own for this module, with PLAINTEXT and SASL_PLAINTEXT listeners."""
    if shutil.which("java") is None:
        pytest.skip("the SASL broker runs from the Kafka jars and needs Java 17")
    run_dir = tmp_path_factory.mktemp("kafka-sasl")
    broker = SaslBroker(BrokerLayout(run_dir, free_port(), free_port()), free_port())
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def sasl_config(
    path: Path, broker: SaslBroker, sandbox_url: str, topic: str, password: str
) -> Path:
    """A worker config that reaches Kafka only through the SASL listener, as user `worker`."""
    write_config(path, broker.sasl_bootstrap, sandbox_url, topic, AUDIENCES)
    config = yaml.safe_load(path.read_text())
    config["kafka"]["options"] = {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "PLAIN",
        "sasl.username": "worker",
        "sasl.password": password,
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_worker_consumes_through_a_sasl_listener(sasl_broker: SaslBroker, tmp_path: Path) -> None:
    """With SASL options in kafka.options the worker consumes, and the list fills."""
    topic = new_input_topic(sasl_broker.bootstrap, partitions=2)
    emails = {f"sasl{i}@example.com" for i in range(6)}
    events = [
        event(
            f"p-{i}",
            10 + i,
            identities={"email": f"sasl{i}@example.com"},
            attributes={"country": "FR", "firstName": "A", "lastName": "B"},
        )
        for i in range(6)
    ]
    with SandboxProcess("--no-limits") as sandbox:
        config = sasl_config(tmp_path / "c.yaml", sasl_broker, sandbox.url, topic, WORKER_PASSWORD)
        worker = WorkerProcess(config, tmp_path / "w.log")
        try:
            produce(sasl_broker.bootstrap, topic, events)
            wait_for_lists(sandbox, {"All": emails}, 90)
        finally:
            assert worker.stop() == 0
    assert worker.metrics_port() is not None  # the log holds the worker's lines...
    assert WORKER_PASSWORD not in worker.log.read_text(errors="replace")  # ...but not the password


def run_with_wrong_password(broker: SaslBroker, tmp_path: Path) -> tuple[int, str, str]:
    """Run the worker with a wrong SASL password: (exit code, its whole output, the password)."""
    topic = new_input_topic(broker.bootstrap, partitions=1)
    wrong = f"wrong-{uuid.uuid4().hex}"
    with SandboxProcess("--no-limits") as sandbox:
        config = sasl_config(tmp_path / "c.yaml", broker, sandbox.url, topic, wrong)
        worker = WorkerProcess(config, tmp_path / "w.log")
        try:
            code = worker.proc.wait(60)  # a hang is the failure this bounds
        finally:
            worker.stop()
    return code, worker.log.read_text(errors="replace"), wrong


def test_wrong_sasl_password_stops_the_worker_without_echoing_it(
    sasl_broker: SaslBroker, tmp_path: Path
) -> None:
    """A refused SASL login ends `run` non-zero within a minute, and the password is not shown."""
    code, output, wrong = run_with_wrong_password(sasl_broker, tmp_path)
    assert code != 0
    assert wrong not in output


def test_wrong_sasl_password_is_reported_as_an_authentication_failure(
    sasl_broker: SaslBroker, tmp_path: Path
) -> None:
    """The worker's own error line (not librdkafka's log) says that authentication failed."""
    code, output, _ = run_with_wrong_password(sasl_broker, tmp_path)
    own_lines = [line for line in output.splitlines() if not line.startswith("%")]
    assert code == 2
    assert any("authentication" in line.lower() for line in own_lines), own_lines[-5:]
