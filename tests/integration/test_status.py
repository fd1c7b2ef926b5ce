"""`status` reads the state topic back: each audience's members wanted and in Marketo, the
changes pending, and the calls and time left at the configured budget."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
from tests.kafka_support import wait_for
from worker.sandbox.process import SandboxProcess

pytestmark = pytest.mark.integration
FR = {"id": "fr", "name": "FR", "rule": 'country == "FR"', "list": {"name": "FR"}}
PRO = {"id": "pro", "name": "Pro", "rule": 'plan == "pro"', "list": {"name": "Pro"}}
# (country, plan) of each profile: 3 in FR, 2 in Pro, one of them in both
PEOPLE = [("FR", "free"), ("FR", "pro"), ("FR", "free"), ("DE", "pro"), ("DE", "free")]
BUDGET = {"calls_per_window": 40, "window_s": 10}


def events(count: int = len(PEOPLE)) -> list[tuple[str, bytes]]:
    return [
        event(
            f"p-{i}",
            1_000 + i,
            identities={"email": f"s{i}@example.com"},
            attributes={"country": country, "plan": plan, "firstName": "A", "lastName": "B"},
        )
        for i, (country, plan) in enumerate(PEOPLE[:count])
    ]


def status(config: Path, *options: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "worker", "status", str(config), *options]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def report(config: Path) -> dict[str, Any]:
    done = status(config, "--json")
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def pending_adds(config: Path, seen: list[dict[str, Any]]) -> int | None:
    """FR's pending adds (None while the state topic is not there yet); the report joins `seen`."""
    done = status(config, "--json")
    if done.returncode != 0:
        return None
    seen.append(json.loads(done.stdout))
    return int(by_audience(seen[-1])["fr"]["pending_adds"])


def by_audience(found: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["audience"]: item for item in found["audiences"]}


@pytest.fixture(scope="module")
def synced(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The worker ran on a few profiles until both lists were in Marketo, then stopped (its
    final commit writes every acknowledgement to the state topic)."""
    tmp = tmp_path_factory.mktemp("status")
    topic = new_input_topic(kafka_bootstrap, partitions=3)
    with SandboxProcess("--no-limits") as sandbox:
        config = write_config(
            tmp / "c.yaml", kafka_bootstrap, sandbox.url, topic, [FR, PRO], budget=BUDGET
        )
        worker = WorkerProcess(config, tmp / "w.log")
        try:
            produce(kafka_bootstrap, topic, events())
            expected = {
                "FR": {"s0@example.com", "s1@example.com", "s2@example.com"},
                "Pro": {"s1@example.com", "s3@example.com"},
            }
            wait_for_lists(sandbox, expected, 120)
        finally:
            assert worker.stop() == 0, worker.log.read_text()[-3000:]
        yield config


def test_status_of_synced_lists_shows_every_member_in_marketo(synced: Path) -> None:
    """Once the lists are in Marketo, each audience's wanted and in-Marketo counts are the
    profiles the test produced, nothing is pending and no call is left."""
    found = report(synced)
    columns = ("wanted", "in_marketo", "pending_adds", "pending_removes")
    counts = {
        audience: tuple(item[column] for column in columns)
        for audience, item in by_audience(found).items()
    }
    assert counts == {"fr": (3, 3, 0, 0), "pro": (2, 2, 0, 0)}
    assert (found["profiles"], found["unreadable"]) == (5, 0)
    assert (found["total"]["calls"]["total"], found["total"]["seconds_left"]) == (0, 0.0)


def test_status_prints_an_aligned_row_per_audience_and_the_total(synced: Path) -> None:
    """The text output has a header, one row per audience with its counts, calls, time and lane
    (`-`: nothing pending), and the total."""
    done = status(synced)
    rows = [line.split() for line in done.stdout.splitlines()[2:]]
    assert (done.returncode, rows) == (
        0,
        [
            ["fr", "3", "3", "0", "0", "0", "0s", "-"],
            ["pro", "2", "2", "0", "0", "0", "0s", "-"],
            ["total", "0", "0", "0", "0s"],
        ],
    )


def test_status_lists_an_audience_no_longer_configured(synced: Path) -> None:
    """Memberships of an audience the configuration dropped are listed as not configured, with
    their counts and no calls."""
    settings = yaml.safe_load(synced.read_text())
    settings["audiences"] = [FR]
    config = synced.with_name("fr-only.yaml")
    config.write_text(yaml.safe_dump(settings))
    found = by_audience(report(config))
    assert (found["fr"]["configured"], found["pro"]["configured"]) == (True, False)
    assert (found["pro"]["wanted"], found["pro"]["in_marketo"]) == (2, 2)
    assert (found["pro"]["calls"], found["pro"]["seconds_left"]) == (None, None)


def test_status_shows_pending_adds_and_the_calls_left(kafka_bootstrap: str, tmp_path: Path) -> None:
    """With a linger so long that nothing is sent, the states the worker writes (an unsettled
    state waits at most a bounded number of commits) show every member as a pending add of a
    person without a lead id: one lead sync and one list add, at 40 calls per 10 s."""
    topic = new_input_topic(kafka_bootstrap, partitions=2)
    with SandboxProcess("--no-limits") as sandbox:
        config = write_config(
            tmp_path / "c.yaml",
            kafka_bootstrap,
            sandbox.url,
            topic,
            [FR],
            budget=BUDGET,
            flush={"max_linger_s": 3600, "commit_interval_s": 0.1},
        )
        worker = WorkerProcess(config, tmp_path / "w.log")
        try:
            produce(kafka_bootstrap, topic, events(3))
            seen: list[dict[str, Any]] = []
            wait_for(lambda: pending_adds(config, seen) == 3, 90, "the unsettled states")
            found = seen[-1]
            calls = sandbox.stats()["calls"]
        finally:
            worker.kill()  # no flush: a graceful stop would send the buffered changes
    fr = by_audience(found)["fr"]
    assert (fr["wanted"], fr["in_marketo"], fr["pending_removes"]) == (3, 0, 0)
    assert fr["calls"] == {"lead_syncs": 1, "list_adds": 1, "list_removes": 0, "total": 2}
    assert (fr["seconds_left"], found["total"]["seconds_left"]) == (0.5, 0.5)
    assert isinstance(calls, dict)
    assert {"syncLeads", "addToList"}.isdisjoint(calls)  # the figures are of work not yet sent


def test_status_without_a_state_topic_exits_2(kafka_bootstrap: str, tmp_path: Path) -> None:
    """A state topic that does not exist (the worker never ran) is a configuration error."""
    topic = new_input_topic(kafka_bootstrap, partitions=1)
    config = write_config(tmp_path / "c.yaml", kafka_bootstrap, "http://127.0.0.1:9", topic, [FR])
    done = status(config, "--json")
    assert (done.returncode, "kafka.state_topic" in done.stderr) == (2, True)
