"""Bulk Lead Import and Bulk Lead Extract in one sandbox: one catch-up moves both on its clocks."""

import csv
import io
from typing import Any

import aiohttp
import pytest

from tests.sandbox.conftest import Api, StartSandbox
from worker.sandbox.bulk_export import ExportConfig
from worker.sandbox.gate import LimitConfig

pytestmark = pytest.mark.integration

OFF = LimitConfig(calls_per_window=0, concurrency=0, daily_quota=0)
EXPORT = "/bulk/v1/leads/export"


async def _imported_list(api: Api, emails: list[str]) -> int:
    """A new list filled by a bulk import of `emails` (10 rows a second), not yet processed."""
    list_id = await api.create_list("Imported")
    body = aiohttp.FormData()
    rows = "".join(f"{email}\n" for email in emails)
    body.add_field("file", io.BytesIO(f"email\n{rows}".encode()), filename="leads.csv")
    params = {"format": "csv", "listId": str(list_id)}
    answer = await api.call("POST", "/bulk/v1/leads.json", data=body, params=params)
    assert answer.body["success"], answer.body
    return list_id


async def _export(api: Api, list_id: int) -> str:
    """The id of an export of `list_id`'s emails, created and enqueued now."""
    body = {"fields": ["email"], "filter": {"staticListId": list_id}}
    created = await api.post(f"{EXPORT}/create.json", body)
    export_id = str(created.body["result"][0]["exportId"])
    enqueued = await api.post(f"{EXPORT}/{export_id}/enqueue.json", None)
    assert enqueued.body["success"], enqueued.body
    return export_id


@pytest.fixture
async def both(start_sandbox: StartSandbox) -> Api:
    """Imports at 10 rows a second, exports instant with live status, limits off."""
    instant = ExportConfig(rows_per_s=0, status_interval_s=0)
    return await start_sandbox(limits=OFF, bulk_rows_per_s=10.0, bulk_export=instant)


async def test_export_after_an_import_holds_the_imported_members(both: Api) -> None:
    """An export started once an import into its list completed has every imported row."""
    emails = ["a@example.com", "b@example.com", "c@example.com"]
    list_id = await _imported_list(both, emails)
    both.clock.advance(1)
    both.wall.advance(1)
    export_id = await _export(both, list_id)
    answer = await both.call("GET", f"{EXPORT}/{export_id}/file.json")
    assert list(csv.reader(io.StringIO(answer.body, newline=""))) == [["email"]] + [
        [email] for email in emails
    ]


async def test_state_shows_imports_and_exports_side_by_side(both: Api) -> None:
    """`/_sandbox/state` lists the bulk imports and the exports together."""
    list_id = await _imported_list(both, ["a@example.com"])
    export_id = await _export(both, list_id)
    state: dict[str, Any] = (await both.call("GET", "/_sandbox/state", auth=False)).body
    assert [job["batchId"] for job in state["bulkImports"]] == [1]
    assert [job["exportId"] for job in state["exports"]] == [export_id]
    assert "exportBytesToday" in state
