"""Bulk Lead Extract over HTTP: jobs, their statuses and refreshes, the file, Range, the limits.

Time is the sandbox's fake clocks: a job processes only when a test moves them.
"""

import asyncio
import csv
import hashlib
import io
import time
import uuid
from typing import Any

import pytest

from tests.sandbox.conftest import Answer, Api, StartSandbox
from worker.sandbox.bulk_export import ExportConfig
from worker.sandbox.faults import Faults
from worker.sandbox.gate import LimitConfig
from worker.sandbox.limits import QuotaDay

pytestmark = pytest.mark.integration

EXPORT = "/bulk/v1/leads/export"
OFF = LimitConfig(calls_per_window=0, concurrency=0, daily_quota=0)
# 1 row/s and a refresh every 60 s: a 5-member list processes from t=60 to t=65.
SLOW = ExportConfig(rows_per_s=1, status_interval_s=60)


def _code(answer: Answer) -> str:
    body = answer.body
    return "ok" if body["success"] else str(body["errors"][0]["code"])


def _job(answer: Answer) -> dict[str, Any]:
    assert answer.body["success"], answer.body
    result: dict[str, Any] = answer.body["result"][0]
    return result


def _advance(api: Api, seconds: float) -> None:
    api.clock.advance(seconds)
    api.wall.advance(seconds)


async def _sandbox(start_sandbox: StartSandbox, **config: Any) -> Api:
    limits = config.pop("limits", OFF)
    return await start_sandbox(limits=limits, bulk_export=ExportConfig(**config))


async def _list_of(api: Api, count: int, name: str = "Export") -> int:
    """A list whose members are `count` new leads, in id order."""
    result = await api.sync(*[{"email": f"e{i}@example.com"} for i in range(count)])
    list_id = await api.create_list(name)
    ids = [{"id": r["id"]} for r in result]
    await api.post(f"/rest/v1/lists/{list_id}/leads.json", {"input": ids})
    return list_id


async def _create(api: Api, list_id: int, **extra: object) -> Answer:
    body = {"fields": ["id", "email"], "filter": {"staticListId": list_id}, **extra}
    return await api.post(f"{EXPORT}/create.json", body)


async def _queued(api: Api, list_id: int) -> str:
    export_id = str(_job(await _create(api, list_id))["exportId"])
    assert _code(await api.post(f"{EXPORT}/{export_id}/enqueue.json", None)) == "ok"
    return export_id


async def _status(api: Api, export_id: str) -> dict[str, Any]:
    return _job(await api.get(f"{EXPORT}/{export_id}/status.json"))


async def _file(api: Api, export_id: str, **headers: str) -> Answer:
    return await api.call("GET", f"{EXPORT}/{export_id}/file.json", headers=headers)


async def _completed(api: Api, list_id: int) -> str:
    """An export of `list_id` with processing and refreshes instant, already completed."""
    export_id = await _queued(api, list_id)
    assert (await _status(api, export_id))["status"] == "Completed"
    return export_id


async def _five_row_job(start_sandbox: StartSandbox) -> tuple[Api, str]:
    """A job queued at t=0 over 5 members: it processes from t=60 to t=65 (`SLOW`)."""
    api = await start_sandbox(limits=OFF, bulk_export=SLOW)
    return api, await _queued(api, await _list_of(api, 5))


def _rows(answer: Answer) -> list[list[str]]:
    return list(csv.reader(io.StringIO(answer.body, newline="")))


def _true_status(api: Api, export_id: str) -> str:
    jobs = api.sandbox.bulk_exports.state()["exports"]
    assert isinstance(jobs, list)
    return str(next(j["status"] for j in jobs if j["exportId"] == export_id))


# --- create and the status transitions ---------------------------------------------------


async def test_create_answers_a_created_job(start_sandbox: StartSandbox) -> None:
    """Create answers one job: a UUID exportId, `Created`, the format and createdAt."""
    api = await _sandbox(start_sandbox)
    job = _job(await _create(api, await _list_of(api, 1)))
    assert uuid.UUID(job["exportId"]).version == 4
    assert (job["status"], job["format"]) == ("Created", "CSV")
    assert job["createdAt"] == "2026-03-10T17:00:00Z"


async def test_enqueue_answers_queued_with_queued_at(start_sandbox: StartSandbox) -> None:
    """Enqueue moves a created job to `Queued` and stamps queuedAt."""
    api = await _sandbox(start_sandbox, rows_per_s=1, status_interval_s=60)
    export_id = str(_job(await _create(api, await _list_of(api, 1)))["exportId"])
    _advance(api, 5)
    job = _job(await api.post(f"{EXPORT}/{export_id}/enqueue.json", None))
    assert (job["status"], job["queuedAt"]) == ("Queued", "2026-03-10T17:00:05Z")


async def test_job_stays_queued_until_the_next_refresh(start_sandbox: StartSandbox) -> None:
    """A queued job has not started before the next status refresh."""
    api, export_id = await _five_row_job(start_sandbox)
    _advance(api, 59)
    job = await _status(api, export_id)
    assert job["status"] == "Queued"
    assert "startedAt" not in job


async def test_refresh_starts_a_queued_job(start_sandbox: StartSandbox) -> None:
    """At the refresh after its enqueue the job is `Processing`, with startedAt."""
    api, export_id = await _five_row_job(start_sandbox)
    _advance(api, 60)
    job = await _status(api, export_id)
    assert (job["status"], job["startedAt"]) == ("Processing", "2026-03-10T17:01:00Z")


async def test_completed_job_reports_records_size_and_checksum(
    start_sandbox: StartSandbox,
) -> None:
    """A completed job reports numberOfRecords, fileSize and a sha256 fileChecksum of the file."""
    api, export_id = await _five_row_job(start_sandbox)
    _advance(api, 120)
    job = await _status(api, export_id)
    data = (await _file(api, export_id)).body.encode()
    assert (job["status"], job["finishedAt"]) == ("Completed", "2026-03-10T17:01:05Z")
    assert (job["numberOfRecords"], job["fileSize"]) == (5, len(data))
    assert job["fileChecksum"] == "sha256:" + hashlib.sha256(data).hexdigest()


async def test_status_between_refreshes_answers_the_last_refresh(
    start_sandbox: StartSandbox,
) -> None:
    """A job done at t=65 still reads `Processing` until the refresh at t=120."""
    api, export_id = await _five_row_job(start_sandbox)
    _advance(api, 119)
    shown = (await _status(api, export_id))["status"]
    assert (shown, _true_status(api, export_id)) == ("Processing", "Completed")


async def test_status_refresh_interval_is_configurable(start_sandbox: StartSandbox) -> None:
    """With a 5 s interval, a 5-row job at 1 row/s reads `Completed` 10 s after its enqueue."""
    api = await _sandbox(start_sandbox, rows_per_s=1, status_interval_s=5)
    export_id = await _queued(api, await _list_of(api, 5))
    _advance(api, 9)
    before = (await _status(api, export_id))["status"]
    _advance(api, 1)
    assert [before, (await _status(api, export_id))["status"]] == ["Processing", "Completed"]


async def test_job_fails_when_its_list_is_gone(start_sandbox: StartSandbox) -> None:
    """A job whose list was deleted before it started ends `Failed` with an errorMsg."""
    api = await _sandbox(start_sandbox, rows_per_s=0, status_interval_s=0)
    list_id = await _list_of(api, 1)
    export_id = str(_job(await _create(api, list_id))["exportId"])
    await api.form(f"/rest/asset/v1/staticList/{list_id}/delete.json")
    await api.post(f"{EXPORT}/{export_id}/enqueue.json", None)
    job = await _status(api, export_id)
    assert (job["status"], job["errorMsg"]) == ("Failed", f"Static list {list_id} not found")


# --- the file ------------------------------------------------------------------------------


async def test_file_holds_the_members_id_and_email(start_sandbox: StartSandbox) -> None:
    """The file is a header and one row per member, in membership order."""
    api = await _sandbox(start_sandbox, rows_per_s=0, status_interval_s=0)
    list_id = await _list_of(api, 3)
    members = api.sandbox.store.members[list_id]
    leads = api.sandbox.store.leads
    expected = [["id", "email"]] + [[str(i), str(leads[i].fields["email"])] for i in members]
    assert _rows(await _file(api, await _completed(api, list_id))) == expected


async def test_file_is_csv_with_rfc_4180_quoting(start_sandbox: StartSandbox) -> None:
    """A value with a comma, a quote and a newline is quoted and its quote doubled."""
    api = await _sandbox(start_sandbox, rows_per_s=0, status_interval_s=0)
    name = 'Smith, "Jr."\nthe second'
    await api.sync({"email": "q@example.com", "lastName": name})
    list_id = await api.create_list("Quoted")
    await api.post(f"/rest/v1/lists/{list_id}/leads.json", {"input": [{"id": 1}]})
    export_id = str(_job(await _create(api, list_id, fields=["lastName"]))["exportId"])
    await api.post(f"{EXPORT}/{export_id}/enqueue.json", None)
    answer = await _file(api, export_id)
    assert answer.body == 'lastName\r\n"Smith, ""Jr.""\nthe second"\r\n'
    assert answer.headers["Content-Type"] == "text/csv;charset=UTF-8"


async def test_empty_field_is_written_as_null(start_sandbox: StartSandbox) -> None:
    """A requested field without a value is the literal `null`, as Adobe's example shows."""
    api = await _sandbox(start_sandbox, rows_per_s=0, status_interval_s=0)
    list_id = await _list_of(api, 1)
    export_id = str(_job(await _create(api, list_id, fields=["email", "city"]))["exportId"])
    await api.post(f"{EXPORT}/{export_id}/enqueue.json", None)
    assert _rows(await _file(api, export_id))[1] == ["e0@example.com", "null"]


async def test_column_header_names_rename_the_header(start_sandbox: StartSandbox) -> None:
    """columnHeaderNames replaces a field's header; the others keep their REST names."""
    api = await _sandbox(start_sandbox, rows_per_s=0, status_interval_s=0)
    names = {"email": "Email Address"}
    answer = await _create(api, await _list_of(api, 1), columnHeaderNames=names)
    export_id = str(_job(answer)["exportId"])
    await api.post(f"{EXPORT}/{export_id}/enqueue.json", None)
    assert _rows(await _file(api, export_id))[0] == ["id", "Email Address"]


async def test_tsv_format_separates_with_tabs(start_sandbox: StartSandbox) -> None:
    """`format: TSV` writes tab-separated values."""
    api = await _sandbox(start_sandbox, rows_per_s=0, status_interval_s=0)
    export_id = str(_job(await _create(api, await _list_of(api, 1), format="TSV"))["exportId"])
    await api.post(f"{EXPORT}/{export_id}/enqueue.json", None)
    assert (await _file(api, export_id)).body.startswith("id\temail\r\n")


async def test_member_added_before_processing_is_in_the_file(start_sandbox: StartSandbox) -> None:
    """Membership is read when the job begins processing: a member added while queued is in."""
    api = await _sandbox(start_sandbox, rows_per_s=1, status_interval_s=60)
    list_id = await _list_of(api, 1)
    export_id = await _queued(api, list_id)
    new = (await api.sync({"email": "late@example.com"}))[0]["id"]
    await api.post(f"/rest/v1/lists/{list_id}/leads.json", {"input": [{"id": new}]})
    _advance(api, 120)
    assert [r[0] for r in _rows(await _file(api, export_id))[1:]] == ["1", str(new)]


async def test_member_added_while_processing_is_not_in_the_file(
    start_sandbox: StartSandbox,
) -> None:
    """A member added after the job began processing is not in its file."""
    api = await _sandbox(start_sandbox, rows_per_s=1, status_interval_s=60)
    list_id = await _list_of(api, 2)
    export_id = await _queued(api, list_id)
    _advance(api, 61)
    new = (await api.sync({"email": "late@example.com"}))[0]["id"]
    await api.post(f"/rest/v1/lists/{list_id}/leads.json", {"input": [{"id": new}]})
    _advance(api, 60)
    assert [r[0] for r in _rows(await _file(api, export_id))[1:]] == ["1", "2"]


async def test_file_of_an_unfinished_job_is_a_plain_text_404(
    start_sandbox: StartSandbox,
) -> None:
    """Before the job completes the file endpoint answers 404 with a plain-text message."""
    api = await _sandbox(start_sandbox, rows_per_s=1, status_interval_s=60)
    answer = await _file(api, await _queued(api, await _list_of(api, 1)))
    assert (answer.status, answer.headers["Content-Type"]) == (404, "text/plain;charset=UTF-8")
    assert "not completed" in answer.body


async def test_file_of_an_unknown_job_is_a_404(start_sandbox: StartSandbox) -> None:
    """An exportId no job has gets the plain-text 404 too."""
    api = await _sandbox(start_sandbox)
    answer = await _file(api, str(uuid.uuid4()))
    assert (answer.status, answer.body) == (404, "Export job not found")


async def test_range_request_answers_206_with_content_range(start_sandbox: StartSandbox) -> None:
    """`Range: bytes=0-9` answers 206, the first 10 bytes, Content-Range with the full size."""
    api = await _sandbox(start_sandbox, rows_per_s=0, status_interval_s=0)
    export_id = await _completed(api, await _list_of(api, 3))
    whole = (await _file(api, export_id)).body
    part = await _file(api, export_id, Range="bytes=0-9")
    assert (part.status, part.body) == (206, whole[:10])
    assert part.headers["Content-Range"] == f"bytes 0-9/{len(whole)}"
    assert part.headers["Accept-Ranges"] == "bytes"


async def test_open_range_resumes_to_the_end(start_sandbox: StartSandbox) -> None:
    """`Range: bytes=10-` answers the rest of the file from byte 10."""
    api = await _sandbox(start_sandbox, rows_per_s=0, status_interval_s=0)
    export_id = await _completed(api, await _list_of(api, 3))
    whole = (await _file(api, export_id)).body
    rest = await _file(api, export_id, Range="bytes=10-")
    assert (rest.status, rest.body) == (206, whole[10:])


async def test_range_past_the_end_is_416(start_sandbox: StartSandbox) -> None:
    """A range starting past the last byte answers 416 and `Content-Range: bytes */size`."""
    api = await _sandbox(start_sandbox, rows_per_s=0, status_interval_s=0)
    export_id = await _completed(api, await _list_of(api, 1))
    size = len((await _file(api, export_id)).body)
    answer = await _file(api, export_id, Range=f"bytes={size}-")
    assert (answer.status, answer.headers["Content-Range"]) == (416, f"bytes */{size}")


# --- cancel ----------------------------------------------------------------------------------


async def test_cancel_makes_a_queued_job_cancelled(start_sandbox: StartSandbox) -> None:
    """Cancel answers `Cancelled` and the job never starts."""
    api = await _sandbox(start_sandbox, rows_per_s=1, status_interval_s=60)
    export_id = await _queued(api, await _list_of(api, 1))
    cancelled = _job(await api.post(f"{EXPORT}/{export_id}/cancel.json", None))
    _advance(api, 120)
    assert [cancelled["status"], (await _status(api, export_id))["status"]] == ["Cancelled"] * 2


async def test_cancelling_a_processing_job_frees_its_slot(start_sandbox: StartSandbox) -> None:
    """With two jobs processing, cancelling one lets the third start at the next refresh."""
    api = await _sandbox(start_sandbox, rows_per_s=1, status_interval_s=60)
    list_id = await _list_of(api, 300)
    first, _, third = [await _queued(api, list_id) for _ in range(3)]
    _advance(api, 60)
    await api.post(f"{EXPORT}/{first}/cancel.json", None)
    _advance(api, 60)
    assert (await _status(api, third))["status"] == "Processing"


async def test_cancelling_a_completed_job_is_refused(start_sandbox: StartSandbox) -> None:
    """A completed job cannot be cancelled."""
    api = await _sandbox(start_sandbox, rows_per_s=0, status_interval_s=0)
    export_id = await _completed(api, await _list_of(api, 1))
    assert _code(await api.post(f"{EXPORT}/{export_id}/cancel.json", None)) == "1003"


# --- the queue and the daily allocation -------------------------------------------------


async def test_only_two_jobs_process_at_once(start_sandbox: StartSandbox) -> None:
    """Of three queued jobs two process and the third waits, queued first processed first."""
    api = await _sandbox(start_sandbox, rows_per_s=1, status_interval_s=60)
    list_id = await _list_of(api, 100)
    export_ids = [await _queued(api, list_id) for _ in range(3)]
    _advance(api, 60)
    statuses = [(await _status(api, e))["status"] for e in export_ids]
    assert statuses == ["Processing", "Processing", "Queued"]


async def test_waiting_job_starts_at_the_refresh_after_a_slot_frees(
    start_sandbox: StartSandbox,
) -> None:
    """The third job starts at the first refresh after one of the two running ones ends."""
    api = await _sandbox(start_sandbox, rows_per_s=1, status_interval_s=60)
    list_id = await _list_of(api, 100)
    *_, third = [await _queued(api, list_id) for _ in range(3)]
    _advance(api, 60 + 100 + 60)  # the first two end at t=160; the refresh at t=180
    assert (await _status(api, third))["startedAt"] == "2026-03-10T17:03:00Z"


async def test_eleventh_job_in_the_queue_is_1029(start_sandbox: StartSandbox) -> None:
    """With 10 jobs queued or processing, the next enqueue answers 1029 Too many jobs in queue."""
    api = await _sandbox(start_sandbox, rows_per_s=1, status_interval_s=60)
    list_id = await _list_of(api, 1)
    for _ in range(10):
        await _queued(api, list_id)
    export_id = str(_job(await _create(api, list_id))["exportId"])
    answer = await api.post(f"{EXPORT}/{export_id}/enqueue.json", None)
    assert answer.body["errors"] == [{"code": "1029", "message": "Too many jobs in queue"}]


async def test_enqueueing_a_queued_job_again_is_1029(start_sandbox: StartSandbox) -> None:
    """Enqueueing a job that is already queued answers 1029 Job already queued."""
    api = await _sandbox(start_sandbox, rows_per_s=1, status_interval_s=60)
    export_id = await _queued(api, await _list_of(api, 1))
    answer = await api.post(f"{EXPORT}/{export_id}/enqueue.json", None)
    assert answer.body["errors"] == [{"code": "1029", "message": "Job already queued"}]


async def test_export_past_the_daily_allocation_is_1029(start_sandbox: StartSandbox) -> None:
    """Once today's completed files reach the allocation, create answers 1029."""
    api = await _sandbox(start_sandbox, rows_per_s=0, status_interval_s=0, daily_bytes=50)
    list_id = await _list_of(api, 3)  # a 65-byte file
    await _completed(api, list_id)
    answer = await _create(api, list_id)
    assert answer.body["errors"] == [{"code": "1029", "message": "Export daily quota exceeded"}]


async def test_enqueue_past_the_daily_allocation_is_1029(start_sandbox: StartSandbox) -> None:
    """A job created before the allocation ran out cannot be enqueued after it."""
    api = await _sandbox(start_sandbox, rows_per_s=0, status_interval_s=0, daily_bytes=50)
    list_id = await _list_of(api, 3)
    waiting = str(_job(await _create(api, list_id))["exportId"])
    await _completed(api, list_id)
    assert _code(await api.post(f"{EXPORT}/{waiting}/enqueue.json", None)) == "1029"


async def test_daily_allocation_resets_with_the_quota_day(start_sandbox: StartSandbox) -> None:
    """After the quota day turns, exports can be created again."""
    limits = LimitConfig(
        calls_per_window=0, concurrency=0, daily_quota=0, quota_day=QuotaDay(day_s=600)
    )
    api = await _sandbox(
        start_sandbox, limits=limits, rows_per_s=0, status_interval_s=0, daily_bytes=50
    )
    list_id = await _list_of(api, 3)
    await _completed(api, list_id)
    _advance(api, 600)
    assert _code(await _create(api, list_id)) == "ok"


async def test_state_reports_the_bytes_exported_today(start_sandbox: StartSandbox) -> None:
    """The admin state sums the file sizes of the jobs completed today."""
    api = await _sandbox(start_sandbox, rows_per_s=0, status_interval_s=0)
    list_id = await _list_of(api, 3)
    sizes = [(await _status(api, await _completed(api, list_id)))["fileSize"] for _ in range(2)]
    assert api.sandbox.bulk_exports.state()["exportBytesToday"] == sum(sizes)


# --- accounting like a REST call ---------------------------------------------------------


async def test_bulk_calls_count_against_the_daily_quota(start_sandbox: StartSandbox) -> None:
    """Create, enqueue, status and file each use one call of the daily quota."""
    limits = LimitConfig(calls_per_window=0, concurrency=0, daily_quota=1000)
    api = await _sandbox(start_sandbox, limits=limits, rows_per_s=0, status_interval_s=0)
    list_id = await _list_of(api, 1)
    before = api.sandbox.gate.quota.used_today(api.wall())
    export_id = await _completed(api, list_id)
    await _file(api, export_id)
    assert api.sandbox.gate.quota.used_today(api.wall()) - before == 4


async def test_bulk_call_past_the_quota_is_607(start_sandbox: StartSandbox) -> None:
    """When the daily quota is spent a status read answers 607."""
    limits = LimitConfig(calls_per_window=0, concurrency=0, daily_quota=6)
    api = await _sandbox(start_sandbox, limits=limits, rows_per_s=1, status_interval_s=60)
    export_id = await _queued(api, await _list_of(api, 1))  # 3 setup calls, create, enqueue
    codes = [_code(await api.get(f"{EXPORT}/{export_id}/status.json")) for _ in range(2)]
    assert codes == ["ok", "607"]


async def test_bulk_call_past_the_window_is_606(start_sandbox: StartSandbox) -> None:
    """Bulk calls fill the rolling window like REST calls: the one past it answers 606."""
    limits = LimitConfig(calls_per_window=5, window_s=20, concurrency=0, daily_quota=0)
    api = await _sandbox(start_sandbox, limits=limits, rows_per_s=1, status_interval_s=60)
    export_id = await _queued(api, await _list_of(api, 1))  # 5 calls
    assert _code(await api.get(f"{EXPORT}/{export_id}/status.json")) == "606"


async def test_bulk_call_past_the_concurrency_is_615(start_sandbox: StartSandbox) -> None:
    """With `concurrency` calls in flight, a bulk call gets 615."""
    limits = LimitConfig(calls_per_window=0, concurrency=1, daily_quota=0)
    api = await start_sandbox(limits=limits, faults=Faults(latency_ms=1500))
    slow = asyncio.create_task(api.get(f"{EXPORT}.json"))
    deadline = time.monotonic() + 5
    while api.sandbox.gate.concurrency.in_flight < 1:
        assert time.monotonic() < deadline, "the slow call never got in flight"
        await asyncio.sleep(0.01)
    refused = await api.get(f"{EXPORT}.json")
    assert [_code(refused), _code(await slow)] == ["615", "ok"]


async def test_bulk_calls_are_counted_per_endpoint(start_sandbox: StartSandbox) -> None:
    """The sandbox's call counters name the bulk endpoints after the spec's operations."""
    api = await _sandbox(start_sandbox, rows_per_s=0, status_interval_s=0)
    export_id = await _completed(api, await _list_of(api, 1))
    await _file(api, export_id)
    calls = api.sandbox.gate.stats.as_json()
    names = ["createExportLeads", "enqueueExportLeads", "getExportLeadsStatus"]
    assert [calls[n] for n in [*names, "getExportLeadsFile"]] == [{"ok": 1}] * 4


# --- create's checks -------------------------------------------------------------------


async def test_create_by_list_name_exports_that_list(start_sandbox: StartSandbox) -> None:
    """A `staticListName` filter exports the list of that name."""
    api = await _sandbox(start_sandbox, rows_per_s=0, status_interval_s=0)
    await _list_of(api, 2, "By Name")
    body = {"fields": ["id"], "filter": {"staticListName": "By Name"}}
    export_id = str(_job(await api.post(f"{EXPORT}/create.json", body))["exportId"])
    await api.post(f"{EXPORT}/{export_id}/enqueue.json", None)
    assert _rows(await _file(api, export_id)) == [["id"], ["1"], ["2"]]


async def test_unknown_field_is_1006(start_sandbox: StartSandbox) -> None:
    """A field not in the lead catalogue fails create with 1006."""
    api = await _sandbox(start_sandbox)
    answer = await _create(api, await _list_of(api, 1), fields=["id", "shoeSize"])
    assert answer.body["errors"] == [{"code": "1006", "message": "Field 'shoeSize' not found"}]


async def test_missing_fields_is_701(start_sandbox: StartSandbox) -> None:
    """Create without `fields` answers 701."""
    api = await _sandbox(start_sandbox)
    answer = await api.post(f"{EXPORT}/create.json", {"filter": {"staticListId": 1001}})
    assert _code(answer) == "701"


async def test_date_filter_is_1035_unsupported(start_sandbox: StartSandbox) -> None:
    """A createdAt filter answers 1035, naming the filters the sandbox supports."""
    api = await _sandbox(start_sandbox)
    window = {"startAt": "2026-03-01T00:00:00Z", "endAt": "2026-03-02T00:00:00Z"}
    body = {"fields": ["id"], "filter": {"createdAt": window}}
    error = (await api.post(f"{EXPORT}/create.json", body)).body["errors"][0]
    assert error["code"] == "1035"
    assert "staticListId" in error["message"]


async def test_two_filter_types_are_refused(start_sandbox: StartSandbox) -> None:
    """Only one filter type per job: two answer 1003."""
    api = await _sandbox(start_sandbox)
    list_id = await _list_of(api, 1)
    body = {"fields": ["id"], "filter": {"staticListId": list_id, "staticListName": "Export"}}
    assert _code(await api.post(f"{EXPORT}/create.json", body)) == "1003"


async def test_unknown_list_is_1013(start_sandbox: StartSandbox) -> None:
    """A staticListId no list has answers 1013."""
    api = await _sandbox(start_sandbox)
    assert _code(await _create(api, 4242)) == "1013"


async def test_unknown_format_is_1003(start_sandbox: StartSandbox) -> None:
    """A format other than CSV, TSV or SSV answers 1003."""
    api = await _sandbox(start_sandbox)
    assert _code(await _create(api, await _list_of(api, 1), format="XLSX")) == "1003"


async def test_status_of_an_unknown_job_is_1003(start_sandbox: StartSandbox) -> None:
    """The status of an exportId no job has answers 1003."""
    api = await _sandbox(start_sandbox)
    assert _code(await api.get(f"{EXPORT}/{uuid.uuid4()}/status.json")) == "1003"


# --- listing and the admin state --------------------------------------------------------


async def test_list_jobs_filters_by_status(start_sandbox: StartSandbox) -> None:
    """`GET /bulk/v1/leads/export.json?status=Created,Canceled` lists just those jobs."""
    api = await _sandbox(start_sandbox, rows_per_s=1, status_interval_s=60)
    list_id = await _list_of(api, 1)
    created = str(_job(await _create(api, list_id))["exportId"])
    cancelled = await _queued(api, list_id)
    await _queued(api, list_id)
    await api.post(f"{EXPORT}/{cancelled}/cancel.json", None)
    listed = (await api.get(f"{EXPORT}.json", status="Created,Canceled")).body["result"]
    assert [j["exportId"] for j in listed] == [created, cancelled]


async def test_list_jobs_pages_by_batch_size(start_sandbox: StartSandbox) -> None:
    """`batchSize=1` gives one job and a nextPageToken to the next."""
    api = await _sandbox(start_sandbox)
    list_id = await _list_of(api, 1)
    ids = [str(_job(await _create(api, list_id))["exportId"]) for _ in range(2)]
    first = (await api.get(f"{EXPORT}.json", batchSize=1)).body
    token = first["nextPageToken"]
    second = (await api.get(f"{EXPORT}.json", batchSize=1, nextPageToken=token)).body
    assert [first["result"][0]["exportId"], second["result"][0]["exportId"]] == ids


async def test_admin_state_lists_the_jobs(start_sandbox: StartSandbox) -> None:
    """`/_sandbox/state` shows each job's true and shown status, its list and its size."""
    api = await _sandbox(start_sandbox, rows_per_s=1, status_interval_s=60)
    list_id = await _list_of(api, 5)
    export_id = await _queued(api, list_id)
    _advance(api, 119)
    state = (await api.call("GET", "/_sandbox/state", auth=False)).body
    job = state["exports"][0]
    assert (job["exportId"], job["staticListId"]) == (export_id, list_id)
    assert (job["status"], job["shownStatus"], job["numberOfRecords"]) == (
        "Completed",
        "Processing",
        5,
    )
