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

import pytest

from tests.integration.harness import WorkerProcess, metric, new_input_topic, write_config
from tests.kafka_support import wait_for
from worker.sandbox.process import SandboxProcess

pytestmark = pytest.mark.integration
AUDIENCES = [{"id": "fr", "name": "FR", "rule": 'country == "FR"', "list": {"name": "FR"}}]
OTHER = ("etl-client", "etl-secret", "etl@other.example")  # another integration's service
BUDGET = {"daily_quota": 10_000, "daily_reserve": 1_000, "usage_interval_s": 1}


def spend_as_other(sandbox: SandboxProcess, calls: int) -> None:
    """Make `calls` counted calls with the other integration's credentials."""
    query = urllib.parse.urlencode(
        {"grant_type": "client_credentials", "client_id": OTHER[0], "client_secret": OTHER[1]}
    )
    with urllib.request.urlopen(f"{sandbox.url}/identity/oauth/token?{query}", timeout=10) as r:
        token = json.loads(r.read())["access_token"]
    for _ in range(calls):
        request = urllib.request.Request(f"{sandbox.url}/rest/v1/leads/describe.json")
        request.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.loads(response.read())["success"]


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
