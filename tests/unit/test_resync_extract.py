"""How `resync` reads a list by bulk extract, against the scripted fake of Marketo: the lane
chosen, status reads with backoff, a full queue, giving up, interruption, the file in ranges.

The extract against a faithful Marketo (the sandbox) is in tests/integration/test_resync.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import random
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import cast

import orjson
import pytest
from pydantic import SecretStr

from tests.fakes import FakeClock, FakeMarketo, RecordingLimiter, ServeMarketo, ok
from worker.commands import resync as resync_command
from worker.commands.exit_codes import ExitCode
from worker.commands.resync import ListReader
from worker.core.extract_plan import ExtractPlan
from worker.core.ids import ListId
from worker.errors import MarketoError
from worker.marketo.client import MarketoClient
from worker.marketo.transport import Transport
from worker.settings import Settings

JOB_ID = "0b6b5e8a-7c1f-4b8e-9a39-2b4f1d6a0c11"
JOB = f"/bulk/v1/leads/export/{JOB_ID}"
CREATE = "/bulk/v1/leads/export/create.json"
MEMBERS = "/rest/v1/lists/9/leads.json"
FILE = b"id,email\r\n1,a@x.io\r\n2,null\r\n"
ROWS = [{"id": 1, "email": "a@x.io"}, {"id": 2, "email": None}]
LIST = ListId(9)


def job(status: str, **extra: object) -> tuple[int, bytes]:
    """An export job answer."""
    return ok([{"exportId": JOB_ID, "format": "CSV", "status": status, **extra}])


def completed(data: bytes = FILE, **extra: object) -> tuple[int, bytes]:
    """A completed job's status with its file's figures."""
    checksum = "sha256:" + hashlib.sha256(data).hexdigest()
    figures = {"numberOfRecords": data.count(b"\n") - 1, "fileSize": len(data)}
    return job("Completed", **{**figures, "fileChecksum": checksum, **extra})


def limited(message: str) -> tuple[int, bytes]:
    """A 1029 answer with Marketo's message."""
    errors = [{"code": "1029", "message": message}]
    return 200, orjson.dumps({"requestId": "r", "success": False, "errors": errors})


@dataclass
class Rig:
    """A list reader on the fake; `waits` are the reader's own sleeps (the fake clock moves)."""

    fake: FakeMarketo
    client: MarketoClient
    clock: FakeClock
    waits: list[float] = field(default_factory=list)
    interrupt_at: int | None = None  # the wait (0-based) at which a Ctrl-C arrives

    def reader(self, plan: ExtractPlan | None = None) -> ListReader:
        """A reader with `plan` (Marketo's figures by default) and the fake clock."""
        return ListReader(self.client, plan or ExtractPlan(), sleep=self.sleep, clock=self.clock)

    async def sleep(self, delay_s: float) -> None:
        """Let `delay_s` pass at once, or be interrupted there."""
        if self.interrupt_at == len(self.waits):
            raise asyncio.CancelledError
        self.waits.append(delay_s)
        self.clock.advance(delay_s)

    def script_job(self, *statuses: tuple[int, bytes], data: bytes = FILE) -> None:
        """Create and enqueue answer; the status reads answer `statuses`; the file is `data`."""
        self.fake.script(CREATE, job("Created"))
        self.fake.script(f"{JOB}/enqueue.json", job("Queued"))
        self.fake.script(f"{JOB}/status.json", *statuses)
        self.fake.script(f"{JOB}/file.json", (200, data))
        self.fake.media[f"{JOB}/file.json"] = "text/csv"

    def count(self, verb: str) -> int:
        """Requests seen on the job's `verb` endpoint."""
        return len(self.fake.calls(f"{JOB}/{verb}.json"))


@pytest.fixture
async def rig(serve_marketo: ServeMarketo) -> AsyncIterator[Rig]:
    """A client on a fresh fake; the transport's own backoff sleeps pass at once."""
    fake = FakeMarketo()
    url = await serve_marketo(fake)
    clock = FakeClock(1000.0)

    async def no_wait(delay_s: float) -> None:
        await asyncio.sleep(0)

    transport = Transport(
        url,
        SecretStr("id"),
        SecretStr("secret"),
        RecordingLimiter(),
        timeout_s=0.5,
        clock=clock,
        sleep=no_wait,
        rng=random.Random(1),
    )
    client = MarketoClient(transport)
    try:
        yield Rig(fake, client, clock)
    finally:
        await client.close()


async def test_an_extract_reads_the_file_into_rows_of_id_and_email(rig: Rig) -> None:
    """The file's text ids become numbers, as REST pages give them; `null` is no email."""
    rig.script_job(completed())
    assert await rig.reader().extract(LIST) == ROWS
    (create,) = rig.fake.calls(CREATE)
    assert orjson.loads(create.body)["fields"] == ["id", "email"]


async def test_status_reads_back_off_from_the_refresh_to_five_minutes(rig: Rig) -> None:
    """Each read waits a refresh, then twice as long, never more than 5 minutes."""
    rig.script_job(*[job("Processing")] * 4, completed())
    await rig.reader().extract(LIST)
    assert (rig.waits, rig.count("status")) == ([60, 120, 240, 300, 300], 5)


async def test_a_job_not_done_by_the_deadline_is_cancelled(rig: Rig) -> None:
    """Giving up cancels the job and is a MarketoError (exit 1) naming the option."""
    rig.script_job(*[job("Queued")] * 5)
    with pytest.raises(MarketoError, match="--bulk-wait-s 500"):
        await rig.reader(ExtractPlan(deadline_s=500)).extract(LIST)
    assert (rig.waits, rig.count("cancel")) == ([60, 120, 240], 1)


async def test_an_interruption_while_waiting_cancels_the_job(rig: Rig) -> None:
    """Ctrl-C (or SIGTERM, which cancels the run) between status reads cancels the job."""
    rig.script_job(job("Processing"), completed())
    rig.interrupt_at = 1
    with pytest.raises(asyncio.CancelledError):
        await rig.reader().extract(LIST)
    assert (rig.count("status"), rig.count("cancel"), rig.count("file")) == (1, 1, 0)


async def test_a_full_queue_is_waited_for_then_the_job_is_enqueued(rig: Rig) -> None:
    """1029 "Too many jobs in queue" waits with backoff and enqueues again."""
    rig.fake.script(f"{JOB}/enqueue.json", *[limited("Too many jobs in queue")] * 2)
    rig.script_job(completed())
    assert await rig.reader().extract(LIST) == ROWS
    assert (rig.waits, rig.count("enqueue")) == ([60, 120, 60], 3)


async def test_a_queue_still_full_after_the_tries_is_a_clear_error(rig: Rig) -> None:
    """The job created is cancelled and the error says to run again later."""
    rig.fake.script(f"{JOB}/enqueue.json", *[limited("Too many jobs in queue")] * 3)
    rig.script_job()
    with pytest.raises(MarketoError, match="queue was still full after 2 waits"):
        await rig.reader(ExtractPlan(limited_tries=2)).extract(LIST)
    assert (rig.count("enqueue"), rig.count("cancel")) == (3, 1)


async def test_the_daily_allocation_spent_is_a_clear_error_at_once(rig: Rig) -> None:
    """Waiting until midnight is no option for a repair: no wait, the job cancelled."""
    rig.fake.script(f"{JOB}/enqueue.json", limited("Export daily quota exceeded"))
    rig.script_job()
    with pytest.raises(MarketoError, match="daily bulk extract allocation"):
        await rig.reader().extract(LIST)
    assert (rig.waits, rig.count("enqueue"), rig.count("cancel")) == ([], 1, 1)


async def test_a_failed_job_is_an_error_with_marketos_message(rig: Rig) -> None:
    """A Failed job has ended: nothing to cancel."""
    rig.script_job(job("Failed", errorMsg="list deleted"))
    with pytest.raises(MarketoError, match="list deleted"):
        await rig.reader().extract(LIST)
    assert rig.count("cancel") == 0


async def test_a_large_file_is_read_in_byte_ranges(rig: Rig) -> None:
    """A file over the range size is downloaded as consecutive `Range` requests."""
    parts = [FILE[:10], FILE[10:20], FILE[20:]]
    rig.script_job(completed())
    rig.fake.scripts[f"{JOB}/file.json"] = [(206, part) for part in parts]
    assert await rig.reader(ExtractPlan(range_bytes=10)).extract(LIST) == ROWS
    ranges = [seen.headers["Range"] for seen in rig.fake.calls(f"{JOB}/file.json")]
    assert ranges == ["bytes=0-9", "bytes=10-19", f"bytes=20-{len(FILE) - 1}"]


async def test_a_file_that_does_not_match_its_checksum_is_an_error(rig: Rig) -> None:
    """A file damaged on the way is never compared with the audience."""
    rig.script_job(completed(fileChecksum="sha256:" + "0" * 64))
    with pytest.raises(MarketoError, match="checksum"):
        await rig.reader().extract(LIST)


async def test_a_small_audience_reads_its_list_by_rest_pages(rig: Rig) -> None:
    """At or below the line, REST pages and no extract."""
    rig.fake.script(MEMBERS, ok([{"id": 1, "email": "a@x.io"}]))
    rows = await rig.reader(ExtractPlan(bulk_above=2)).members(LIST, desired=2)
    assert (rows, rig.fake.calls(CREATE)) == ([{"id": 1, "email": "a@x.io"}], [])


async def test_a_large_audience_extracts_its_list_without_paging(rig: Rig) -> None:
    """Above the line, the list is extracted at once."""
    rig.script_job(completed())
    assert await rig.reader(ExtractPlan(bulk_above=2)).members(LIST, desired=3) == ROWS
    assert rig.fake.calls(MEMBERS) == []


async def test_a_list_larger_than_its_audience_switches_to_an_extract(rig: Rig) -> None:
    """Paging stops once the members read pass the line; the extract reads the whole list."""
    page: list[object] = [{"id": 7, "email": "p@x.io"}, {"id": 8, "email": "q@x.io"}]
    rig.fake.script(MEMBERS, *[ok(page, nextPageToken="t")] * 3)
    rig.script_job(completed())
    assert await rig.reader(ExtractPlan(bulk_above=3)).members(LIST, desired=1) == ROWS
    assert len(rig.fake.calls(MEMBERS)) == 2


async def test_sigterm_cancels_the_run_as_ctrl_c_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM cancels the resync task as Ctrl-C does, so an extract in progress is cancelled."""
    started = asyncio.Event()

    async def waits_forever(*_args: object) -> ExitCode:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("never reached")

    monkeypatch.setattr(resync_command, "_resync", waits_forever)
    run = asyncio.ensure_future(
        resync_command.resync(cast(Settings, None), [], dry_run=True, out=io.StringIO())
    )
    await started.wait()
    os.kill(os.getpid(), signal.SIGTERM)
    with pytest.raises(asyncio.CancelledError):
        await run
