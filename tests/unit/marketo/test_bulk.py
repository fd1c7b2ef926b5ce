"""BulkClient's request shapes and answer parsing against a scripted fake of Marketo.

The fake (aiohttp's test server on 127.0.0.1) scripts the edge cases; the calls against a
faithful Marketo are in tests/integration/test_marketo_bulk_client.py, with the sandbox.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP

import orjson
import pytest
from pydantic import SecretStr

from tests.fakes import FakeClock, FakeMarketo, RecordingLimiter, ServeMarketo, fail, ok
from worker.core.ids import ListId
from worker.errors import (
    BatchNotFound,
    ExportFileMissing,
    ExportLimited,
    ImportQueueFull,
    ImportTooLarge,
    RequestRejected,
)
from worker.marketo.bulk import BulkClient
from worker.marketo.responses import ExportState, ImportState
from worker.marketo.transport import Transport

IMPORT = "/bulk/v1/leads.json"
STATUS = "/bulk/v1/leads/batch/5.json"
FAILURES = "/bulk/v1/leads/batch/5/failures.json"
JOB_ID = "0b6b5e8a-7c1f-4b8e-9a39-2b4f1d6a0c11"
JOB = f"/bulk/v1/leads/export/{JOB_ID}"
CSV = b"email,firstName\r\na@x.io,A\r\n"
QUEUED = ok([{"batchId": 5, "importId": "5", "status": "Queued"}])


class Observed:
    """The transport's metric hook: each request's endpoint and outcome."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []

    def request(self, endpoint: str, outcome: str, duration_s: float | None) -> None:
        """Keep the request."""
        self.requests.append((endpoint, outcome))

    def records(self, endpoint: str, status: str, count: int) -> None:
        """Bulk calls report no records."""


@dataclass
class Rig:
    """A bulk client wired to the fake, with its limiter and metric hook."""

    fake: FakeMarketo
    bulk: BulkClient
    limiter: RecordingLimiter
    observed: Observed


@pytest.fixture
async def rig(serve_marketo: ServeMarketo) -> AsyncIterator[Rig]:
    """A bulk client against a fresh fake; backoff sleeps pass at once."""
    fake = FakeMarketo()
    url = await serve_marketo(fake)
    limiter, observed, clock = RecordingLimiter(), Observed(), FakeClock(1000.0)

    async def no_wait(delay_s: float) -> None:
        clock.advance(delay_s)
        await asyncio.sleep(0)

    transport = Transport(
        url,
        SecretStr("id"),
        SecretStr("secret"),
        limiter,
        timeout_s=0.5,
        clock=clock,
        sleep=no_wait,
        observer=observed,
        rng=random.Random(1),
    )
    try:
        yield Rig(fake, BulkClient(transport), limiter, observed)
    finally:
        await transport.close()


def form_of(content_type: str, body: bytes) -> Message:
    """The multipart body as the email package parses it."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    return BytesParser(policy=HTTP).parsebytes(head + body)


async def test_an_import_is_a_multipart_file_with_its_parameters_in_the_query(rig: Rig) -> None:
    """The file part has a filename and text/csv; format, lookupField, listId are query params."""
    rig.fake.script(IMPORT, QUEUED)
    assert await rig.bulk.import_leads(CSV, lookup_field="email", list_id=ListId(9)) == 5
    (seen,) = rig.fake.calls(IMPORT)
    assert seen.query == {"format": ["csv"], "lookupField": ["email"], "listId": ["9"]}
    parts = form_of(seen.headers["Content-Type"], seen.body).get_payload()
    assert isinstance(parts, list)
    (part,) = parts
    assert isinstance(part, Message)
    assert part.get_param("name", header="content-disposition") == "file"
    assert part.get_filename() == "leads.csv"
    assert b"\r\nContent-Type: text/csv;charset=UTF-8\r\n" in seen.body
    assert part.get_payload(decode=True) == CSV


async def test_1016_is_import_queue_full_and_not_retried(rig: Rig) -> None:
    """A full import queue means wait: ImportQueueFull at once, one request sent."""
    rig.fake.script(IMPORT, fail("1016"))
    with pytest.raises(ImportQueueFull):
        await rig.bulk.import_leads(CSV, lookup_field="email")
    assert len(rig.fake.calls(IMPORT)) == 1
    assert rig.observed.requests[-1] == ("bulk_import", "queue_full")


async def test_http_413_is_import_too_large(rig: Rig) -> None:
    """Marketo's 413 is a non-retriable ImportTooLarge, sent once."""
    rig.fake.script(IMPORT, (413, b"<html>413</html>"))
    with pytest.raises(ImportTooLarge) as refused:
        await rig.bulk.import_leads(CSV, lookup_field="email")
    assert not refused.value.retriable
    assert len(rig.fake.calls(IMPORT)) == 1


async def test_a_body_of_10_mb_is_refused_before_it_is_sent(rig: Rig) -> None:
    """An import Marketo would answer 413 spends no call."""
    with pytest.raises(ImportTooLarge, match="split"):
        await rig.bulk.import_leads(b"x" * 10_000_000, lookup_field="email")
    assert rig.fake.calls(IMPORT) == []


async def test_an_import_status_ignores_unknown_fields(rig: Rig) -> None:
    """Fields Marketo may add are ignored; the counters are read."""
    item = {"batchId": 5, "status": "Importing", "numOfLeadsProcessed": 2, "numOfRowsFailed": 1}
    rig.fake.script(STATUS, ok([{**item, "numOfRowsWithWarning": 3, "shiny": True}]))
    status = await rig.bulk.import_status(5)
    assert (status.status, status.leads_processed, status.rows_failed) == (
        ImportState.IMPORTING,
        2,
        1,
    )
    assert (status.rows_warned, status.message) == (3, None)


async def test_an_import_status_without_its_status_names_the_call_and_field(rig: Rig) -> None:
    """A missing required field is a RequestRejected naming the call and the field."""
    rig.fake.script(STATUS, ok([{"batchId": 5}]))
    with pytest.raises(RequestRejected, match=r"bulk_import_status.*status"):
        await rig.bulk.import_status(5)


async def test_an_unknown_import_status_value_is_an_error(rig: Rig) -> None:
    """A status outside Queued/Importing/Complete/Failed is never guessed at."""
    rig.fake.script(STATUS, ok([{"batchId": 5, "status": "Paused"}]))
    with pytest.raises(RequestRejected, match="bulk_import_status"):
        await rig.bulk.import_status(5)


async def test_1013_on_an_import_status_is_batch_not_found(rig: Rig) -> None:
    """A batch Marketo does not know (expired after 7 days) is BatchNotFound."""
    rig.fake.script(STATUS, fail("1013"))
    with pytest.raises(BatchNotFound):
        await rig.bulk.import_status(5)


async def test_no_failures_file_is_none(rig: Rig) -> None:
    """Marketo's 404 on the failures file is no file, not an error."""
    rig.fake.script(FAILURES, (404, b"Not Found"))
    assert await rig.bulk.import_failures(5) is None


async def test_a_failures_file_is_its_raw_bytes(rig: Rig) -> None:
    """A text/csv answer is the file itself, not an envelope."""
    data = b"email,Import Failure Reason\r\na@x.io,Lead not found\r\n"
    rig.fake.script(FAILURES, (200, data))
    rig.fake.media[FAILURES] = "text/csv"
    assert await rig.bulk.import_failures(5) == data


async def test_a_606_on_a_file_is_retried_like_a_rest_call(rig: Rig) -> None:
    """A throttled file download (JSON envelope) backs off and is sent again."""
    rig.fake.script(FAILURES, fail("606"), (200, b"email,Import Failure Reason\r\n"))
    rig.fake.media[FAILURES] = "text/csv"
    assert await rig.bulk.import_failures(5) == b"email,Import Failure Reason\r\n"
    assert rig.limiter.rate_limited_codes == ["606"]


async def test_a_json_success_where_a_file_was_expected_is_refused(rig: Rig) -> None:
    """A file endpoint answering an envelope of success is not taken for a file."""
    rig.fake.script(FAILURES, ok([]))
    with pytest.raises(RequestRejected, match="file"):
        await rig.bulk.import_failures(5)


async def test_every_bulk_request_takes_a_budget_slot(rig: Rig) -> None:
    """Create, status and file requests each hold one limiter slot, under its own endpoint."""
    rig.fake.script(IMPORT, QUEUED)
    rig.fake.script(STATUS, ok([{"batchId": 5, "status": "Queued"}]))
    rig.fake.script(FAILURES, (404, b""))
    await rig.bulk.import_leads(CSV, lookup_field="email")
    await rig.bulk.import_status(5)
    await rig.bulk.import_failures(5)
    assert rig.limiter.slots == 3
    assert [e for e, _ in rig.observed.requests if e != "identity"] == [
        "bulk_import",
        "bulk_import_status",
        "bulk_import_failures",
    ]


def job(status: str, **extra: object) -> tuple[int, bytes]:
    """An export job answer."""
    return ok([{"exportId": JOB_ID, "format": "CSV", "status": status, **extra}])


async def test_an_export_is_created_with_its_fields_and_list_filter(rig: Rig) -> None:
    """The create body is Marketo's ExportLeadRequest JSON; the answer's id is returned."""
    rig.fake.script("/bulk/v1/leads/export/create.json", job("Created"))
    export_id = await rig.bulk.export_create(["id", "email"], static_list_id=ListId(12))
    assert export_id == JOB_ID
    (seen,) = rig.fake.calls("/bulk/v1/leads/export/create.json")
    assert orjson.loads(seen.body) == {
        "fields": ["id", "email"],
        "format": "CSV",
        "filter": {"staticListId": 12},
    }


async def test_an_export_needs_exactly_one_list_filter() -> None:
    """Both filters, or none, is a caller's mistake caught before a call."""
    bulk = BulkClient(
        Transport("http://127.0.0.1:9", SecretStr("i"), SecretStr("s"), RecordingLimiter())
    )
    with pytest.raises(ValueError, match="exactly one"):
        await bulk.export_create(["id"])


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("Too many jobs in queue", "queue_full"),
        ("Export daily quota exceeded", "daily_allocation"),
    ],
)
async def test_1029_is_export_limited_with_its_reason(rig: Rig, message: str, reason: str) -> None:
    """1029 says which limit: the queue or the daily file allocation."""
    errors = [{"code": "1029", "message": message}]
    body = orjson.dumps({"requestId": "r", "success": False, "errors": errors})
    rig.fake.script(f"{JOB}/enqueue.json", (200, body))
    with pytest.raises(ExportLimited) as limited:
        await rig.bulk.export_enqueue(JOB_ID)
    assert (limited.value.reason, limited.value.retriable) == (reason, True)


async def test_an_enqueue_answered_already_queued_reads_the_status(rig: Rig) -> None:
    """A retried enqueue whose first attempt landed is answered with the job's status."""
    errors = [{"code": "1029", "message": "Job already queued"}]
    body = orjson.dumps({"requestId": "r", "success": False, "errors": errors})
    rig.fake.script(f"{JOB}/enqueue.json", (200, body))
    rig.fake.script(f"{JOB}/status.json", job("Queued", queuedAt="2024-05-01T10:00:00Z"))
    status = await rig.bulk.export_enqueue(JOB_ID)
    assert (status.status, status.queued_at) == (ExportState.QUEUED, "2024-05-01T10:00:00Z")


@pytest.mark.parametrize("spelling", ["Canceled", "Cancelled"])
async def test_both_spellings_of_cancelled_are_one_state(rig: Rig, spelling: str) -> None:
    """Marketo's spec and its example spell it differently."""
    rig.fake.script(f"{JOB}/cancel.json", job(spelling))
    assert (await rig.bulk.export_cancel(JOB_ID)).status is ExportState.CANCELLED


async def test_a_completed_export_status_has_the_file_figures(rig: Rig) -> None:
    """numberOfRecords, fileSize and fileChecksum are read once Completed."""
    rig.fake.script(
        f"{JOB}/status.json",
        job("Completed", numberOfRecords=3, fileSize=60, fileChecksum="sha256:ab"),
    )
    status = await rig.bulk.export_status(JOB_ID)
    assert (status.number_of_records, status.file_size, status.file_checksum) == (
        3,
        60,
        "sha256:ab",
    )


async def test_an_export_file_range_is_sent_as_a_range_header(rig: Rig) -> None:
    """A byte range becomes `Range: bytes=a-b` and the 206 body is returned."""
    rig.fake.script(f"{JOB}/file.json", (206, b"id,em"))
    rig.fake.media[f"{JOB}/file.json"] = "text/csv"
    assert await rig.bulk.export_file(JOB_ID, (0, 4)) == b"id,em"
    (seen,) = rig.fake.calls(f"{JOB}/file.json")
    assert seen.headers["Range"] == "bytes=0-4"


async def test_a_range_ignored_by_the_server_is_cut_locally(rig: Rig) -> None:
    """A 200 with the whole file answers a range with the bytes asked for."""
    rig.fake.script(f"{JOB}/file.json", (200, b"id,email\r\n1,a@x.io\r\n"))
    rig.fake.media[f"{JOB}/file.json"] = "text/csv"
    assert await rig.bulk.export_file(JOB_ID, (3, None)) == b"email\r\n1,a@x.io\r\n"


async def test_a_missing_export_file_is_export_file_missing(rig: Rig) -> None:
    """A 404 on an export's file (not completed, expired) is ExportFileMissing."""
    rig.fake.script(f"{JOB}/file.json", (404, b"Export job not found"))
    rig.fake.media[f"{JOB}/file.json"] = "text/plain"
    with pytest.raises(ExportFileMissing):
        await rig.bulk.export_file(JOB_ID)


async def test_an_export_id_that_would_change_the_path_is_refused(rig: Rig) -> None:
    """An id with a slash never reaches a URL."""
    with pytest.raises(ValueError, match="export id"):
        await rig.bulk.export_status("../../rest/v1/leads")
