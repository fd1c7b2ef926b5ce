"""Guarantee checked: `validate --online` and `run`'s start-up find, against Marketo (the sandbox
over real HTTP) and Kafka (the real broker), every reach, topic, mapping, lookup-field, folder and
list problem, each naming its key, and pass a valid configuration without creating anything."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka.admin import AdminClient
from pydantic import SecretStr

from tests.fakes import RecordingLimiter
from tests.integration.harness import new_input_topic, write_config
from tests.kafka_support import create_topic
from worker.commands.validate import validate_online
from worker.config_file import load_settings
from worker.errors import ConfigError
from worker.kafka.localbroker import free_port
from worker.marketo.client import MarketoClient
from worker.marketo.transport import Transport
from worker.sandbox.process import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SandboxProcess
from worker.settings import Settings
from worker.startup.checks import startup_checks

pytestmark = pytest.mark.integration
ENV = {"MARKETO_CLIENT_ID": DEFAULT_CLIENT_ID, "MARKETO_CLIENT_SECRET": DEFAULT_CLIENT_SECRET}
NAMED = {"id": "fr", "name": "France", "rule": 'country == "FR"', "list": {"name": "France"}}
KafkaInput = tuple[str, str]  # bootstrap servers, input topic


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxProcess]:
    """One sandbox for the module: the checks only read (folder "Audiences" exists)."""
    with SandboxProcess("--no-limits") as process:
        yield process


@pytest.fixture(scope="module")
def kafka_input(kafka_bootstrap: str) -> KafkaInput:
    """The broker and an input topic of one partition (validate creates no output topic)."""
    return kafka_bootstrap, new_input_topic(kafka_bootstrap, partitions=1)


@dataclass
class Online:
    """One test's Marketo (the sandbox) and Kafka (the broker, an input topic) to check against."""

    tmp_path: Path
    sandbox: SandboxProcess
    kafka_input: KafkaInput
    capsys: pytest.CaptureFixture[str]

    def settings(
        self,
        *,
        audiences: list[dict[str, Any]] | None = None,
        mapping: list[dict[str, str]] | None = None,
        marketo: dict[str, object] | None = None,
        kafka: dict[str, object] | None = None,
        env: dict[str, str] | None = None,
    ) -> Settings:
        """A valid scenario config with the given changes, loaded as `validate --online` would."""
        bootstrap, topic = self.kafka_input
        path = write_config(
            self.tmp_path / "c.yaml", bootstrap, self.sandbox.url, topic, audiences or [NAMED]
        )
        config = yaml.safe_load(path.read_text())
        config["mapping"] += mapping or []
        config["marketo"].update(marketo or {})
        config["kafka"].update(kafka or {})
        path.write_text(yaml.safe_dump(config))
        return load_settings(path, env or ENV)

    def validate(self, **changes: Any) -> tuple[int, str, str]:
        """Run `validate --online`'s main on `settings(**changes)`: exit code, stdout, stderr."""
        code = validate_online(self.settings(**changes))
        out, err = self.capsys.readouterr()
        return code, out, err

    def refusal(self, **changes: Any) -> str:
        """What validation prints when it refuses `settings(**changes)` with exit 2."""
        code, _, err = self.validate(**changes)
        assert code == 2, err
        return err


@pytest.fixture
def online(
    tmp_path: Path,
    sandbox: SandboxProcess,
    kafka_input: KafkaInput,
    capsys: pytest.CaptureFixture[str],
) -> Online:
    """The checks' surroundings for one test."""
    return Online(tmp_path, sandbox, kafka_input, capsys)


def client_for(sandbox: SandboxProcess) -> MarketoClient:
    secret = SecretStr(DEFAULT_CLIENT_SECRET)
    return MarketoClient(
        Transport(sandbox.url, SecretStr(DEFAULT_CLIENT_ID), secret, RecordingLimiter())
    )


def create_list(sandbox: SandboxProcess, name: str) -> int:
    """Create a static list in the sandbox's "Audiences" folder; return its id."""

    async def create() -> int:
        async with client_for(sandbox) as client:
            folder = await client.find_folder("Audiences")
            assert folder is not None
            return int((await client.create_list(name, folder.id, "test")).id)

    return asyncio.run(create())


def test_a_valid_config_passes_and_creates_nothing(online: Online) -> None:
    """Mapped fields, a list by id that exists and one by name to create: OK, exit 0."""
    list_id = create_list(online.sandbox, "Existing for validate")
    by_id = {"id": "by-id", "name": "By id", "origin": "upload", "list": {"id": list_id}}
    lists_before = online.sandbox.state()["lists"]
    code, out, err = online.validate(
        audiences=[NAMED, by_id],
        mapping=[
            {"from": "identities.ecid", "to": "cookies"},
            {"from": "score", "to": "leadScore"},
            {"from": "birthday", "to": "dateOfBirth"},
        ],
    )
    assert code == 0, err
    assert out.splitlines()[-1] == "online checks OK: 5 mappings, 2 lists"
    assert online.sandbox.state()["lists"] == lists_before


def test_an_unknown_field_is_an_error_naming_it(online: Online) -> None:
    """A misspelt Marketo field fails validation under its mapping key, with a suggestion."""
    err = online.refusal(mapping=[{"from": "city", "to": "cty"}])
    assert "mapping[2].to: no Marketo field named 'cty' (did you mean city" in err


def test_a_read_only_field_is_an_error(online: Online) -> None:
    """`ecids` is read-only in describe: mapping to it fails validation."""
    err = online.refusal(mapping=[{"from": "identities.ecid", "to": "ecids"}])
    assert "mapping[2].to: ecids is read-only in Marketo" in err


def test_a_missing_list_id_is_an_error(online: Online) -> None:
    """A `list: {id}` Marketo does not know fails validation, naming the audience's key."""
    missing = {"id": "gone", "name": "Gone", "origin": "upload", "list": {"id": 999999}}
    err = online.refusal(audiences=[NAMED, missing])
    assert "audiences[1].list.id: static list 999999 not found" in err


def test_a_missing_folder_is_an_error_when_a_list_must_be_created(online: Online) -> None:
    """A `list: {name}` that does not exist needs marketo.list_folder to exist."""
    err = online.refusal(marketo={"list_folder": "No such folder"})
    assert "marketo.list_folder: folder 'No such folder' not found" in err
    assert "audiences[0].list.name" in err


def test_a_lookup_field_marketo_cannot_search_is_an_error(online: Online) -> None:
    """Marketo refuses a non-searchable lookup field (1011); validation says so."""
    err = online.refusal(marketo={"lookup_field": "city"})
    assert "marketo.lookup_field: Marketo does not accept city as a lookup field" in err


def test_refused_credentials_are_an_error(online: Online) -> None:
    """A wrong secret is reported against the credentials, not as a crash."""
    err = online.refusal(env={**ENV, "MARKETO_CLIENT_SECRET": "wrong"})
    assert "marketo.client_id: Marketo refused the credentials" in err


def test_an_unreachable_broker_is_an_error_naming_bootstrap_servers(online: Online) -> None:
    """Nothing listens on kafka.bootstrap_servers: validation fails naming the key, exit 2."""
    err = online.refusal(kafka={"bootstrap_servers": f"127.0.0.1:{free_port()}"})
    assert "kafka.bootstrap_servers: cannot reach Kafka" in err


def test_a_missing_input_topic_is_an_error(online: Online) -> None:
    """An input topic the broker does not have fails validation under kafka.topic."""
    err = online.refusal(kafka={"topic": "no-such-topic"})
    assert "kafka.topic: input topic 'no-such-topic' does not exist" in err


def test_a_state_topic_with_other_partitions_is_an_error(online: Online) -> None:
    """An existing state topic must have the input's partition count, as `run` requires."""
    bootstrap, _ = online.kafka_input
    state = create_topic(bootstrap, 2, prefix="state", config={"cleanup.policy": "compact"})
    err = online.refusal(kafka={"state_topic": state})
    assert f"kafka.state_topic: {state!r} has 2 partitions but the input has 1" in err


def test_the_output_topics_to_create_are_reported_not_created(online: Online) -> None:
    """Validation names the output topics `run` would create, and creates none of them."""
    bootstrap, topic = online.kafka_input
    outputs = [f"{topic}.dlq", f"{topic}.rejections", f"{topic}.state"]
    code, out, err = online.validate()
    assert code == 0, err
    assert f"output topics start-up would create: {', '.join(outputs)}" in out
    existing = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics
    assert not set(outputs) & set(existing)


async def test_run_start_up_refuses_a_read_only_mapping(online: Online) -> None:
    """`run`'s start-up check is a ConfigError naming the field."""
    settings = online.settings(mapping=[{"from": "made", "to": "createdAt"}])
    async with client_for(online.sandbox) as client:
        with pytest.raises(ConfigError, match=r"mapping\[2\]\.to: createdAt is read-only"):
            await startup_checks(settings, client)


async def test_run_start_up_returns_a_converter_for_a_valid_mapping(online: Online) -> None:
    """The converter `run` gets uses describe's types: an integer field takes numeric text."""
    settings = online.settings(mapping=[{"from": "score", "to": "leadScore"}])
    async with client_for(online.sandbox) as client:
        converter = await startup_checks(settings, client)
    fields, refusals = converter.convert({"firstName": "A", "score": "42"}, {})
    assert (fields, refusals) == ({"firstName": "A", "leadScore": 42}, [])
