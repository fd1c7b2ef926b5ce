"""Guarantee checked: `validate --online` and `run`'s start-up find, against Marketo (the sandbox
over real HTTP), every mapping, lookup-field, folder and list problem, each naming its key, and
pass a valid configuration without creating anything."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from tests.integration.harness import write_config
from worker.checks import main_validate_online, startup_checks
from worker.config_file import load_settings
from worker.errors import ConfigError
from worker.marketo.client import MarketoClient
from worker.marketo.transport import Transport
from worker.sandbox.process import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SandboxProcess
from worker.settings import Settings

pytestmark = pytest.mark.integration
ENV = {"MARKETO_CLIENT_ID": DEFAULT_CLIENT_ID, "MARKETO_CLIENT_SECRET": DEFAULT_CLIENT_SECRET}
NAMED = {"id": "fr", "name": "France", "rule": 'country == "FR"', "list": {"name": "France"}}
NO_KAFKA = "127.0.0.1:9"  # the online checks never touch Kafka


class Unlimited:
    """The client's limiter port, granting every call."""

    @asynccontextmanager
    async def call(self) -> AsyncIterator[None]:
        """Take a slot (always granted)."""
        yield

    def rate_limited(self, code: str) -> None:
        """Nothing to slow down."""

    def quota_exhausted(self) -> None:
        """Nothing to park."""


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxProcess]:
    """One sandbox for the module: the checks only read (folder "Audiences" exists)."""
    with SandboxProcess("--no-limits") as process:
        yield process


def settings_for(
    tmp_path: Path,
    sandbox: SandboxProcess,
    *,
    audiences: list[dict[str, Any]] | None = None,
    mapping: list[dict[str, str]] | None = None,
    marketo: dict[str, object] | None = None,
    env: dict[str, str] | None = None,
) -> Settings:
    """A valid scenario config with the given changes, loaded as `validate --online` would."""
    path = write_config(tmp_path / "c.yaml", NO_KAFKA, sandbox.url, "t", audiences or [NAMED])
    config = yaml.safe_load(path.read_text())
    config["mapping"] += mapping or []
    config["marketo"].update(marketo or {})
    path.write_text(yaml.safe_dump(config))
    return load_settings(path, env or ENV)


def client_for(sandbox: SandboxProcess) -> MarketoClient:
    secret = SecretStr(DEFAULT_CLIENT_SECRET)
    return MarketoClient(Transport(sandbox.url, SecretStr(DEFAULT_CLIENT_ID), secret, Unlimited()))


def validate(settings: Settings, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run `validate --online`'s main; return its exit code, stdout and stderr."""
    code = main_validate_online(settings)
    out, err = capsys.readouterr()
    return code, out, err


def create_list(sandbox: SandboxProcess, name: str) -> int:
    """Create a static list in the sandbox's "Audiences" folder; return its id."""

    async def create() -> int:
        async with client_for(sandbox) as client:
            folder = await client.find_folder("Audiences")
            assert folder is not None
            return int((await client.create_list(name, folder.id, "test")).id)

    return asyncio.run(create())


def test_a_valid_config_passes_and_creates_nothing(
    sandbox: SandboxProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Mapped fields, a list by id that exists and one by name to create: OK, exit 0."""
    list_id = create_list(sandbox, "Existing for validate")
    by_id = {"id": "by-id", "name": "By id", "origin": "upload", "list": {"id": list_id}}
    settings = settings_for(
        tmp_path,
        sandbox,
        audiences=[NAMED, by_id],
        mapping=[
            {"from": "identities.ecid", "to": "cookies"},
            {"from": "score", "to": "leadScore"},
            {"from": "birthday", "to": "dateOfBirth"},
        ],
    )
    lists_before = sandbox.state()["lists"]
    code, out, err = validate(settings, capsys)
    assert code == 0, err
    assert out.splitlines()[-1] == "online checks OK: 5 mappings, 2 lists"
    assert sandbox.state()["lists"] == lists_before


def test_an_unknown_field_is_an_error_naming_it(
    sandbox: SandboxProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A misspelt Marketo field fails validation under its mapping key, with a suggestion."""
    settings = settings_for(tmp_path, sandbox, mapping=[{"from": "city", "to": "cty"}])
    code, _, err = validate(settings, capsys)
    assert code == 2
    assert "mapping[2].to: no Marketo field named 'cty' (did you mean city" in err


def test_a_read_only_field_is_an_error(
    sandbox: SandboxProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`ecids` is read-only in describe: mapping to it fails validation."""
    settings = settings_for(tmp_path, sandbox, mapping=[{"from": "identities.ecid", "to": "ecids"}])
    code, _, err = validate(settings, capsys)
    assert code == 2
    assert "mapping[2].to: ecids is read-only in Marketo" in err


def test_a_missing_list_id_is_an_error(
    sandbox: SandboxProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A `list: {id}` Marketo does not know fails validation, naming the audience's key."""
    missing = {"id": "gone", "name": "Gone", "origin": "upload", "list": {"id": 999999}}
    settings = settings_for(tmp_path, sandbox, audiences=[NAMED, missing])
    code, _, err = validate(settings, capsys)
    assert code == 2
    assert "audiences[1].list.id: static list 999999 not found" in err


def test_a_missing_folder_is_an_error_when_a_list_must_be_created(
    sandbox: SandboxProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A `list: {name}` that does not exist needs marketo.list_folder to exist."""
    settings = settings_for(tmp_path, sandbox, marketo={"list_folder": "No such folder"})
    code, _, err = validate(settings, capsys)
    assert code == 2
    assert "marketo.list_folder: folder 'No such folder' not found" in err
    assert "audiences[0].list.name" in err


def test_a_lookup_field_marketo_cannot_search_is_an_error(
    sandbox: SandboxProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Marketo refuses a non-searchable lookup field (1011); validation says so."""
    settings = settings_for(tmp_path, sandbox, marketo={"lookup_field": "city"})
    code, _, err = validate(settings, capsys)
    assert code == 2
    assert "marketo.lookup_field: Marketo does not accept city as a lookup field" in err


def test_refused_credentials_are_an_error(
    sandbox: SandboxProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A wrong secret is reported against the credentials, not as a crash."""
    env = {**ENV, "MARKETO_CLIENT_SECRET": "wrong"}
    settings = settings_for(tmp_path, sandbox, env=env)
    code, _, err = validate(settings, capsys)
    assert code == 2
    assert "marketo.client_id: Marketo refused the credentials" in err


async def test_run_start_up_refuses_a_read_only_mapping(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    """`run`'s start-up check is a ConfigError naming the field."""
    settings = settings_for(tmp_path, sandbox, mapping=[{"from": "made", "to": "createdAt"}])
    async with client_for(sandbox) as client:
        with pytest.raises(ConfigError, match=r"mapping\[2\]\.to: createdAt is read-only"):
            await startup_checks(settings, client)


async def test_run_start_up_returns_a_converter_for_a_valid_mapping(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    """The converter `run` gets uses describe's types: an integer field takes numeric text."""
    settings = settings_for(tmp_path, sandbox, mapping=[{"from": "score", "to": "leadScore"}])
    async with client_for(sandbox) as client:
        converter = await startup_checks(settings, client)
    fields, refusals = converter.convert({"firstName": "A", "score": "42"}, {})
    assert (fields, refusals) == ({"firstName": "A", "leadScore": 42}, [])
