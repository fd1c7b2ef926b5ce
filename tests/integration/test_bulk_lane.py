"""Guarantees checked for the bulk lane end to end (real broker, sandbox over HTTP): an
activation of persons unknown to Marketo goes to the list as bulk imports with its list id, in
far fewer calls than lead syncs and list adds; a row Marketo fails is a rejection with its
reason; a worker killed while its import runs converges after a restart with nothing lost; a
queue full of other integrations' imports (1016) is waited out; CSV quoting keeps odd names.

Each scenario stores profiles with a first worker whose audiences they do not match, then
restarts with audience `pro` added: the activation's adds are a backlog, the bulk lane's work.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.integration.harness import (
    Audience,
    WorkerProcess,
    event,
    group_of,
    new_input_topic,
    produce,
    read_topic,
    wait_for_lists,
    write_config,
)
from tests.kafka_support import wait_for
from tests.sandbox_views import sandbox_state, sandbox_stats
from worker.core.bulk_csv import import_files
from worker.sandbox.process import SandboxProcess

pytestmark = pytest.mark.integration
ACTIVATED = 20_000  # the activation scenario: twice the default flush.bulk_threshold
THRESHOLD = 500  # the other scenarios' flush.bulk_threshold
PERSONS = 600
ODD_NAME = 'Smith, "Jr."\nthe second'  # a comma, a quote and a newline: RFC 4180 quoting
BAD_EMAIL = "bäd@example.com"  # Marketo wants ASCII emails: its import fails this row
SENTINEL = "sentinel@example.com"

LAST: Audience = {"id": "last", "name": "Last", "rule": 'plan == "last"', "list": {"name": "Last"}}
PRO: Audience = {"id": "pro", "name": "Pro", "rule": 'plan == "pro"', "list": {"name": "Pro"}}
REST_KINDS = ("syncLeads", "addToList")
BULK_KINDS = ("importLeads", "importLeadStatus", "importLeadFailures", "importLeadWarnings")


def email(i: int) -> str:
    """Person `i`'s email."""
    return f"b{i}@example.com"


def events(persons: int, first_name: str = "A", bad: bool = False) -> list[tuple[str, bytes]]:
    """`persons` pro persons (the first named `first_name`; with `bad`, the second with an
    email Marketo refuses), then one sentinel read last."""
    people = [
        event(
            f"p-{i}",
            1_000 + i,
            identities={"email": BAD_EMAIL if bad and i == 1 else email(i)},
            attributes={"plan": "pro", "firstName": first_name if i == 0 else "A", "lastName": "B"},
        )
        for i in range(persons)
    ]
    sentinel = event(
        "sentinel",
        1_000 + persons,
        identities={"email": SENTINEL},
        attributes={"plan": "last", "firstName": "S", "lastName": "T"},
    )
    return [*people, sentinel]


@dataclass(frozen=True)
class Stored:
    """Profiles stored by a first worker that has stopped: the topic and its config."""

    topic: str
    first: Path


def store(
    bootstrap: str, sandbox: SandboxProcess, tmp: Path, records: list[tuple[str, bytes]]
) -> Stored:
    """Run a first worker (audience `last` only) until every profile is stored; stop it."""
    topic = new_input_topic(bootstrap, partitions=1)
    first = write_config(tmp / "first.yaml", bootstrap, sandbox.url, topic, [LAST])
    worker = WorkerProcess(first, tmp / "first.log")
    try:
        produce(bootstrap, topic, records)
        wait_for_lists(sandbox, {"Last": {SENTINEL}}, 120)  # read last: every profile is stored
    finally:
        assert worker.stop() == 0
    return Stored(topic, first)


def activation(
    bootstrap: str,
    sandbox: SandboxProcess,
    tmp: Path,
    stored: Stored,
    threshold: int | None = THRESHOLD,
) -> Path:
    """The second config: audience `pro` added, the same group, the bulk lane at `threshold`
    (None: the default)."""
    flush = {} if threshold is None else {"bulk_threshold": threshold}
    return write_config(
        tmp / "second.yaml",
        bootstrap,
        sandbox.url,
        stored.topic,
        [LAST, PRO],
        flush=flush,
        kafka={"group_id": group_of(stored.first)},
    )


@contextmanager
def running(config: Path, log: Path) -> Iterator[WorkerProcess]:
    """A worker on `config`, stopped cleanly at the end."""
    worker = WorkerProcess(config, log)
    try:
        yield worker
    finally:
        assert worker.stop() == 0


def completed(worker: WorkerProcess) -> list[dict[str, Any]]:
    """The worker's log events of bulk jobs settled."""
    return [e for e in worker.logs() if e.get("event") == "bulk.job_completed"]


def calls(sandbox: SandboxProcess) -> dict[str, int]:
    """Calls answered so far, per endpoint."""
    return {name: sum(codes.values()) for name, codes in sandbox_stats(sandbox)["calls"].items()}


def imports(sandbox: SandboxProcess) -> list[dict[str, Any]]:
    """Every bulk import job the sandbox holds, oldest first."""
    jobs: list[dict[str, Any]] = sandbox.state()["bulkImports"]  # type: ignore[assignment]
    return jobs


def list_id(sandbox: SandboxProcess, name: str) -> int:
    """The id of the sandbox's list `name`."""
    return next(item["id"] for item in sandbox_state(sandbox)["lists"] if item["name"] == name)


def others_import(sandbox: SandboxProcess, rows: int, start: int) -> None:
    """Submit an import of `rows` persons as another integration would (no list)."""
    records = [{"email": f"other{start + i}@example.com"} for i in range(rows)]
    (file,) = import_files(records, lookup_field="email")
    body = (
        b"--B\r\nContent-Disposition: form-data; name=file; filename=o.csv\r\n"
        b"Content-Type: text/csv\r\n\r\n" + file.data + b"\r\n--B--\r\n"
    )
    request = urllib.request.Request(
        sandbox.url + "/bulk/v1/leads.json?format=csv&lookupField=email",
        data=body,
        method="POST",
        headers={
            "Authorization": f"Bearer {sandbox.token()}",
            "Content-Type": "multipart/form-data; boundary=B",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        reply = orjson.loads(response.read())
    assert reply.get("success") is True, reply


def test_an_activation_of_20000_new_persons_goes_through_the_bulk_lane(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """20,000 stored profiles unknown to Marketo, a restart adds an audience matching all of
    them: at the default threshold, an import with the list's id fills the list (equal to the
    reference) with no lead sync or list add, in a handful of calls."""
    with SandboxProcess("--no-limits", "--bulk-rows-per-s", "10000") as sandbox:
        stored = store(kafka_bootstrap, sandbox, tmp_path, events(ACTIVATED))
        before = calls(sandbox)
        config = activation(kafka_bootstrap, sandbox, tmp_path, stored, threshold=None)
        with running(config, tmp_path / "w.log") as worker:
            want = {email(i) for i in range(ACTIVATED)}
            wait_for_lists(sandbox, {"Pro": want, "Last": {SENTINEL}}, 180)
            wait_for(lambda: bool(completed(worker)), 60, "the job's status polled Complete")
            (job,) = completed(worker)
        jobs = imports(sandbox)
        pro = list_id(sandbox, "Pro")
        after = calls(sandbox)
    spent = {name: after.get(name, 0) - before.get(name, 0) for name in after}
    assert [(job["listId"], job["status"]) for job in jobs] == [(pro, "Complete")]
    assert sum(spent.get(kind, 0) for kind in REST_KINDS) == 0
    bulk = sum(spent.get(kind, 0) for kind in BULK_KINDS)
    assert 2 <= bulk <= 10, spent  # REST: a lead sync and a list add per 300, 134 calls
    assert (job["rows"], job["failed"], job["calls"]) == (ACTIVATED, 0, bulk)


def test_a_name_with_a_comma_a_quote_and_a_newline_arrives_intact(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """An activated person's first name `Smith, "Jr."` + newline + `the second` is the lead's
    first name in Marketo after the import."""
    with SandboxProcess("--no-limits", "--bulk-rows-per-s", "5000") as sandbox:
        stored = store(kafka_bootstrap, sandbox, tmp_path, events(PERSONS, first_name=ODD_NAME))
        with running(activation(kafka_bootstrap, sandbox, tmp_path, stored), tmp_path / "w.log"):
            wait_for_lists(sandbox, {"Pro": {email(i) for i in range(PERSONS)}}, 120)
        leads = sandbox_state(sandbox)["leads"]
        assert [job["listId"] for job in imports(sandbox)] == [list_id(sandbox, "Pro")]
    (odd,) = [lead for lead in leads if lead.get("email") == email(0)]
    assert odd["firstName"] == ODD_NAME


def test_a_row_marketo_fails_becomes_a_rejection_with_its_reason(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """One activated person's email is not ASCII: the import's failures file names it, its
    profile is published as a rejection with Marketo's reason, every other person is a member."""
    with SandboxProcess("--no-limits", "--bulk-rows-per-s", "5000") as sandbox:
        records = events(PERSONS, bad=True)
        stored = store(kafka_bootstrap, sandbox, tmp_path, records)
        config = activation(kafka_bootstrap, sandbox, tmp_path, stored)
        with running(config, tmp_path / "w.log") as worker:
            want = {email(i) for i in range(PERSONS) if i != 1}
            wait_for_lists(sandbox, {"Pro": want}, 120)
            wait_for(lambda: bool(completed(worker)), 60, "the job settled")
            (job,) = completed(worker)
        (imported,) = imports(sandbox)
    assert (job["rows"], job["failed"], imported["numOfRowsFailed"]) == (PERSONS, 1, 1)
    (rejection,) = read_topic(kafka_bootstrap, f"{stored.topic}.rejections", 1)
    body = orjson.loads(rejection.value())
    assert (body["profile_id"], body["audience"], body["op"]) == ("p-1", "pro", "add")
    assert body["code"] == "bulk_import_failure"
    assert "email" in body["message"].lower()


def test_a_worker_killed_while_its_import_runs_converges_after_a_restart(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """SIGKILL while the sandbox reports the import Importing: the restarted worker imports the
    same persons again (nothing was acknowledged) and the list holds every one of them."""
    # 200 rows a second: the 600-row import is Importing for 3 s, long enough to be seen
    with SandboxProcess("--no-limits", "--bulk-rows-per-s", "200") as sandbox:
        stored = store(kafka_bootstrap, sandbox, tmp_path, events(PERSONS))
        config = activation(kafka_bootstrap, sandbox, tmp_path, stored)
        worker = WorkerProcess(config, tmp_path / "killed.log")
        try:
            wait_for(
                lambda: any(job["status"] == "Importing" for job in imports(sandbox)),
                120,
                "the activation's import to be Importing",
            )
        finally:
            worker.kill()
        assert completed(worker) == []
        with running(config, tmp_path / "restarted.log") as restarted:
            wait_for_lists(sandbox, {"Pro": {email(i) for i in range(PERSONS)}}, 180)
            wait_for(lambda: bool(completed(restarted)), 120, "the repeated job settled")
            (job,) = completed(restarted)
        jobs = imports(sandbox)
        pro = list_id(sandbox, "Pro")
    assert [(j["listId"], j["rows"]) for j in jobs] == [(pro, PERSONS), (pro, PERSONS)]
    assert (job["rows"], job["failed"]) == (PERSONS, 0)


def test_a_queue_full_of_other_imports_makes_the_worker_wait_and_finish(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Ten imports of another integration fill Marketo's queue: the worker's submit is answered
    1016, it waits and submits again, and its import fills the list once theirs are done."""
    with SandboxProcess("--no-limits", "--bulk-rows-per-s", "1000") as sandbox:
        stored = store(kafka_bootstrap, sandbox, tmp_path, events(PERSONS))
        # the first two run 20 s, the eight behind them 1 s each: full while the worker starts
        for index, rows in enumerate([20_000, 20_000] + [1_000] * 8):
            others_import(sandbox, rows, start=100_000 * index)
        config = activation(kafka_bootstrap, sandbox, tmp_path, stored)
        with running(config, tmp_path / "w.log") as worker:
            wait_for_lists(sandbox, {"Pro": {email(i) for i in range(PERSONS)}}, 180)
            wait_for(lambda: bool(completed(worker)), 60, "the job settled")
            waits = [e for e in worker.logs() if e.get("event") == "bulk.queue_full"]
        refused = sandbox_stats(sandbox)["calls"]["importLeads"].get("1016", 0)
        jobs = imports(sandbox)
    assert waits
    assert refused == len(waits)
    assert [job["status"] for job in jobs] == ["Complete"] * 11
    assert jobs[-1]["listId"] is not None
