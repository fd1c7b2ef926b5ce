"""The daily quota is the instance's: other API users' calls today shrink this worker's share.

Scenario: the sandbox has a second custom service (another integration, its own API user). Its
calls made before the worker starts are read at start-up, those made while it runs at the next
periodic reading; each time the worker's gauges and its `quota.usage_read` event show the others'
calls and the share left (quota - reserve - others'), and the worker's own calls never count as
the others'.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import WorkerProcess, metric, new_input_topic, write_config
from tests.kafka_support import wait_for
from worker.sandbox.process import SandboxProcess

pytestmark = pytest.mark.integration
AUDIENCES = [{"id": "fr", "name": "FR", "rule": 'country == "FR"', "list": {"name": "FR"}}]
OTHER = ("etl-client", "etl-secret", "etl@other.example")  # another integration's service
BUDGET = {"daily_quota": 10_000, "daily_reserve": 1_000, "usage_interval_s": 1}


def other_token(sandbox: SandboxProcess) -> str:
    """A token of the other integration's service."""
    query = urllib.parse.urlencode(
        {"grant_type": "client_credentials", "client_id": OTHER[0], "client_secret": OTHER[1]}
    )
    with urllib.request.urlopen(f"{sandbox.url}/identity/oauth/token?{query}", timeout=10) as r:
        return str(json.loads(r.read())["access_token"])


def call_as_other(sandbox: SandboxProcess, path: str, body: object = None) -> Any:
    """One call with the other integration's token (a POST when there is a JSON body)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(sandbox.url + path, data=data)
    request.add_header("Authorization", f"Bearer {other_token(sandbox)}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = json.loads(response.read())
    assert answer["success"], answer
    return answer


def spend_as_other(sandbox: SandboxProcess, calls: int) -> None:
    """Make `calls` counted calls with the other integration's credentials."""
    for _ in range(calls):
        call_as_other(sandbox, "/rest/v1/leads/describe.json")


def usage_reads(worker: WorkerProcess) -> list[dict[str, object]]:
    return [e for e in worker.logs() if e.get("event") == "quota.usage_read"]


def test_other_api_users_calls_shrink_the_workers_daily_share(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """120 calls of another API user before start-up, 200 more while the worker runs: the
    gauges and the log show 120 then 320 others' calls and a share of 8,880 then 8,680."""
    topic = new_input_topic(kafka_bootstrap, partitions=1)
    with SandboxProcess("--no-limits", "--api-user", ":".join(OTHER)) as sandbox:
        spend_as_other(sandbox, 120)
        path = write_config(
            tmp_path / "c.yaml", kafka_bootstrap, sandbox.url, topic, AUDIENCES, budget=BUDGET
        )
        worker = WorkerProcess(path, tmp_path / "w.log")
        try:
            wait_for(lambda: bool(usage_reads(worker)), 60, "the start-up usage reading")
            first = usage_reads(worker)[0]
            assert (first["others_today"], first["group_allowed"]) == (120, 8_880)
            wait_for(
                lambda: metric(worker, "marketo_worker_quota_others_today") == 120,
                30,
                "the others' gauge at 120",
            )
            spend_as_other(sandbox, 200)
            wait_for(
                lambda: metric(worker, "marketo_worker_quota_others_today") == 320,
                30,
                "a periodic reading seeing the 200 calls more",
            )
            wait_for(
                lambda: metric(worker, "marketo_worker_daily_quota_allowed") == 8_680,
                30,
                "the share shrunk to 10,000 - 1,000 - 320",
            )
            assert any(e["others_today"] == 320 for e in usage_reads(worker))
        finally:
            assert worker.stop() == 0


def test_an_extract_finished_today_shows_in_the_export_bytes_gauge(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Another integration's bulk extract, completed today, counts its file's bytes in
    `bulk_export_bytes_today` at the worker's next usage reading."""
    topic = new_input_topic(kafka_bootstrap, partitions=1)
    instant = ("--bulk-export-rows-per-s", "0", "--bulk-status-interval-s", "0")
    with SandboxProcess("--no-limits", "--api-user", ":".join(OTHER), *instant) as sandbox:
        path = write_config(
            tmp_path / "c.yaml", kafka_bootstrap, sandbox.url, topic, AUDIENCES, budget=BUDGET
        )
        worker = WorkerProcess(path, tmp_path / "w.log")
        try:
            wait_for(lambda: bool(usage_reads(worker)), 60, "the start-up usage reading")
            export = "/bulk/v1/leads/export"
            body = {"fields": ["id", "email"], "format": "CSV", "filter": {"staticListName": "FR"}}
            created = call_as_other(sandbox, f"{export}/create.json", body)
            export_id = created["result"][0]["exportId"]
            call_as_other(sandbox, f"{export}/{export_id}/enqueue.json", {})
            status = call_as_other(sandbox, f"{export}/{export_id}/status.json")["result"][0]
            assert status["status"] == "Completed"
            wait_for(
                lambda: (
                    metric(worker, "marketo_worker_bulk_export_bytes_today") == status["fileSize"]
                ),
                30,
                "the extract's bytes in the gauge",
            )
        finally:
            assert worker.stop() == 0
