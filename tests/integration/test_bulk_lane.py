"""The bulk lane end to end (real broker, sandbox over HTTP): an activation of a few thousand
persons unknown to Marketo goes to the list as a bulk import with its list id, in far fewer
calls than lead syncs and list adds would take, and the list equals the reference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import (
    Audience,
    WorkerProcess,
    event,
    group_of,
    metric,
    new_input_topic,
    produce,
    wait_for_lists,
    write_config,
)
from tests.kafka_support import wait_for
from tests.sandbox_views import sandbox_state, sandbox_stats
from worker.sandbox.process import SandboxProcess

pytestmark = pytest.mark.integration
PERSONS = 3000
THRESHOLD = 500
ODD_NAME = 'Smith, "Jr."\nthe second'  # a comma, a quote and a newline: RFC 4180 quoting
SENTINEL = "sentinel@example.com"

LAST: Audience = {"id": "last", "name": "Last", "rule": 'plan == "last"', "list": {"name": "Last"}}
PRO: Audience = {"id": "pro", "name": "Pro", "rule": 'plan == "pro"', "list": {"name": "Pro"}}
REST_KINDS = ("syncLeads", "addToList")
BULK_KINDS = ("importLeads", "importLeadStatus", "importLeadFailures", "importLeadWarnings")


def events() -> list[tuple[str, bytes]]:
    """PERSONS pro persons, the first with an odd first name, then one sentinel read last."""
    people = [
        event(
            f"p-{i}",
            1_000 + i,
            identities={"email": f"b{i}@example.com"},
            attributes={"plan": "pro", "firstName": ODD_NAME if i == 0 else "A", "lastName": "B"},
        )
        for i in range(PERSONS)
    ]
    sentinel = event(
        "sentinel",
        1_000 + PERSONS,
        identities={"email": SENTINEL},
        attributes={"plan": "last", "firstName": "S", "lastName": "T"},
    )
    return [*people, sentinel]


def config(tmp: Path, name: str, bootstrap: str, url: str, topic: str, **extra: Any) -> Path:
    """A config of the scenario's topic with the bulk lane at THRESHOLD adds."""
    flush = {"bulk_threshold": THRESHOLD}
    return write_config(tmp / f"{name}.yaml", bootstrap, url, topic, flush=flush, **extra)


def completed(worker: WorkerProcess) -> list[dict[str, Any]]:
    """The worker's log events of bulk jobs settled."""
    return [e for e in worker.logs() if e.get("event") == "bulk.job_completed"]


def calls(sandbox: SandboxProcess) -> dict[str, int]:
    """Calls answered so far, per endpoint."""
    return {name: sum(codes.values()) for name, codes in sandbox_stats(sandbox)["calls"].items()}


def test_an_activation_of_new_persons_goes_through_one_bulk_import(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Stored profiles unknown to Marketo, a restart adds an audience matching all of them: an
    import with the list's id fills the list (equal to the reference, an odd name intact) in
    a fraction of the REST lane's calls."""
    with SandboxProcess("--no-limits", "--bulk-rows-per-s", "2000") as sandbox:
        topic = new_input_topic(kafka_bootstrap, partitions=1)
        first = config(tmp_path, "first", kafka_bootstrap, sandbox.url, topic, audiences=[LAST])
        worker = WorkerProcess(first, tmp_path / "first.log")
        try:
            produce(kafka_bootstrap, topic, events())
            wait_for_lists(sandbox, {"Last": {SENTINEL}}, 120)  # every profile is stored
        finally:
            assert worker.stop() == 0
        before = calls(sandbox)
        second = config(
            tmp_path,
            "second",
            kafka_bootstrap,
            sandbox.url,
            topic,
            audiences=[LAST, PRO],
            kafka={"group_id": group_of(first)},
        )
        worker = WorkerProcess(second, tmp_path / "second.log")
        try:
            want = {f"b{i}@example.com" for i in range(PERSONS)}
            wait_for_lists(sandbox, {"Pro": want, "Last": {SENTINEL}}, 180)
            wait_for(lambda: bool(completed(worker)), 60, "the job's status polled Complete")
            (job,) = completed(worker)
            shown = {
                name: metric(worker, f"marketo_worker_{name}")
                for name in ("bulk_jobs_total", "bulk_jobs_in_flight", "bulk_rows_total")
            }
        finally:
            assert worker.stop() == 0
        state = sandbox_state(sandbox)
        imports: list[dict[str, Any]] = sandbox.state()["bulkImports"]  # type: ignore[assignment]
        after = calls(sandbox)
    spent = {name: after.get(name, 0) - before.get(name, 0) for name in after}
    pro = next(item["id"] for item in state["lists"] if item["name"] == "Pro")
    assert [(job["listId"], job["status"]) for job in imports] == [(pro, "Complete")]
    assert sum(spent.get(kind, 0) for kind in REST_KINDS) == 0
    bulk = sum(spent.get(kind, 0) for kind in BULK_KINDS)
    assert 2 <= bulk <= (2 * PERSONS // 300) // 2, spent  # REST: a lead sync and an add per 300
    assert (job["rows"], job["failed"], job["calls"]) == (PERSONS, 0, bulk)
    # the job queued and completed (importing too, if a poll saw it), its rows all imported
    assert shown["bulk_jobs_in_flight"] == 0
    assert shown["bulk_rows_total"] == PERSONS
    assert shown["bulk_jobs_total"] in {2, 3}
    (odd,) = [lead for lead in state["leads"] if lead.get("email") == "b0@example.com"]
    assert odd["firstName"] == ODD_NAME
