"""Guarantee checked (`run --dry-run`): a dry run evaluates and buffers as the worker
does but sends nothing to Marketo, logs the calls per minute it would make, and leaves the real
worker's consumer group and state topic untouched."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient
from structlog.testing import capture_logs

from tests.integration.harness import (
    WorkerProcess,
    committed,
    event,
    group_of,
    new_input_topic,
    produce,
    write_config,
)
from tests.kafka_support import wait_for
from worker.core.ids import LeadId, ListId
from worker.dryrun import DryRunWriter
from worker.sandbox.process import SandboxProcess

PARTITIONS = 2
AUDIENCES = [
    {"id": "fr", "name": "France", "rule": 'country == "FR"', "list": {"name": "France"}},
    {"id": "webinar", "name": "Webinar", "origin": "upload", "list": {"id": 1064}},
]
CODE = (
    "import sys; from worker.commands.run import main; "
    "raise SystemExit(main([*sys.argv[1:], '--dry-run']))"
)


class DryRunProcess(WorkerProcess):
    """The dry run as a child process, without any Marketo credential in its environment."""

    def __init__(self, config: Path, log: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETO_")}
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", CODE, str(config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )


@dataclass(frozen=True)
class DryRun:
    """What a finished dry run left behind."""

    sandbox_stats: dict[str, Any]
    logs: list[dict[str, Any]]
    bootstrap: str
    topic: str
    config: Path


@pytest.fixture(scope="module")
def dry_run(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> DryRun:
    """A dry run consumed 40 profile events to the end, then stopped on SIGTERM."""
    tmp = tmp_path_factory.mktemp("dry-run")
    topic = new_input_topic(kafka_bootstrap, partitions=PARTITIONS)
    events = [
        event(
            f"p-{i}",
            1_000 + i,
            identities={"email": f"d{i}@example.com"},
            attributes={"country": "FR" if i % 4 else "DE", "firstName": "A", "lastName": "B"},
            audiences={"webinar": "realized"} if i % 5 == 0 else {},
        )
        for i in range(40)
    ]
    with SandboxProcess("--no-limits") as sandbox:
        config = write_config(tmp / "c.yaml", kafka_bootstrap, sandbox.url, topic, AUDIENCES)
        dry = DryRunProcess(config, tmp / "dry.log")
        dry_group = group_of(config) + ".dry-run"
        try:
            produce(kafka_bootstrap, topic, events)
            wait_for(
                lambda: (
                    sum(committed(kafka_bootstrap, dry_group, topic, PARTITIONS).values())
                    == len(events)
                ),
                90,
                "the dry run to commit every event",
            )
        finally:
            assert dry.stop() == 0, dry.log.read_text()[-3000:]
        return DryRun(sandbox.stats(), dry.logs(), kafka_bootstrap, topic, config)


@pytest.mark.integration
def test_dry_run_makes_no_call_to_marketo(dry_run: DryRun) -> None:
    """The sandbox answered no call at all, not even for a token."""
    assert dry_run.sandbox_stats["total_calls"] == 0
    assert dry_run.sandbox_stats["calls"] == {}


@pytest.mark.integration
def test_dry_run_logs_the_calls_it_would_make_per_endpoint(dry_run: DryRun) -> None:
    """`dryrun.calls_per_minute` reports lead syncs and list adds, the calls 40 entries need."""
    reports = [e for e in dry_run.logs if e.get("event") == "dryrun.calls_per_minute"]
    assert reports, "no dryrun.calls_per_minute event"
    assert sum(r["sync_leads"] for r in reports) > 0
    assert sum(r["add_to_list"] for r in reports) > 0
    # 32 distinct persons enter a list (30 in France, 8 in Webinar, 6 in both): one sync each
    assert sum(r["records"] for r in reports) == 32 + 30 + 8
    assert reports[-1]["budget_per_minute"] > 0


@pytest.mark.integration
def test_dry_run_commits_no_offset_of_the_real_group(dry_run: DryRun) -> None:
    """The worker's own group has no committed offset: a real worker would read every event."""
    offsets = committed(dry_run.bootstrap, group_of(dry_run.config), dry_run.topic, PARTITIONS)
    assert set(offsets.values()) == {-1001}


@pytest.mark.integration
def test_dry_run_writes_its_own_state_topic_not_the_real_one(dry_run: DryRun) -> None:
    """Only `<state_topic>.dry-run` exists: the real state topic was never created or written."""
    topics = AdminClient({"bootstrap.servers": dry_run.bootstrap}).list_topics(timeout=15).topics
    assert f"{dry_run.topic}.state.dry-run" in topics
    assert f"{dry_run.topic}.state" not in topics
    assert f"{dry_run.topic}.dlq" not in topics


async def test_writer_gives_each_email_one_stable_lead_id() -> None:
    """The same email always gets the same lead id: created the first time, updated after."""
    writer = DryRunWriter(budget_per_minute=150)
    first = await writer.sync_leads(
        [{"email": "a@x.io"}, {"email": "b@x.io"}], action="createOrUpdate", lookup_field="email"
    )
    again = await writer.sync_leads(
        [{"email": "b@x.io"}], action="createOrUpdate", lookup_field="email"
    )
    assert [(r.status, r.lead_id) for r in first] == [("created", 1), ("created", 2)]
    assert [(r.status, r.lead_id) for r in again] == [("updated", 2)]


async def test_writer_answers_success_for_every_list_record_and_counts_calls() -> None:
    """Adds and removes succeed for every lead; each call is counted under its endpoint."""
    writer = DryRunWriter(budget_per_minute=150)
    added = await writer.add_to_list(ListId(-1), [LeadId(1), LeadId(2)])
    removed = await writer.remove_from_list(ListId(-1), [LeadId(3)])
    assert [r.status for r in added] == ["added", "added"]
    assert [r.status for r in removed] == ["removed"]
    assert dict(writer.calls) == {"add_to_list": 1, "remove_from_list": 1}
    assert sum(writer.records.values()) == 3


async def test_writer_reports_calls_per_minute_per_endpoint_then_starts_afresh() -> None:
    """A report over 30 s with 3 calls logs 6 calls per minute by endpoint, then counts anew."""
    now = [0.0]
    writer = DryRunWriter(budget_per_minute=150, clock=lambda: now[0])
    await writer.add_to_list(ListId(-1), [LeadId(1)])
    await writer.add_to_list(ListId(-1), [LeadId(2)])
    await writer.remove_from_list(ListId(-1), [LeadId(1)])
    now[0] = 30.0
    with capture_logs() as logs:
        writer.report()
        writer.report()
    first, second = logs
    assert first["event"] == "dryrun.calls_per_minute"
    assert (first["calls_per_minute"], first["add_to_list"], first["remove_from_list"]) == (
        6.0,
        2,
        1,
    )
    assert (second["calls_per_minute"], second["add_to_list"]) == (0.0, 0)
