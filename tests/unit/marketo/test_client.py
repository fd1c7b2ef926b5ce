"""MarketoClient retry, backoff, token and request-shape logic against a scripted fake of Marketo.

The fake (aiohttp's test server on 127.0.0.1) is for these fast unit tests only; behaviour against
a faithful Marketo is checked in tests/integration/test_marketo_client.py with the sandbox.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs

import aiohttp
import orjson
import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from tests.fakes import IDENTITY, FakeClock, FakeMarketo, RecordingLimiter, ServeMarketo, fail, ok
from worker.core.ids import LeadId, ListId
from worker.errors import (
    CallAbandoned,
    MarketoUnavailable,
    QuotaExhausted,
    RequestRejected,
    TokenExpired,
)
from worker.marketo.client import MarketoClient
from worker.marketo.transport import Transport

SECRET = "s3cret-value"
LEADS = "/rest/v1/leads.json"
MEMBERS = "/rest/v1/lists/77/leads.json"
ADDED = ok([{"id": 1, "status": "added"}])


class RecordingSleep:
    """Records requested delays and advances the fake clock instead of waiting."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.delays: list[float] = []

    async def __call__(self, delay_s: float) -> None:
        self.delays.append(delay_s)
        self.clock.advance(delay_s)
        await asyncio.sleep(0)


class RecordingObserver:
    """Collects metric hook calls."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.durations: list[tuple[str, float | None]] = []
        self.record_counts: dict[tuple[str, str], int] = {}

    def request(self, endpoint: str, outcome: str, duration_s: float | None) -> None:
        """Record one request outcome and its duration."""
        self.requests.append((endpoint, outcome))
        self.durations.append((endpoint, duration_s))

    def records(self, endpoint: str, status: str, count: int) -> None:
        """Record per-record statuses."""
        self.record_counts[(endpoint, status)] = count


@dataclass
class Rig:
    """A client wired to the fake, with its recording collaborators."""

    fake: FakeMarketo
    url: str
    client: MarketoClient
    limiter: RecordingLimiter
    clock: FakeClock
    sleep: RecordingSleep
    observer: RecordingObserver


@pytest.fixture
async def rig(serve_marketo: ServeMarketo) -> AsyncIterator[Rig]:
    """A client against a fresh fake on 127.0.0.1."""
    fake = FakeMarketo()
    url = await serve_marketo(fake)
    limiter, clock, observer = RecordingLimiter(), FakeClock(1000.0), RecordingObserver()
    sleep = RecordingSleep(clock)
    client = MarketoClient(
        Transport(
            url,
            SecretStr("client-id"),
            SecretStr(SECRET),
            limiter,
            timeout_s=0.5,
            clock=clock,
            sleep=sleep,
            observer=observer,
            rng=random.Random(7),
        )
    )
    try:
        yield Rig(fake, url, client, limiter, clock, sleep, observer)
    finally:
        fake.hang.set()
        await client.close()


async def add_one(rig: Rig) -> object:
    """Add lead 1 to list 77."""
    return await rig.client.add_to_list(ListId(77), [LeadId(1)])


async def test_token_is_posted_as_a_form_and_sent_only_as_a_bearer_header(rig: Rig) -> None:
    """The secret travels in a POST form body, and the token only in the Authorization header."""
    rig.fake.script(MEMBERS, ADDED)
    await add_one(rig)
    (identity,) = rig.fake.calls(IDENTITY)
    assert identity.method == "POST"
    assert SECRET not in str(identity.query)
    assert parse_qs(identity.body.decode())["client_secret"] == [SECRET]
    (call,) = rig.fake.calls(MEMBERS)
    assert call.headers["Authorization"] == "Bearer tok-1"
    assert "access_token" not in call.query


async def test_token_is_reused_across_calls(rig: Rig) -> None:
    """Two calls within the token's lifetime need one identity call."""
    rig.fake.script(MEMBERS, ADDED, ADDED)
    await add_one(rig)
    await add_one(rig)
    assert len(rig.fake.calls(IDENTITY)) == 1


async def test_token_is_renewed_when_less_than_a_minute_remains(rig: Rig) -> None:
    """A token with under 60 s left is replaced before the next call."""
    rig.fake.tokens = [("tok-1", 100), ("tok-2", 3600)]
    rig.fake.script(MEMBERS, ADDED, ADDED)
    await add_one(rig)
    rig.clock.advance(45)
    await add_one(rig)
    assert rig.fake.calls(MEMBERS)[1].headers["Authorization"] == "Bearer tok-2"


async def test_reissued_token_is_not_asked_for_again_before_it_expires(rig: Rig) -> None:
    """When identity hands back the same token early, the client keeps it rather than looping."""
    rig.fake.tokens = [("tok-1", 100), ("tok-1", 50), ("tok-2", 3600)]
    rig.fake.script(MEMBERS, ADDED, ADDED, ADDED)
    await add_one(rig)
    rig.clock.advance(50)
    await add_one(rig)
    await add_one(rig)
    assert len(rig.fake.calls(IDENTITY)) == 2


async def test_invalid_token_is_renewed_once_and_the_call_retried(rig: Rig) -> None:
    """A 601 costs one identity call and one retry, and the retry uses the new token."""
    rig.fake.tokens = [("tok-1", 3600), ("tok-2", 3600)]
    rig.fake.script(MEMBERS, fail("601"), ADDED)
    await add_one(rig)
    assert len(rig.fake.calls(MEMBERS)) == 2
    assert rig.fake.calls(MEMBERS)[1].headers["Authorization"] == "Bearer tok-2"
    assert len(rig.fake.calls(IDENTITY)) == 2


async def test_second_invalid_token_is_raised_not_looped(rig: Rig) -> None:
    """601 after a renewal raises TokenExpired instead of renewing again."""
    rig.fake.script(MEMBERS, fail("601"), fail("601"), ADDED)
    with pytest.raises(TokenExpired):
        await add_one(rig)
    assert len(rig.fake.calls(MEMBERS)) == 2


async def test_second_expired_in_a_row_waits_for_the_stored_expiry(rig: Rig) -> None:
    """602 twice in a row waits until the stored expiry has passed before asking again."""
    rig.fake.tokens = [("tok-1", 3600), ("tok-1", 5), ("tok-2", 3600)]
    rig.fake.script(MEMBERS, fail("602"), fail("602"), ADDED)
    await add_one(rig)
    assert rig.sleep.delays == [pytest.approx(6.0)]
    assert rig.fake.calls(MEMBERS)[2].headers["Authorization"] == "Bearer tok-2"


async def test_unavailable_is_retried_with_full_jitter_backoff(rig: Rig) -> None:
    """5xx and 608 are retried; each delay lies within the full-jitter bound for its attempt."""
    html = (502, b"<html>Bad Gateway</html>")
    rig.fake.script(MEMBERS, html, fail("608"), (500, b"oops"), ADDED)
    await add_one(rig)
    assert len(rig.sleep.delays) == 3
    for attempt, delay_s in enumerate(rig.sleep.delays, start=1):
        assert 0 <= delay_s <= 0.5 * 2 ** (attempt - 1)
    assert rig.limiter.slots == 4


async def test_a_call_no_longer_wanted_is_abandoned_before_its_next_attempt(rig: Rig) -> None:
    """`still_wanted` is asked before each attempt: once False, nothing more is sent."""
    rig.fake.script(MEMBERS, fail("608"), ADDED)
    answers = iter([True, False])
    with pytest.raises(CallAbandoned):
        await rig.client.add_to_list(ListId(77), [LeadId(1)], lambda: next(answers))
    assert len(rig.fake.calls(MEMBERS)) == 1


async def test_retries_stop_after_max_attempts(rig: Rig) -> None:
    """After max_attempts failures the last MarketoUnavailable is raised."""
    rig.fake.script(MEMBERS, *[fail("611")] * 10)
    with pytest.raises(MarketoUnavailable):
        await add_one(rig)
    assert len(rig.fake.calls(MEMBERS)) == 6


async def test_rate_limit_tells_the_limiter_and_retries(rig: Rig) -> None:
    """606 and 615 are reported to the limiter with their code before the retry."""
    rig.fake.script(MEMBERS, fail("606"), fail("615"), ADDED)
    await add_one(rig)
    assert rig.limiter.rate_limited_codes == ["606", "615"]
    assert len(rig.fake.calls(MEMBERS)) == 3


async def test_http_429_counts_as_rate_limited(rig: Rig) -> None:
    """A proxy's HTTP 429 is handled like 606: limiter told, call retried."""
    rig.fake.script(MEMBERS, (429, b"slow down"), ADDED)
    await add_one(rig)
    assert rig.limiter.rate_limited_codes == ["http_429"]


async def test_quota_exhausted_is_raised_at_once(rig: Rig) -> None:
    """607 tells the limiter and raises without retrying."""
    rig.fake.script(MEMBERS, fail("607"), ADDED)
    with pytest.raises(QuotaExhausted):
        await add_one(rig)
    assert rig.limiter.quota_exhausted_calls == 1
    assert len(rig.fake.calls(MEMBERS)) == 1


async def test_rejected_request_is_raised_at_once(rig: Rig) -> None:
    """A non-retriable code (1013 unknown list) is raised after one request."""
    rig.fake.script(MEMBERS, fail("1013"), ADDED)
    with pytest.raises(RequestRejected) as raised:
        await add_one(rig)
    assert raised.value.code == "1013"
    assert len(rig.fake.calls(MEMBERS)) == 1


async def test_timeout_is_retried_as_unavailable(rig: Rig) -> None:
    """A request that gets no answer in time is retried, and the retry succeeds."""
    rig.fake.script(MEMBERS, (0, b""), ADDED)
    await add_one(rig)
    assert len(rig.fake.calls(MEMBERS)) == 2
    assert len(rig.sleep.delays) == 1


class SlotTimeoutLimiter(RecordingLimiter):
    """A limiter that bounds each slot's time, as the production limiter does."""

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        self.slots += 1
        async with asyncio.timeout(0.2):
            yield


async def test_limiter_slot_timeout_is_retried_as_unavailable(rig: Rig) -> None:
    """A TimeoutError raised by the limiter's slot is a retriable unavailability, not a crash."""
    limiter = SlotTimeoutLimiter()
    secret = SecretStr(SECRET)
    rig.fake.script(MEMBERS, (0, b""), ADDED)
    async with MarketoClient(
        Transport(rig.url, secret, secret, limiter, sleep=rig.sleep)
    ) as client:
        await client.add_to_list(ListId(77), [LeadId(1)])
    assert len(rig.fake.calls(MEMBERS)) == 2


async def test_refused_credentials_are_rejected_without_the_secret(rig: Rig) -> None:
    """Identity 401 raises RequestRejected saying the credentials were refused, secret-free."""
    rig.fake.identity_status = 401
    with pytest.raises(RequestRejected) as raised:
        await add_one(rig)
    assert "credentials" in str(raised.value)
    assert SECRET not in str(raised.value)
    assert rig.fake.calls(MEMBERS) == []


async def test_identity_calls_take_no_limiter_slot(rig: Rig) -> None:
    """Only API calls go through the limiter; the token request does not."""
    rig.fake.script(MEMBERS, ADDED)
    await add_one(rig)
    assert rig.limiter.slots == 1


async def test_remove_posts_with_method_override_and_json_body(rig: Rig) -> None:
    """Removal is POST ?_method=DELETE with the ids in a JSON body (proxy-safe)."""
    rig.fake.script(MEMBERS, ok([{"id": 5, "status": "removed"}]))
    results = await rig.client.remove_from_list(ListId(77), [LeadId(5)])
    (call,) = rig.fake.calls(MEMBERS)
    assert (call.method, call.query["_method"]) == ("POST", ["DELETE"])
    assert orjson.loads(call.body) == {"input": [{"id": 5}]}
    assert call.headers["Content-Type"] == "application/json"
    assert [r.status for r in results] == ["removed"]


async def test_sync_leads_sends_action_lookup_field_and_input(rig: Rig) -> None:
    """sync_leads posts the documented JSON body and returns results in order."""
    rig.fake.script(LEADS, ok([{"id": 3, "status": "created"}, {"id": 4, "status": "updated"}]))
    records = [{"email": "a@example.com"}, {"email": "b@example.com"}]
    results = await rig.client.sync_leads(records, action="createOrUpdate", lookup_field="email")
    (call,) = rig.fake.calls(LEADS)
    assert orjson.loads(call.body) == {
        "action": "createOrUpdate",
        "lookupField": "email",
        "input": records,
    }
    assert [r.lead_id for r in results] == [3, 4]


async def test_more_than_300_records_is_a_value_error_before_any_request(rig: Rig) -> None:
    """A batch over Marketo's 300 limit is refused locally."""
    with pytest.raises(ValueError, match="300"):
        await rig.client.add_to_list(ListId(77), [LeadId(i) for i in range(301)])
    assert rig.fake.seen == []


async def test_short_result_fails_the_call_as_unavailable(rig: Rig) -> None:
    """Fewer results than records would misattribute ids; what Marketo did is unknown, so the
    call fails as retriable, not as a refusal of its records."""
    rig.fake.script(MEMBERS, ADDED)
    with pytest.raises(MarketoUnavailable, match="result_count"):
        await rig.client.add_to_list(ListId(77), [LeadId(1), LeadId(2)])


async def test_find_leads_pages_until_no_token(rig: Rig) -> None:
    """Pages are followed by nextPageToken and concatenated."""
    rig.fake.script(LEADS, ok([{"id": 1}], nextPageToken="P2"), ok([{"id": 2}]))
    rows = await rig.client.find_leads("email", ["a@example.com"], ["id"])
    assert rows == [{"id": 1}, {"id": 2}]
    assert rig.fake.calls(LEADS)[1].query["nextPageToken"] == ["P2"]


async def test_find_leads_stops_on_an_empty_page_with_a_token(rig: Rig) -> None:
    """An empty page ends paging even if it carries a token."""
    rig.fake.script(LEADS, ok([], nextPageToken="again"), ok([{"id": 9}]))
    assert await rig.client.find_leads("email", ["a@example.com"], []) == []
    assert len(rig.fake.calls(LEADS)) == 1


async def test_long_filter_uses_post_with_method_get_form(rig: Rig) -> None:
    """A query past the 8 KB URI limit is sent as POST ?_method=GET with a form body."""
    values = [f"{i:04d}-{'x' * 40}@example.com" for i in range(300)]
    await rig.client.find_leads("email", values, ["id", "email"])
    (call,) = rig.fake.calls(LEADS)
    assert (call.method, call.query) == ("POST", {"_method": ["GET"]})
    form = parse_qs(call.body.decode())
    assert form["filterValues"] == [",".join(values)]
    assert call.headers["Content-Type"] == "application/x-www-form-urlencoded"


async def test_observer_counts_requests_and_record_statuses(rig: Rig) -> None:
    """The metrics hook sees each HTTP request's outcome and the per-status record counts."""
    skipped = {"id": 2, "status": "skipped", "reasons": [{"code": "1004", "message": "x"}]}
    rig.fake.script(MEMBERS, fail("606"), ok([{"id": 1, "status": "added"}, skipped]))
    await rig.client.add_to_list(ListId(77), [LeadId(1), LeadId(2)])
    assert rig.observer.requests == [
        ("identity", "ok"),
        ("add_to_list", "rate_limited"),
        ("add_to_list", "ok"),
    ]
    assert rig.observer.record_counts == {
        ("add_to_list", "added"): 1,
        ("add_to_list", "skipped"): 1,
    }


class SlowBudget(RecordingLimiter):
    """Grants each slot after `wait_s` on the fake clock: a full budget."""

    def __init__(self, clock: FakeClock, wait_s: float) -> None:
        super().__init__()
        self.clock, self.wait_s = clock, wait_s

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        self.clock.advance(self.wait_s)
        async with super()._slot():
            yield


async def test_request_duration_leaves_out_the_wait_for_the_budget(rig: Rig) -> None:
    """A call that waits 10 s for its slot is observed with its HTTP time alone (0 s here)."""
    rig.fake.script(MEMBERS, ADDED)
    observer = RecordingObserver()
    transport = Transport(
        rig.url,
        SecretStr("client-id"),
        SecretStr(SECRET),
        SlowBudget(rig.clock, wait_s=10.0),
        clock=rig.clock,
        observer=observer,
    )
    async with MarketoClient(transport) as client:
        await client.add_to_list(ListId(77), [LeadId(1)])
    assert observer.durations == [("identity", 0.0), ("add_to_list", 0.0)]


async def test_a_call_never_sent_has_no_duration(rig: Rig) -> None:
    """An abandoned call is counted without a duration: no HTTP request was made."""
    with pytest.raises(CallAbandoned):
        await rig.client.add_to_list(ListId(77), [LeadId(1)], still_wanted=lambda: False)
    assert ("add_to_list", None) in rig.observer.durations
    assert [e for e, d in rig.observer.durations if d is not None] == ["identity"]


async def test_logs_never_carry_the_secret_or_the_token(rig: Rig) -> None:
    """No log event contains the client secret or the access token."""
    rig.fake.script(MEMBERS, fail("601"), fail("608"), ADDED)
    with capture_logs() as logs:
        await add_one(rig)
    assert {e["event"] for e in logs} >= {"marketo.token_refreshed", "marketo.retry_scheduled"}
    text = repr(logs)
    assert SECRET not in text
    assert "tok-1" not in text


async def test_get_list_unknown_id_is_none(rig: Rig) -> None:
    """get_list answers None for 1013 (and for the asset not-found warning)."""
    rig.fake.script("/rest/asset/v1/staticList/5.json", fail("1013"))
    assert await rig.client.get_list(ListId(5)) is None


async def test_describe_falls_back_when_describe2_is_refused(rig: Rig) -> None:
    """A refused describe2 falls back to describe.json."""
    rig.fake.script("/rest/v1/leads/describe2.json", fail("610"))
    attribute = {"id": 1, "dataType": "email", "length": 255, "rest": {"name": "email"}}
    rig.fake.script("/rest/v1/leads/describe.json", ok([attribute]))
    fields = await rig.client.describe_fields()
    assert [(f.name, f.updateable) for f in fields] == [("email", True)]


async def test_find_folder_prefers_a_list_folder(rig: Rig) -> None:
    """Of several folders with one name, a list-capable one wins over others."""

    def folder(fid: int, kind: str) -> dict[str, object]:
        ref = {"id": fid, "type": "Folder"}
        return {"id": fid, "name": "Audiences", "folderType": kind, "folderId": ref}

    path = "/rest/asset/v1/folder/byName.json"
    rig.fake.script(
        path, ok([folder(3, "Email"), folder(9, "List"), folder(8, "Marketing Folder")])
    )
    found = await rig.client.find_folder("Audiences")
    assert found is not None
    assert found.id == 9


async def test_session_and_ca_bundle_together_are_refused(tmp_path: Path) -> None:
    """A given session already carries its TLS settings, so a CA bundle cannot also apply."""
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ValueError, match="ca_bundle"):
            MarketoClient(
                Transport(
                    "https://127.0.0.1:1",
                    SecretStr("id"),
                    SecretStr(SECRET),
                    RecordingLimiter(),
                    session=session,
                    ca_bundle=tmp_path / "ca.pem",
                )
            )
