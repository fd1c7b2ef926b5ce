"""Bulk Lead Import over HTTP: the queue, status and counters, files, semantics, limits, shapes.

Time is the sandbox's fake clock: a job's progress is what its rows per second allow by then.
"""

import asyncio
import csv
import io
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.sandbox.conftest import CLIENT_ID, CLIENT_SECRET, Answer, Api, StartSandbox
from tests.sandbox.conftest import assert_matches_spec as matches
from worker.sandbox import cli
from worker.sandbox.bulk_import import DEFAULT_ROWS_PER_S, MAX_BODY_BYTES
from worker.sandbox.faults import Faults
from worker.sandbox.gate import LimitConfig
from worker.sandbox.limits import QuotaDay

pytestmark = pytest.mark.integration

IMPORT = "/bulk/v1/leads.json"
MAPI = "swagger-mapi.json"
SHAPE = "ResponseOfImportLeadResponse"
OFF = LimitConfig(calls_per_window=0, concurrency=0, daily_quota=0, quota_day=QuotaDay())


def _csv(*rows: list[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode()


def _people(count: int, start: int = 0) -> bytes:
    rows = [[f"p{i}@example.com", f"P{i}"] for i in range(start, start + count)]
    return _csv(["email", "firstName"], *rows)


async def _upload(
    api: Api, data: bytes, *, form: dict[str, str] | None = None, **query: Any
) -> Answer:
    body = aiohttp.FormData()
    for name, value in (form or {}).items():
        body.add_field(name, value)
    body.add_field("file", io.BytesIO(data), filename="leads.csv", content_type="text/csv")
    params = {"format": "csv", **{k: str(v) for k, v in query.items()}} if form is None else query
    return await api.call("POST", IMPORT, data=body, params=params)


async def _submit(api: Api, data: bytes, **query: Any) -> int:
    answer = await _upload(api, data, **query)
    assert answer.body["success"], answer.body
    return int(answer.body["result"][0]["batchId"])


async def _status(api: Api, batch_id: int) -> dict[str, Any]:
    answer = await api.get(f"/bulk/v1/leads/batch/{batch_id}.json")
    assert answer.body["success"], answer.body
    result: dict[str, Any] = answer.body["result"][0]
    return result


async def _file(api: Api, batch_id: int, kind: str) -> Answer:
    return await api.get(f"/bulk/v1/leads/batch/{batch_id}/{kind}.json")


def _code(answer: Answer) -> str:
    return "ok" if answer.body["success"] else str(answer.body["errors"][0]["code"])


async def _state(api: Api) -> dict[str, Any]:
    state: dict[str, Any] = (await api.call("GET", "/_sandbox/state", auth=False)).body
    return state


def _leads(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {lead["email"].lower(): lead for lead in state["leads"]}


@pytest.fixture
async def bulk(start_sandbox: StartSandbox) -> Api:
    """A sandbox importing 10 rows a second per job, limits off."""
    return await start_sandbox(limits=OFF, bulk_rows_per_s=10.0)


async def test_create_answers_queued_with_batch_and_import_ids(bulk: Api) -> None:
    """The create call answers one result: batchId, importId (the same, as a string), Queued."""
    answer = await _upload(bulk, _people(3))
    assert answer.body["result"] == [{"batchId": 1, "importId": "1", "status": "Queued"}]


async def test_job_with_a_free_slot_is_importing(bulk: Api) -> None:
    """A job is Importing once a slot is free, with no row processed at its start."""
    batch_id = await _submit(bulk, _people(30))
    status = await _status(bulk, batch_id)
    assert (status["status"], status["numOfLeadsProcessed"]) == ("Importing", 0)


async def test_counters_run_while_importing(bulk: Api) -> None:
    """While Importing, numOfLeadsProcessed grows at the configured rows per second."""
    batch_id = await _submit(bulk, _people(30))
    bulk.clock.advance(1.5)
    status = await _status(bulk, batch_id)
    assert (status["status"], status["numOfLeadsProcessed"]) == ("Importing", 15)


async def test_job_completes_when_its_rows_are_done(bulk: Api) -> None:
    """A 20-row job at 10 rows/s is still Importing at 1.9 s and Complete at 2 s."""
    batch_id = await _submit(bulk, _people(20))
    bulk.clock.advance(1.9)
    before = (await _status(bulk, batch_id))["status"]
    bulk.clock.advance(0.1)
    assert [before, (await _status(bulk, batch_id))["status"]] == ["Importing", "Complete"]


async def test_complete_status_has_counters_and_message(bulk: Api) -> None:
    """Complete reports the imported count, zero failures and warnings, and Adobe's message."""
    batch_id = await _submit(bulk, _people(3))
    bulk.clock.advance(1)
    assert await _status(bulk, batch_id) == {
        "batchId": batch_id,
        "importId": str(batch_id),
        "status": "Complete",
        "numOfLeadsProcessed": 3,
        "numOfRowsFailed": 0,
        "numOfRowsWithWarning": 0,
        "message": "Import succeeded, 3 records imported (3 members)",
    }


async def test_third_job_waits_queued_behind_two(bulk: Api) -> None:
    """Two jobs import at once; the third stays Queued."""
    ids = [await _submit(bulk, _people(50, 100 * n)) for n in range(3)]
    bulk.clock.advance(1)
    assert [(await _status(bulk, i))["status"] for i in ids] == ["Importing"] * 2 + ["Queued"]


async def test_queued_job_starts_when_a_slot_frees(bulk: Api) -> None:
    """The third job starts when the first finishes, and runs at the same speed from then."""
    first = await _submit(bulk, _people(10))
    await _submit(bulk, _people(100, 100))
    third = await _submit(bulk, _people(100, 200))
    bulk.clock.advance(3)  # the first finished at 1 s; the third has run 2 s
    assert (await _status(bulk, first))["status"] == "Complete"
    assert (await _status(bulk, third))["numOfLeadsProcessed"] == 20


async def test_header_only_file_completes_with_nothing_imported(bulk: Api) -> None:
    """A file with a header and no rows completes at once, 0 records imported."""
    batch_id = await _submit(bulk, _csv(["email"]))
    status = await _status(bulk, batch_id)
    assert (status["status"], status["numOfLeadsProcessed"]) == ("Complete", 0)


async def test_job_fails_when_its_list_is_deleted_while_importing(bulk: Api) -> None:
    """An import into a list deleted mid-import goes Importing → Failed, keeping its counters."""
    list_id = await bulk.create_list("Doomed")
    batch_id = await _submit(bulk, _people(40), listId=list_id)
    bulk.clock.advance(1)
    during = (await _status(bulk, batch_id))["status"]
    await bulk.form(f"/rest/asset/v1/staticList/{list_id}/delete.json")
    bulk.clock.advance(1)
    status = await _status(bulk, batch_id)
    assert [during, status["status"], status["numOfLeadsProcessed"]] == ["Importing", "Failed", 10]


async def test_unknown_list_fails_the_job_at_creation(bulk: Api) -> None:
    """A listId that names no list gives a job that is Failed from the create call on."""
    answer = await _upload(bulk, _people(2), listId=4242)
    assert answer.body["result"][0]["status"] == "Failed"


async def test_unknown_partition_fails_the_job_at_creation(bulk: Api) -> None:
    """Only the Default partition exists: another partitionName gives a Failed job."""
    answer = await _upload(bulk, _people(2), partitionName="Mexico")
    assert answer.body["result"][0]["status"] == "Failed"


async def test_default_partition_imports(bulk: Api) -> None:
    """partitionName=Default is accepted and imports."""
    batch_id = await _submit(bulk, _people(2), partitionName="Default")
    bulk.clock.advance(1)
    assert (await _status(bulk, batch_id))["status"] == "Complete"


async def test_failed_job_frees_its_slot(bulk: Api) -> None:
    """A job that fails mid-import lets the next queued job start at that moment."""
    list_id = await bulk.create_list("Doomed")
    doomed = await _submit(bulk, _people(100), listId=list_id)
    await _submit(bulk, _people(100, 100))
    waiting = await _submit(bulk, _people(100, 200))
    bulk.clock.advance(1)
    await bulk.form(f"/rest/asset/v1/staticList/{list_id}/delete.json")
    bulk.clock.advance(1)
    assert (await _status(bulk, doomed))["status"] == "Failed"
    assert (await _status(bulk, waiting))["numOfLeadsProcessed"] == 10


async def test_eleventh_unfinished_job_gets_1016(bulk: Api) -> None:
    """With 10 jobs queued or importing, the next create call gets 1016 Too many imports."""
    for n in range(10):
        await _submit(bulk, _people(100, 1000 * n))
    answer = await _upload(bulk, _people(1, 99_999))
    assert answer.body["errors"] == [{"code": "1016", "message": "Too many imports"}]


async def test_finished_jobs_leave_room_in_the_queue(bulk: Api) -> None:
    """Once jobs complete, the queue takes new ones again."""
    for n in range(10):
        await _submit(bulk, _people(1, n))
    bulk.clock.advance(1)
    assert _code(await _upload(bulk, _people(1, 50))) == "ok"


async def test_body_of_10_000_000_bytes_is_413(bulk: Api) -> None:
    """A request body of 10,000,000 bytes gets HTTP 413, as a gateway answers it."""
    body = io.BytesIO(b"x" * MAX_BODY_BYTES)
    headers = {"Content-Type": "multipart/form-data; boundary=b"}
    answer = await bulk.call("POST", IMPORT, data=body, headers=headers, params={"format": "csv"})
    assert answer.status == 413


async def test_body_over_the_rest_limit_imports(bulk: Api) -> None:
    """A 1.5 MB import file is accepted: the 1 MB limit is the REST one."""
    data = _people(60_000)
    assert len(data) > 1_500_000
    assert _code(await _upload(bulk, data)) == "ok"


async def test_invalid_value_fails_that_row_with_a_reason(bulk: Api) -> None:
    """A text value in an integer field fails that row; the others import."""
    data = _csv(["email", "leadScore"], ["a@example.com", "7"], ["b@example.com", "TEXT"])
    batch_id = await _submit(bulk, data)
    bulk.clock.advance(1)
    status = await _status(bulk, batch_id)
    assert (status["numOfLeadsProcessed"], status["numOfRowsFailed"]) == (1, 1)
    assert status["message"] == (
        "Import completed with errors, 1 records imported (1 members), 1 failed"
    )


async def test_failures_file_echoes_the_row_and_its_reason(bulk: Api) -> None:
    """failures.json is the header plus Import Failure Reason, then each failed row as sent."""
    data = _csv(["email", "leadScore"], ["a@example.com", "7"], ["b@example.com", "TEXT"])
    batch_id = await _submit(bulk, data)
    bulk.clock.advance(1)
    answer = await _file(bulk, batch_id, "failures")
    assert list(csv.reader(io.StringIO(answer.body))) == [
        ["email", "leadScore", "Import Failure Reason"],
        ["b@example.com", "TEXT", "Invalid data type in field Lead Score"],
    ]


async def test_failures_file_is_csv_text(bulk: Api) -> None:
    """failures.json is served as text/csv;charset=UTF-8."""
    batch_id = await _submit(bulk, _csv(["email", "leadScore"], ["b@example.com", "x"]))
    bulk.clock.advance(1)
    answer = await _file(bulk, batch_id, "failures")
    assert answer.headers["Content-Type"] == "text/csv;charset=UTF-8"


async def test_invalid_email_imports_with_a_warning(bulk: Api) -> None:
    """A malformed email imports the row and lists it in warnings.json with its reason."""
    batch_id = await _submit(bulk, _csv(["email", "firstName"], ["not-an-email", "W"]))
    bulk.clock.advance(1)
    status = await _status(bulk, batch_id)
    answer = await _file(bulk, batch_id, "warnings")
    assert (status["numOfLeadsProcessed"], status["numOfRowsWithWarning"]) == (1, 1)
    assert list(csv.reader(io.StringIO(answer.body)))[1] == [
        "not-an-email",
        "W",
        "Invalid email address",
    ]


async def test_no_failures_means_404(bulk: Api) -> None:
    """failures.json of a job without failed rows is HTTP 404."""
    batch_id = await _submit(bulk, _people(2))
    bulk.clock.advance(1)
    assert (await _file(bulk, batch_id, "failures")).status == 404


async def test_no_warnings_means_404(bulk: Api) -> None:
    """warnings.json of a job without warned rows is HTTP 404."""
    batch_id = await _submit(bulk, _people(2))
    bulk.clock.advance(1)
    assert (await _file(bulk, batch_id, "warnings")).status == 404


async def test_unknown_batch_status_is_1013(bulk: Api) -> None:
    """The status of a batchId that does not exist is request-level 1013."""
    answer = await bulk.get("/bulk/v1/leads/batch/77.json")
    assert _code(answer) == "1013"


async def test_batch_ids_expire_after_seven_days(bulk: Api) -> None:
    """A finished batch is gone seven days after it was created."""
    batch_id = await _submit(bulk, _people(1))
    bulk.clock.advance(7 * 86_400 + 1)
    await bulk.login()
    assert _code(await bulk.get(f"/bulk/v1/leads/batch/{batch_id}.json")) == "1013"


async def test_rows_insert_or_update_by_email(bulk: Api) -> None:
    """A row whose email exists updates that lead; a new email creates one."""
    await bulk.sync({"email": "old@example.com", "firstName": "Old"})
    data = _csv(["email", "firstName"], ["OLD@example.com", "Renamed"], ["new@example.com", "N"])
    await _submit(bulk, data)
    bulk.clock.advance(1)
    leads = _leads(await _state(bulk))
    assert [leads["old@example.com"]["firstName"], len(leads)] == ["Renamed", 2]


async def test_other_lookup_field_dedupes_on_it(bulk: Api) -> None:
    """With lookupField=twitterId a row updates the lead with that twitterId."""
    await bulk.sync({"email": "t@example.com", "twitterId": "tw1"})
    await _submit(bulk, _csv(["twitterId", "lastName"], ["tw1", "Tweet"]), lookupField="twitterId")
    bulk.clock.advance(1)
    assert _leads(await _state(bulk))["t@example.com"]["lastName"] == "Tweet"


async def test_lookup_by_id_updates_existing_leads(bulk: Api) -> None:
    """lookupField=id updates the lead with that id."""
    [created] = await bulk.sync({"email": "i@example.com"})
    await _submit(bulk, _csv(["id", "firstName"], [str(created["id"]), "ById"]), lookupField="id")
    bulk.clock.advance(1)
    assert _leads(await _state(bulk))["i@example.com"]["firstName"] == "ById"


async def test_lookup_by_id_never_creates(bulk: Api) -> None:
    """lookupField=id is update-only: an unknown id fails its row and creates nobody."""
    batch_id = await _submit(bulk, _csv(["id", "firstName"], ["999", "Ghost"]), lookupField="id")
    bulk.clock.advance(1)
    failures = list(csv.reader(io.StringIO((await _file(bulk, batch_id, "failures")).body)))
    assert [(await _state(bulk))["leads"], failures[1][-1]] == [[], "Lead not found"]


async def test_id_column_needs_lookup_by_id(bulk: Api) -> None:
    """An id column with another lookupField is refused at submit with 1003."""
    answer = await _upload(bulk, _csv(["id", "email"], ["1", "x@example.com"]))
    assert _code(answer) == "1003"


async def test_list_id_makes_created_and_updated_rows_members(bulk: Api) -> None:
    """With listId, both a created and an updated lead become members of the list."""
    [existing] = await bulk.sync({"email": "m1@example.com"})
    list_id = await bulk.create_list("Bulk")
    data = _csv(["email"], ["m1@example.com"], ["m2@example.com"])
    await _submit(bulk, data, listId=list_id)
    bulk.clock.advance(1)
    state = await _state(bulk)
    assert state["members"][str(list_id)] == [existing["id"], _leads(state)["m2@example.com"]["id"]]


async def test_failed_rows_do_not_become_members(bulk: Api) -> None:
    """A failed row adds nobody to the list."""
    list_id = await bulk.create_list("Bulk")
    data = _csv(["email", "leadScore"], ["ok@example.com", "1"], ["bad@example.com", "x"])
    await _submit(bulk, data, listId=list_id)
    bulk.clock.advance(1)
    assert len((await _state(bulk))["members"][str(list_id)]) == 1


async def test_membership_grows_with_progress(bulk: Api) -> None:
    """Members appear as rows are processed, not all at the end."""
    list_id = await bulk.create_list("Bulk")
    await _submit(bulk, _people(30), listId=list_id)
    bulk.clock.advance(1)
    assert len((await _state(bulk))["members"][str(list_id)]) == 10


async def test_comma_quote_and_newline_arrive_intact(bulk: Api) -> None:
    """A quoted value holding a comma, a doubled quote and a newline is stored exactly."""
    name = 'Smith, Jr. "Bob"\nSecond line'
    data = _csv(["email", "lastName", "firstName"], ["q@example.com", name, "Q"])
    assert b'"Smith, Jr. ""Bob""\nSecond line"' in data
    await _submit(bulk, data)
    bulk.clock.advance(1)
    lead = _leads(await _state(bulk))["q@example.com"]
    assert (lead["lastName"], lead["firstName"]) == (name, "Q")


async def test_utf8_values_arrive_intact(bulk: Api) -> None:
    """UTF-8 names (with a byte-order mark on the file) are stored as sent."""
    data = "\ufeffemail,firstName\r\nu@example.com,Zoë Ødegård 李\r\n".encode()
    await _submit(bulk, data)
    bulk.clock.advance(1)
    assert _leads(await _state(bulk))["u@example.com"]["firstName"] == "Zoë Ødegård 李"


async def test_tsv_format_splits_on_tabs(bulk: Api) -> None:
    """format=tsv reads tab-separated columns; a comma is plain text there."""
    await _submit(bulk, b"email\tlastName\nt@example.com\tSmith, Jr.\n", format="tsv")
    bulk.clock.advance(1)
    assert _leads(await _state(bulk))["t@example.com"]["lastName"] == "Smith, Jr."


async def test_ssv_format_splits_on_semicolons(bulk: Api) -> None:
    """format=ssv reads semicolon-separated columns."""
    await _submit(bulk, b"email;lastName\ns@example.com;Semi\n", format="ssv")
    bulk.clock.advance(1)
    assert _leads(await _state(bulk))["s@example.com"]["lastName"] == "Semi"


async def test_parameters_may_come_as_form_fields(bulk: Api) -> None:
    """format and listId sent as multipart fields work like query parameters."""
    list_id = await bulk.create_list("Form")
    form = {"format": "tsv", "listId": str(list_id)}
    answer = await _upload(bulk, b"email\nf@example.com\n", form=form)
    assert _code(answer) == "ok"
    bulk.clock.advance(1)
    assert len((await _state(bulk))["members"][str(list_id)]) == 1


async def test_unknown_column_is_1006_at_submit(bulk: Api) -> None:
    """A header naming no lead field is refused by the create call with 1006."""
    answer = await _upload(bulk, _csv(["email", "shoeSize"], ["a@example.com", "9"]))
    assert answer.body["errors"] == [{"code": "1006", "message": "Field 'shoeSize' not found"}]


async def test_unsupported_lookup_field_is_1011(bulk: Api) -> None:
    """A lookupField that is not searchable is refused with 1011."""
    assert _code(await _upload(bulk, _people(1), lookupField="firstName")) == "1011"


async def test_unknown_format_is_1003(bulk: Api) -> None:
    """A format other than csv, tsv or ssv is refused with 1003."""
    assert _code(await _upload(bulk, _people(1), format="xlsx")) == "1003"


async def test_missing_file_part_is_701(bulk: Api) -> None:
    """A multipart body without a `file` part is refused with 701."""
    body = aiohttp.FormData(default_to_multipart=True)
    body.add_field("format", "csv")
    assert _code(await bulk.call("POST", IMPORT, data=body)) == "701"


async def test_json_body_is_612(bulk: Api) -> None:
    """A JSON body instead of multipart is 612 Invalid Content Type."""
    assert _code(await bulk.post(IMPORT, {"input": []})) == "612"


async def test_malformed_multipart_is_613(bulk: Api) -> None:
    """A multipart body that does not follow its boundary is 613."""
    headers = {"Content-Type": "multipart/form-data; boundary=zz"}
    answer = await bulk.call("POST", IMPORT, data=b"garbage", headers=headers)
    assert _code(answer) == "613"


async def test_row_with_wrong_column_count_fails(bulk: Api) -> None:
    """A row with more values than the header fails with a reason; the file is not refused."""
    batch_id = await _submit(bulk, b"email\na@example.com,extra\n")
    bulk.clock.advance(1)
    assert (await _status(bulk, batch_id))["numOfRowsFailed"] == 1


async def test_every_bulk_call_counts_against_the_window(start_sandbox: StartSandbox) -> None:
    """Create, status and a failures download each count as a call: the 4th in the window is 606."""
    api = await start_sandbox(limits=LimitConfig(calls_per_window=3, window_s=20))
    batch_id = await _submit(api, _people(1))
    await api.get(f"/bulk/v1/leads/batch/{batch_id}.json")
    await _file(api, batch_id, "failures")
    assert _code(await _upload(api, _people(1, 5))) == "606"


async def test_every_bulk_call_counts_against_the_quota(api: Api) -> None:
    """Create, status, failures and warnings downloads each add one to today's quota."""
    before = api.sandbox.gate.quota.used_today(api.wall())
    batch_id = await _submit(api, _people(1))
    await _status(api, batch_id)
    await _file(api, batch_id, "failures")
    await _file(api, batch_id, "warnings")
    assert api.sandbox.gate.quota.used_today(api.wall()) - before == 4


async def test_spent_quota_refuses_an_import_with_607(start_sandbox: StartSandbox) -> None:
    """With the quota spent, a create call gets 607 and queues nothing."""
    api = await start_sandbox(limits=LimitConfig(daily_quota=1))
    await api.get("/rest/v1/leads/describe.json")
    answer = await _upload(api, _people(1))
    assert [_code(answer), (await _state(api))["bulkImports"]] == ["607", []]


async def test_bulk_call_beyond_concurrency_is_615(start_sandbox: StartSandbox) -> None:
    """With the concurrency limit in flight, a bulk create gets 615."""
    api = await start_sandbox(limits=LimitConfig(concurrency=1), faults=Faults(latency_ms=1500))
    slow = asyncio.create_task(api.get("/rest/v1/leads/describe.json"))
    deadline = time.monotonic() + 5
    while api.sandbox.gate.concurrency.in_flight < 1:
        assert time.monotonic() < deadline, "the slow call never got in flight"
        await asyncio.sleep(0.01)
    refused = await _upload(api, _people(1))
    await slow
    assert _code(refused) == "615"


async def test_admin_state_lists_the_jobs(bulk: Api) -> None:
    """/_sandbox/state has each job with its parameters, size and timing."""
    list_id = await bulk.create_list("Seen")
    await _submit(bulk, _people(20), listId=list_id)
    bulk.clock.advance(1)
    [job] = (await _state(bulk))["bulkImports"]
    assert (job["status"], job["listId"], job["rows"], job["startedAt"]) == (
        "Importing",
        list_id,
        20,
        1000.0,
    )


async def test_stats_name_the_bulk_endpoints(bulk: Api) -> None:
    """/_sandbox/stats counts bulk calls under their own endpoint names."""
    batch_id = await _submit(bulk, _people(1))
    await _status(bulk, batch_id)
    calls = (await bulk.call("GET", "/_sandbox/stats", auth=False)).body["calls"]
    assert (calls["importLeads"], calls["importLeadStatus"]) == ({"ok": 1}, {"ok": 1})


def test_rows_per_second_comes_from_the_command_line() -> None:
    """--bulk-rows-per-s sets the import speed; the default is the documented one."""
    args = ["--client-id", "i", "--client-secret", "s", "--bulk-rows-per-s", "250"]
    parsed = cli.config_from(cli._parser().parse_args(args), 0.0)
    default = cli.config_from(cli._parser().parse_args(args[:4]), 0.0)
    assert (parsed.bulk_rows_per_s, default.bulk_rows_per_s) == (250.0, DEFAULT_ROWS_PER_S)


async def test_create_matches_the_swagger_schema(bulk: Api) -> None:
    """The create response validates against ResponseOfImportLeadResponse."""
    matches(MAPI, SHAPE, (await _upload(bulk, _people(1))).body)


async def test_importing_status_matches_the_swagger_schema(bulk: Api) -> None:
    """An Importing status validates against ResponseOfImportLeadResponse, counters included."""
    batch_id = await _submit(bulk, _people(20))
    answer = await bulk.get(f"/bulk/v1/leads/batch/{batch_id}.json")
    matches(MAPI, SHAPE, answer.body)
    assert "numOfLeadsProcessed" in answer.body["result"][0]


async def test_complete_status_matches_the_swagger_schema(bulk: Api) -> None:
    """A Complete status with failures validates against ResponseOfImportLeadResponse."""
    batch_id = await _submit(bulk, _csv(["email", "leadScore"], ["b@example.com", "x"]))
    bulk.clock.advance(1)
    matches(MAPI, SHAPE, (await bulk.get(f"/bulk/v1/leads/batch/{batch_id}.json")).body)


async def test_1016_matches_the_swagger_schema(bulk: Api) -> None:
    """The 1016 refusal validates against ResponseOfImportLeadResponse."""
    for n in range(10):
        await _submit(bulk, _people(100, 1000 * n))
    matches(MAPI, SHAPE, (await _upload(bulk, _people(1, 99_999))).body)


def _quietly(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a client call ignoring the ResourceWarning of the upload file it never closes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        return call(*args, **kwargs)


async def test_third_party_client_imports_unchanged(bulk: Api, tmp_path: Path) -> None:
    """marketorestpython's import, status and failures calls work against the sandbox as is."""
    from marketorestpython.client import MarketoClient  # type: ignore[import-untyped]

    client = MarketoClient("sandbox", CLIENT_ID, CLIENT_SECRET)
    client.host = bulk.url
    file = tmp_path / "leads.csv"
    file.write_bytes(_csv(["email", "leadScore"], ["c@example.com", "3"], ["d@example.com", "x"]))
    list_id = await bulk.create_list("Client")
    [created] = await asyncio.to_thread(
        _quietly, client.import_lead, "csv", str(file), listId=list_id
    )
    bulk.clock.advance(1)
    [status] = await asyncio.to_thread(client.get_import_lead_status, created["batchId"])
    text = await asyncio.to_thread(client.get_import_failure_file, created["batchId"])
    assert (created["status"], status["status"], status["numOfRowsFailed"]) == (
        "Queued",
        "Complete",
        1,
    )
    assert text.splitlines()[1] == "d@example.com,x,Invalid data type in field Lead Score"
    assert len((await _state(bulk))["members"][str(list_id)]) == 1
