"""BulkClient against the Marketo sandbox over real HTTP on 127.0.0.1.

Guarantee: the worker's bulk calls speak Marketo's Bulk Lead Import and Bulk Lead Extract as the
sandbox emulates them: an import with listId fills the list, a failed row comes back with
Marketo's reason, a full import queue is ImportQueueFull, and an export returns a list's members,
whole or by byte range. Every sandbox runs with --strict-auth (a bearer header only).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import pytest
from pydantic import SecretStr

from tests.fakes import RecordingLimiter
from tests.sandbox_views import sandbox_state
from worker.core.bulk_csv import import_files, read_export, read_failures
from worker.core.ids import ListId
from worker.errors import ImportQueueFull
from worker.marketo.bulk import BulkClient
from worker.marketo.client import MarketoClient
from worker.marketo.responses import ExportState, ExportStatus, ImportState, ImportStatus
from worker.marketo.transport import Transport
from worker.sandbox.process import SandboxProcess

pytestmark = pytest.mark.integration

T = TypeVar("T")
FAST = ("--bulk-rows-per-s", "2000", "--bulk-export-rows-per-s", "0")
DEADLINE_S = 20.0


@contextmanager
def sandbox(*args: str) -> Iterator[SandboxProcess]:
    """A fresh sandbox that refuses access_token parameters, its status refreshed live."""
    with SandboxProcess(
        "--strict-auth", "--seed", "5", "--bulk-status-interval-s", "0", *args
    ) as sb:
        yield sb


def client_for(sb: SandboxProcess, limiter: RecordingLimiter) -> MarketoClient:
    """A REST client with the sandbox's credentials (its `bulk()` shares the transport)."""
    transport = Transport(
        sb.url, SecretStr(sb.client_id), SecretStr(sb.client_secret), limiter, rng=random.Random(3)
    )
    return MarketoClient(transport)


async def until(ask: Callable[[], Awaitable[T]], done: Callable[[T], bool], what: str) -> T:
    """Ask again until the answer is done; fail naming `what` past the deadline."""
    stop = time.monotonic() + DEADLINE_S
    while True:
        answer = await ask()
        if done(answer):
            return answer
        assert time.monotonic() < stop, f"timed out waiting for {what}: {answer}"
        await asyncio.sleep(0.05)  # polling the sandbox process: the answer is the sync


async def new_list(client: MarketoClient, name: str) -> ListId:
    """Create a list in the Audiences folder."""
    folder = await client.find_folder("Audiences")
    assert folder is not None
    return (await client.create_list(name, folder.id, "test")).id


async def finished_import(bulk: BulkClient, batch_id: int) -> ImportStatus:
    """The import's status once it is Complete or Failed."""
    return await until(
        lambda: bulk.import_status(batch_id),
        lambda s: s.status in (ImportState.COMPLETE, ImportState.FAILED),
        f"import {batch_id}",
    )


async def completed_export(bulk: BulkClient, export_id: str) -> ExportStatus:
    """The export's status once it has ended."""
    return await until(
        lambda: bulk.export_status(export_id),
        lambda s: s.status not in (ExportState.QUEUED, ExportState.PROCESSING),
        f"export {export_id}",
    )


PEOPLE: list[dict[str, object]] = [
    {"email": "ann@example.com", "firstName": "Ann", "lastName": 'Smith, Jr. "A"\nII'},
    {"email": "bob@example.com", "firstName": "Bob", "leadScore": 7},
    {"email": "cy@example.com", "firstName": "Cy"},
]


def member_emails(sb: SandboxProcess, list_id: ListId) -> dict[int, str]:
    """The list's members in the sandbox, by lead id."""
    state = sandbox_state(sb)
    by_id = {int(lead["id"]): str(lead["email"]) for lead in state["leads"]}
    return {i: by_id[i] for i in state["members"].get(str(int(list_id)), [])}


async def test_an_import_with_a_list_id_completes_and_its_rows_become_members() -> None:
    """Every row is imported intact and joins the list; there is no failures file."""
    with sandbox(*FAST) as sb:
        async with client_for(sb, RecordingLimiter()) as client:
            bulk = client.bulk()
            list_id = await new_list(client, "Bulk members")
            (file,) = import_files(PEOPLE, lookup_field="email")
            batch = await bulk.import_leads(file.data, lookup_field="email", list_id=list_id)
            status = await finished_import(bulk, batch)
            assert await bulk.import_failures(batch) is None
        assert (status.status, status.leads_processed, status.rows_failed) == ("Complete", 3, 0)
        assert sorted(member_emails(sb, list_id).values()) == sorted(
            str(p["email"]) for p in PEOPLE
        )
        ann = next(x for x in sandbox_state(sb)["leads"] if x["email"] == "ann@example.com")
        assert ann["lastName"] == PEOPLE[0]["lastName"]


async def test_a_failed_row_comes_back_with_marketos_reason_and_the_rest_are_members() -> None:
    """A value of the wrong type fails its row alone; the failures file names it and why."""
    rows: list[dict[str, object]] = [*PEOPLE, {"email": "bad@example.com", "leadScore": "lots"}]
    with sandbox(*FAST) as sb:
        async with client_for(sb, RecordingLimiter()) as client:
            bulk = client.bulk()
            list_id = await new_list(client, "Bulk with a failure")
            (file,) = import_files(rows, lookup_field="email")
            batch = await bulk.import_leads(file.data, lookup_field="email", list_id=list_id)
            status = await finished_import(bulk, batch)
            failures = await bulk.import_failures(batch)
        assert (status.status, status.leads_processed, status.rows_failed) == ("Complete", 3, 1)
        assert failures is not None
        assert read_failures(failures, lookup_field="email") == [
            ("bad@example.com", "Invalid data type in field Lead Score")
        ]
        assert file.rows["bad@example.com"] == (3,)
        assert "bad@example.com" not in member_emails(sb, list_id).values()


async def test_a_full_import_queue_raises_import_queue_full() -> None:
    """With 10 imports queued or importing, the 11th is ImportQueueFull (1016), not retried."""
    with sandbox("--bulk-rows-per-s", "0.01") as sb:
        async with client_for(sb, RecordingLimiter()) as client:
            bulk = client.bulk()
            (file,) = import_files(PEOPLE, lookup_field="email")
            for _ in range(10):
                await bulk.import_leads(file.data, lookup_field="email")
            with pytest.raises(ImportQueueFull) as refused:
                await bulk.import_leads(file.data, lookup_field="email")
        assert refused.value.code == "1016"
        assert sandbox_state_imports(sb) == 10


def sandbox_state_imports(sb: SandboxProcess) -> int:
    """How many import batches the sandbox holds."""
    imports = sb.state()["bulkImports"]
    assert isinstance(imports, list)
    return len(imports)


async def filled_list(client: MarketoClient, bulk: BulkClient, name: str) -> ListId:
    """A list the bulk import filled with PEOPLE."""
    list_id = await new_list(client, name)
    (file,) = import_files(PEOPLE, lookup_field="email")
    batch = await bulk.import_leads(file.data, lookup_field="email", list_id=list_id)
    assert (await finished_import(bulk, batch)).status is ImportState.COMPLETE
    return list_id


async def test_an_export_of_a_list_returns_its_members_ids_and_emails() -> None:
    """Created, enqueued and completed, the export's file holds each member's id and email."""
    with sandbox(*FAST) as sb:
        async with client_for(sb, RecordingLimiter()) as client:
            bulk = client.bulk()
            list_id = await filled_list(client, bulk, "Exported")
            export_id = await bulk.export_create(["id", "email"], static_list_id=list_id)
            assert (await bulk.export_enqueue(export_id)).status is not ExportState.CREATED
            status = await completed_export(bulk, export_id)
            data = await bulk.export_file(export_id)
        assert (status.status, status.number_of_records, status.file_size) == (
            ExportState.COMPLETED,
            3,
            len(data),
        )
        rows = {int(str(r["id"])): r["email"] for r in read_export(data)}
        assert rows == member_emails(sb, list_id)


async def test_an_export_file_is_read_by_byte_ranges() -> None:
    """Two ranges (closed, then open-ended) give back the whole file's bytes."""
    with sandbox(*FAST) as sb:
        async with client_for(sb, RecordingLimiter()) as client:
            bulk = client.bulk()
            await filled_list(client, bulk, "Ranged")
            export_id = await bulk.export_create(["id", "email"], static_list_name="Ranged")
            await bulk.export_enqueue(export_id)
            await completed_export(bulk, export_id)
            whole = await bulk.export_file(export_id)
            head = await bulk.export_file(export_id, (0, 9))
            tail = await bulk.export_file(export_id, (10, None))
        assert (head, head + tail) == (whole[:10], whole)
