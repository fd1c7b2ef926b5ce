"""Guarantee checked (resync): a list that drifted from its audience behind the
worker's back is reported exactly by `resync --dry-run`, which sends nothing, and made exact
again by `resync`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.harness import (
    WorkerProcess,
    event,
    list_members,
    new_input_topic,
    produce,
    wait_for_lists,
    write_config,
)
from worker.sandbox.process import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SandboxProcess

pytestmark = pytest.mark.integration
AUDIENCES = [{"id": "fr", "name": "France", "rule": 'country == "FR"', "list": {"name": "France"}}]
WANTED = {f"fr{i}@example.com" for i in range(5)}
MEMBERSHIP_ENDPOINTS = ("syncLeads", "addToList", "removeFromList")


@dataclass(frozen=True)
class Drifted:
    """A sandbox whose list lost one wanted member and gained one stranger behind the worker."""

    sandbox: SandboxProcess
    config: Path
    list_id: int
    stranger: int
    dropped: int


def run_command(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `module.main(args)` in a child process, as the command line will."""
    env = {
        **os.environ,
        "MARKETO_CLIENT_ID": DEFAULT_CLIENT_ID,
        "MARKETO_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
    }
    code = f"import sys; from {module} import main; raise SystemExit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )


def rest(sandbox: SandboxProcess, method: str, path: str, body: object) -> dict[str, Any]:
    """Call the sandbox's Marketo REST API with a token, as another integration would."""
    request = urllib.request.Request(
        sandbox.url + path,
        data=json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {sandbox.token()}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        reply: dict[str, Any] = json.loads(response.read())
    assert reply.get("success") is True, reply
    return reply


def row(output: str, audience: str) -> list[str]:
    """The cells of an audience's row in a printed table."""
    (line,) = [line for line in output.splitlines() if line.split()[:1] == [audience]]
    return line.split()


def membership_calls(sandbox: SandboxProcess) -> dict[str, object]:
    calls = sandbox.stats()["calls"]
    assert isinstance(calls, dict)
    return {name: calls.get(name) for name in MEMBERSHIP_ENDPOINTS}


@pytest.fixture(scope="module")
def converged(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[SandboxProcess, Path]]:
    """The worker ran on a few profiles until the list was exact, then stopped."""
    tmp = tmp_path_factory.mktemp("resync")
    topic = new_input_topic(kafka_bootstrap, partitions=2)
    people = [(email, "FR") for email in sorted(WANTED)] + [("de@example.com", "DE")]
    events = [
        event(
            f"p-{i}",
            1_000 + i,
            identities={"email": email},
            attributes={"country": country, "firstName": "A", "lastName": "B"},
        )
        for i, (email, country) in enumerate(people)
    ]
    with SandboxProcess("--no-limits") as sandbox:
        config = write_config(tmp / "c.yaml", kafka_bootstrap, sandbox.url, topic, AUDIENCES)
        worker = WorkerProcess(config, tmp / "w.log")
        try:
            produce(kafka_bootstrap, topic, events)
            wait_for_lists(sandbox, {"France": WANTED}, timeout_s=120)
        finally:
            assert worker.stop() == 0, worker.log.read_text()[-3000:]
        yield sandbox, config


@pytest.fixture
def drifted(converged: tuple[SandboxProcess, Path]) -> Drifted:
    """Add a stranger to the list and remove a wanted member, through Marketo's REST API."""
    sandbox, config = converged
    state: dict[str, Any] = sandbox.state()
    (list_id,) = [item["id"] for item in state["lists"] if item["name"] == "France"]
    by_email = {lead["email"]: lead["id"] for lead in state["leads"]}
    synced = rest(
        sandbox,
        "POST",
        "/rest/v1/leads.json",
        {"action": "createOrUpdate", "lookupField": "email", "input": [{"email": "x@example.com"}]},
    )
    stranger = synced["result"][0]["id"]
    dropped = by_email["fr0@example.com"]
    members = f"/rest/v1/lists/{list_id}/leads.json"
    rest(sandbox, "POST", members, {"input": [{"id": stranger}]})
    rest(sandbox, "DELETE", members, {"input": [{"id": dropped}]})
    drift = (WANTED - {"fr0@example.com"}) | {"x@example.com"}
    assert list_members(sandbox)["France"] == drift
    return Drifted(sandbox, config, int(list_id), int(stranger), int(dropped))


def test_dry_run_reports_exactly_the_two_differences(drifted: Drifted) -> None:
    """`resync --dry-run` lists the missing member to add and the stranger to remove, 2 calls."""
    result = run_command("worker.commands.resync", str(drifted.config), "--dry-run")
    assert result.returncode == 0, result.stderr[-3000:]
    assert row(result.stdout, "fr")[2:] == ["5", "5", "1", "1"]  # in Marketo, desired, +, -
    assert f"fr: + leads {drifted.dropped}\n" in result.stdout
    assert f"fr: - leads {drifted.stranger}\n" in result.stdout
    assert "a repair would spend 2 calls: 0 lead syncs, 1 adds, 1 removes" in result.stdout


def test_dry_run_sends_no_membership_or_lead_call(drifted: Drifted) -> None:
    """`resync --dry-run` only reads: the sandbox counts no sync, add or remove call."""
    before = membership_calls(drifted.sandbox)
    result = run_command("worker.commands.resync", str(drifted.config), "--dry-run")
    assert result.returncode == 0, result.stderr[-3000:]
    assert membership_calls(drifted.sandbox) == before


def test_resync_makes_the_list_exact_again(drifted: Drifted) -> None:
    """`resync` adds the missing member back and removes the stranger, and says so."""
    result = run_command("worker.commands.resync", str(drifted.config))
    assert result.returncode == 0, result.stderr[-3000:]
    assert list_members(drifted.sandbox)["France"] == WANTED
    assert row(result.stdout, "fr")[1:] == ["5", "5", "1", "1", "1", "1", "0"]


def test_resync_of_an_exact_list_changes_nothing(drifted: Drifted) -> None:
    """A second `resync` finds nothing to do and sends no membership call."""
    assert run_command("worker.commands.resync", str(drifted.config)).returncode == 0
    before = membership_calls(drifted.sandbox)
    result = run_command("worker.commands.resync", str(drifted.config))
    assert result.returncode == 0, result.stderr[-3000:]
    assert row(result.stdout, "fr")[3:] == ["0", "0", "0", "0", "0"]
    assert membership_calls(drifted.sandbox) == before


def test_audience_option_errors_name_the_audience_key_in_the_file(
    converged: tuple[SandboxProcess, Path], tmp_path: Path
) -> None:
    """With `--audience x`, a missing list is reported as `audiences[1]`, x's key in the file."""
    _, config = converged
    settings = yaml.safe_load(config.read_text())
    missing = {"id": "x", "name": "X", "rule": 'country == "DE"', "list": {"id": 4242}}
    settings["audiences"] = [*AUDIENCES, missing]
    second = tmp_path / "two-audiences.yaml"
    second.write_text(yaml.safe_dump(settings))
    result = run_command("worker.commands.resync", str(second), "--audience", "x")
    assert result.returncode == 2, result.stderr[-3000:]
    # log lines share stderr; the error is the last line
    assert result.stderr.splitlines()[-1] == "audiences[1].list.id: static list 4242 not found"
