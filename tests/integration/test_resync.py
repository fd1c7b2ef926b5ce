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
from tests.sandbox_views import READ_ENDPOINTS, read_calls
from worker.sandbox.process import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SandboxProcess

pytestmark = pytest.mark.integration
AUDIENCES = [{"id": "fr", "name": "France", "rule": 'country == "FR"', "list": {"name": "France"}}]
WANTED = {f"fr{i}@example.com" for i in range(5)}
MEMBERSHIP_ENDPOINTS = ("syncLeads", "addToList", "removeFromList")
LARGE = 3_000  # members of the large list: ten REST pages
BULK_ABOVE = "2000"  # the large list is above it, the small one far below


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


def spent(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """The list-reading calls between two counts, without the endpoints not called."""
    return {
        name: after[name] - before[name] for name in READ_ENDPOINTS if after[name] > before[name]
    }


def fill_list(
    bootstrap: str,
    sandbox: SandboxProcess,
    tmp: Path,
    people: list[tuple[str, str]],
    wanted: set[str],
) -> Path:
    """Run the worker on one profile per (email, country) until the list holds `wanted`, then
    stop it; return its config."""
    topic = new_input_topic(bootstrap, partitions=2)
    events = [
        event(
            f"p-{i}",
            1_000 + i,
            identities={"email": email},
            attributes={"country": country, "firstName": "A", "lastName": "B"},
        )
        for i, (email, country) in enumerate(people)
    ]
    config = write_config(tmp / "c.yaml", bootstrap, sandbox.url, topic, AUDIENCES)
    worker = WorkerProcess(config, tmp / "w.log")
    try:
        produce(bootstrap, topic, events)
        wait_for_lists(sandbox, {"France": wanted}, timeout_s=180)
    finally:
        assert worker.stop() == 0, worker.log.read_text()[-3000:]
    return config


@pytest.fixture(scope="module")
def converged(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[SandboxProcess, Path]]:
    """The worker ran on a few profiles until the list was exact, then stopped."""
    people = [(email, "FR") for email in sorted(WANTED)] + [("de@example.com", "DE")]
    with SandboxProcess("--no-limits") as sandbox:
        tmp = tmp_path_factory.mktemp("resync")
        yield sandbox, fill_list(kafka_bootstrap, sandbox, tmp, people, WANTED)


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


@dataclass(frozen=True)
class LargeReads:
    """A list of 3,000 members that drifted, read by `resync --dry-run` by REST pages and by a
    bulk extract: each run's output and the list-reading calls it spent."""

    sandbox: SandboxProcess
    config: Path
    wanted: set[str]
    list_id: int
    rest: subprocess.CompletedProcess[str]
    bulk: subprocess.CompletedProcess[str]
    rest_calls: dict[str, int]
    bulk_calls: dict[str, int]


@pytest.fixture(scope="module")
def large_reads(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LargeReads]:
    """The worker filled the list (a sandbox whose extracts refresh every second and take no
    time), strangers were added and members removed through REST, then two dry runs read it."""
    wanted = {f"big{i}@example.com" for i in range(LARGE)}
    fast_extracts = ("--bulk-status-interval-s", "1", "--bulk-export-rows-per-s", "0")
    with SandboxProcess("--no-limits", *fast_extracts) as sandbox:
        tmp = tmp_path_factory.mktemp("resync-large")
        people = [(email, "FR") for email in sorted(wanted)]
        config = fill_list(kafka_bootstrap, sandbox, tmp, people, wanted)
        state: dict[str, Any] = sandbox.state()
        (list_id,) = [item["id"] for item in state["lists"] if item["name"] == "France"]
        by_email = {lead["email"]: lead["id"] for lead in state["leads"]}
        strangers = rest(
            sandbox,
            "POST",
            "/rest/v1/leads.json",
            {
                "action": "createOrUpdate",
                "lookupField": "email",
                "input": [{"email": f"stranger{i}@example.com"} for i in range(3)],
            },
        )
        members = f"/rest/v1/lists/{list_id}/leads.json"
        rest(sandbox, "POST", members, {"input": [{"id": r["id"]} for r in strangers["result"]]})
        dropped = [{"id": by_email[f"big{i}@example.com"]} for i in (7, 1234)]
        rest(sandbox, "DELETE", members, {"input": dropped})
        before = read_calls(sandbox)
        by_rest = run_command("worker.commands.resync", str(config), "--dry-run")
        middle = read_calls(sandbox)
        by_bulk = run_command(
            "worker.commands.resync",
            str(config),
            "--dry-run",
            "--bulk-above",
            BULK_ABOVE,
            "--bulk-poll-s",
            "1",
        )
        after = read_calls(sandbox)
        yield LargeReads(
            sandbox,
            config,
            wanted,
            int(list_id),
            by_rest,
            by_bulk,
            spent(before, middle),
            spent(middle, after),
        )


def test_a_large_list_read_by_extract_shows_the_drift_rest_pages_show(
    large_reads: LargeReads,
) -> None:
    """Above --bulk-above, the dry run prints exactly what the REST read printed: 3,001 in
    Marketo, 3,000 desired, 2 to add, 3 to remove, the same leads named."""
    for result in (large_reads.rest, large_reads.bulk):
        assert result.returncode == 0, result.stderr[-3000:]
    assert row(large_reads.bulk.stdout, "fr")[2:] == ["3001", "3000", "2", "3"]
    assert large_reads.bulk.stdout == large_reads.rest.stdout


def test_a_large_list_is_read_by_one_extract_of_id_and_email(large_reads: LargeReads) -> None:
    """The sandbox shows one completed job over the list, with the fields id and email."""
    state: dict[str, Any] = large_reads.sandbox.state()
    exports = state["exports"]
    assert [(e["staticListId"], e["fields"], e["status"]) for e in exports] == [
        (large_reads.list_id, ["id", "email"], "Completed")
    ]


def test_the_extract_reads_the_list_in_a_handful_of_calls_instead_of_pages(
    large_reads: LargeReads,
) -> None:
    """REST: 11 pages for 3,001 members; the extract: create, enqueue, a status read or two,
    one file, and no page."""
    assert large_reads.rest_calls == {"getListMembers": 11}
    bulk = large_reads.bulk_calls
    assert set(bulk) == {
        "createExportLeads",
        "enqueueExportLeads",
        "getExportLeadsStatus",
        "getExportLeadsFile",
    }
    assert (bulk["createExportLeads"], bulk["enqueueExportLeads"], bulk["getExportLeadsFile"]) == (
        1,
        1,
        1,
    )
    assert sum(bulk.values()) <= 6


def test_resync_through_an_extract_makes_the_large_list_exact(large_reads: LargeReads) -> None:
    """The repair after an extract read adds the 2 and removes the 3 strangers."""
    result = run_command(
        "worker.commands.resync",
        str(large_reads.config),
        "--bulk-above",
        BULK_ABOVE,
        "--bulk-poll-s",
        "1",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert row(result.stdout, "fr")[1:] == ["3001", "3000", "2", "3", "2", "3", "0"]
    assert list_members(large_reads.sandbox)["France"] == large_reads.wanted
