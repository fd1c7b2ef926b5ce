"""MarketoClient against the Marketo sandbox over real HTTP on 127.0.0.1.

Guarantee: the client keeps a valid token (expiry, revocation), retries what Marketo says is
transient (606 storms, 5xx), stops at once on 607, and its list/lead methods have Marketo's
semantics. Every sandbox runs with --strict-auth, so an access_token parameter would fail.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TypedDict, Unpack

import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from tests.fakes import RecordingLimiter
from tests.sandbox_views import sandbox_stats
from worker.core.ids import LeadId, ListId
from worker.errors import QuotaExhausted
from worker.marketo.client import MarketoClient
from worker.marketo.transport import Transport
from worker.sandbox.process import SandboxProcess

pytestmark = pytest.mark.integration


@contextmanager
def sandbox(*args: str) -> Iterator[SandboxProcess]:
    """A fresh sandbox that refuses access_token parameters."""
    with SandboxProcess("--strict-auth", "--seed", "11", *args) as sb:
        yield sb


class TransportOptions(TypedDict, total=False):
    """The Transport settings a test changes."""

    clock: Callable[[], float]
    sleep: Callable[[float], Awaitable[None]]
    max_attempts: int


def client_for(
    sb: SandboxProcess, limiter: RecordingLimiter, **options: Unpack[TransportOptions]
) -> MarketoClient:
    """A client with the sandbox's credentials."""
    return MarketoClient(
        Transport(
            sb.url,
            SecretStr(sb.client_id),
            SecretStr(sb.client_secret),
            limiter,
            rng=random.Random(3),
            **options,
        )
    )


def calls(sb: SandboxProcess, endpoint: str) -> dict[str, int]:
    """The sandbox's answer codes for one endpoint."""
    return sandbox_stats(sb)["calls"].get(endpoint, {})


async def wait_for_new_server_token(sb: SandboxProcess, old: str, deadline_s: float) -> None:
    """Wait (bounded) until the sandbox has expired `old` and mints another token."""
    stop = time.monotonic() + deadline_s
    while sb.token() == old:
        assert time.monotonic() < stop, "the sandbox token did not expire in time"
        await asyncio.sleep(0.05)


async def make_leads(client: MarketoClient, count: int) -> list[LeadId]:
    """Create `count` leads and return their ids."""
    records = [{"email": f"lead{i}@example.com", "firstName": f"F{i}"} for i in range(count)]
    results = await client.sync_leads(records, action="createOrUpdate", lookup_field="email")
    ids = [r.lead_id for r in results]
    assert all(i is not None for i in ids)
    return [LeadId(i) for i in ids if i is not None]


async def new_list(client: MarketoClient, name: str = "High value France") -> ListId:
    """Create a list in the Audiences folder."""
    folder = await client.find_folder("Audiences")
    assert folder is not None
    return (await client.create_list(name, folder.id, "test")).id


def token_events(logs: Sequence[Mapping[str, object]], name: str) -> list[Mapping[str, object]]:
    """Captured log events called `name`."""
    return [e for e in logs if e["event"] == name]


async def test_token_is_obtained_once_and_reused() -> None:
    """Several calls within the token's lifetime cost one identity call."""
    with sandbox() as sb:
        async with client_for(sb, RecordingLimiter()) as client:
            await make_leads(client, 2)
            await client.usage_today()
            await client.find_folder("Audiences")
        assert calls(sb, "identity") == {"ok": 1}


async def test_expired_token_is_renewed_before_use() -> None:
    """Past the stored expiry the client fetches a new token itself, so Marketo never sees 602."""
    skew_s = [0.0]  # expires_in is whole seconds; skip the client past that rounding slack

    def clock() -> float:
        return time.monotonic() + skew_s[0]

    with sandbox("--token-ttl-s", "2") as sb:
        async with client_for(sb, RecordingLimiter(), clock=clock) as client:
            await client.usage_today()
            await client.usage_today()
            await wait_for_new_server_token(sb, sb.token(), deadline_s=10)
            skew_s[0] = 2.0
            with capture_logs() as logs:
                await client.usage_today()
        assert calls(sb, "usage") == {"ok": 3}
    assert [e["reused"] for e in token_events(logs, "marketo.token_refreshed")] == [False]


async def test_token_expired_unnoticed_is_renewed_after_602() -> None:
    """A token the client still thinks valid gets 602, one renewal, and the call succeeds."""
    frozen_clock: Callable[[], float] = lambda: 0.0  # noqa: E731 - the client never sees time pass
    with sandbox("--token-ttl-s", "3") as sb:
        async with client_for(sb, RecordingLimiter(), clock=frozen_clock) as client:
            # The second call renews early, gets the same token back and keeps it till expiry.
            await client.usage_today()
            await client.usage_today()
            await wait_for_new_server_token(sb, sb.token(), deadline_s=10)
            with capture_logs() as logs:
                assert await client.usage_today() >= 1
        assert calls(sb, "usage") == {"ok": 3, "602": 1}
    assert [e["code"] for e in token_events(logs, "marketo.token_rejected")] == ["602"]


async def test_revoked_token_costs_one_renewal() -> None:
    """A token revoked at run time gets 601, one renewal, then success."""
    with sandbox() as sb:
        async with client_for(sb, RecordingLimiter()) as client:
            await client.usage_today()
            sb.set_faults(revoke_tokens=True)
            await client.usage_today()
        assert calls(sb, "usage") == {"ok": 2, "601": 1}
        assert calls(sb, "identity") == {"ok": 2}


async def test_sync_leads_creates_then_updates_the_same_ids() -> None:
    """A second createOrUpdate by email updates the leads the first one created."""
    records = [{"email": "a@example.com", "firstName": "A"}, {"email": "b@example.com"}]
    with sandbox() as sb:
        async with client_for(sb, RecordingLimiter()) as client:
            first = await client.sync_leads(records, action="createOrUpdate", lookup_field="email")
            renamed = [{**r, "firstName": "Z"} for r in records]
            second = await client.sync_leads(renamed, action="createOrUpdate", lookup_field="email")
            rows = await client.find_leads("email", ["a@example.com"], ["email", "firstName"])
    assert [r.status for r in first] == ["created", "created"]
    assert [r.status for r in second] == ["updated", "updated"]
    assert [r.lead_id for r in second] == [r.lead_id for r in first]
    assert rows == [{"id": first[0].lead_id, "email": "a@example.com", "firstName": "Z"}]


async def test_add_is_idempotent_and_unknown_leads_are_skipped() -> None:
    """Adding twice reports `added` both times; an unknown lead is skipped with 1004."""
    with sandbox() as sb:
        async with client_for(sb, RecordingLimiter()) as client:
            ids = await make_leads(client, 2)
            list_id = await new_list(client)
            first = await client.add_to_list(list_id, [*ids, LeadId(999_999)])
            again = await client.add_to_list(list_id, ids)
            pages = [page async for page in client.list_members(list_id, ["email"])]
    assert [r.status for r in first] == ["added", "added", "skipped"]
    assert first[2].reasons == (("1004", "Lead not found"),)
    assert [r.status for r in again] == ["added", "added"]
    assert [row["id"] for page in pages for row in page] == ids


async def test_remove_then_remove_again_is_a_1015_skip() -> None:
    """Removal empties the list; removing a non-member is a per-record 1015 skip."""
    with sandbox() as sb:
        async with client_for(sb, RecordingLimiter()) as client:
            ids = await make_leads(client, 2)
            list_id = await new_list(client)
            await client.add_to_list(list_id, ids)
            removed = await client.remove_from_list(list_id, ids)
            again = await client.remove_from_list(list_id, ids[:1])
            pages = [page async for page in client.list_members(list_id, [])]
    assert [r.status for r in removed] == ["removed", "removed"]
    assert again[0].reasons == (("1015", "Lead not in list"),)
    assert pages == []


async def test_list_members_pages_through_more_than_300() -> None:
    """Members are read in pages of 300 until the last page."""
    with sandbox() as sb:
        async with client_for(sb, RecordingLimiter()) as client:
            list_id = await new_list(client)
            ids = await make_leads(client, 300) + await make_leads_offset(client, 300, 50)
            await client.add_to_list(list_id, ids[:300])
            await client.add_to_list(list_id, ids[300:])
            sizes = [len(page) async for page in client.list_members(list_id, ["id"])]
    assert sizes == [300, 50]


async def make_leads_offset(client: MarketoClient, start: int, count: int) -> list[LeadId]:
    """Create `count` more leads numbered from `start`."""
    records = [{"email": f"lead{start + i}@example.com"} for i in range(count)]
    results = await client.sync_leads(records, action="createOrUpdate", lookup_field="email")
    return [LeadId(r.lead_id) for r in results if r.lead_id is not None]


async def test_606_storm_is_retried_and_reported_to_the_limiter() -> None:
    """During a forced 606 storm the call is retried until it succeeds, and the limiter is told."""
    limiter = RecordingLimiter()
    with sandbox() as sb:
        async with client_for(sb, limiter, max_attempts=12) as client:
            await client.usage_today()
            sb.set_faults(storm_606_s=0.5)
            assert await client.usage_today() >= 1
        assert calls(sb, "usage")["606"] >= 1
    assert limiter.rate_limited_codes
    assert set(limiter.rate_limited_codes) == {"606"}


async def test_607_raises_quota_exhausted_at_once() -> None:
    """An exhausted quota raises QuotaExhausted after one call and tells the limiter."""
    limiter = RecordingLimiter()
    with sandbox() as sb:
        async with client_for(sb, limiter) as client:
            ids = await make_leads(client, 1)
            sb.set_faults(exhaust_quota=True)
            with pytest.raises(QuotaExhausted):
                await client.sync_leads(
                    [{"email": "x@example.com"}], action="createOrUpdate", lookup_field="email"
                )
        assert calls(sb, "syncLeads") == {"ok": 1, "607": 1}
    assert ids
    assert limiter.quota_exhausted_calls == 1


async def test_random_5xx_and_608_are_retried() -> None:
    """With random 502/500/608 faults every call still succeeds through local retries."""
    fast_sleep = lambda delay_s: asyncio.sleep(delay_s / 20)  # noqa: E731 - shrink backoff
    with sandbox() as sb:
        async with client_for(sb, RecordingLimiter(), sleep=fast_sleep, max_attempts=10) as client:
            ids = await make_leads(client, 3)
            list_id = await new_list(client)
            sb.set_faults(p_http_502=0.15, p_http_500=0.1, p_608=0.1)
            for _ in range(15):
                results = await client.add_to_list(list_id, ids)
                assert [r.status for r in results] == ["added"] * 3
        faults = calls(sb, "addToList")
    assert faults["ok"] == 15
    assert faults.get("http502", 0) + faults.get("http500", 0) + faults.get("608", 0) >= 1


async def test_missing_list_is_none_and_created_list_is_found() -> None:
    """A list name not yet used is None; after create_list, both lookups return its id."""
    with sandbox() as sb:
        async with client_for(sb, RecordingLimiter()) as client:
            assert await client.find_list_by_name("Webinar 2026") is None
            list_id = await new_list(client, "Webinar 2026")
            by_name = await client.find_list_by_name("Webinar 2026")
            by_id = await client.get_list(list_id)
            unknown = await client.get_list(ListId(987_654))
    assert by_name is not None
    assert by_name.id == list_id
    assert by_id is not None
    assert by_id.name == "Webinar 2026"
    assert unknown is None


async def test_creating_an_existing_name_returns_that_list() -> None:
    """A second create_list with a taken name (a race) returns the existing list."""
    with sandbox() as sb:
        async with client_for(sb, RecordingLimiter()) as client:
            first = await new_list(client, "Dup")
            second = await new_list(client, "Dup")
        assert calls(sb, "createStaticList") == {"ok": 1, "709": 1}
    assert second == first


async def test_audiences_folder_is_found() -> None:
    """The configured list folder is found by name and can hold lists."""
    with sandbox() as sb:
        async with client_for(sb, RecordingLimiter()) as client:
            folder = await client.find_folder("Audiences")
            missing = await client.find_folder("No such folder")
    assert folder is not None
    assert (folder.name, folder.folder_type) == ("Audiences", "Marketing Folder")
    assert missing is None


async def test_describe_includes_email_and_read_only_ecids() -> None:
    """describe_fields reports email as writable and ecids as read-only."""
    with sandbox() as sb:
        async with client_for(sb, RecordingLimiter()) as client:
            fields = {f.name: f for f in await client.describe_fields()}
    assert fields["email"].updateable
    assert fields["email"].data_type == "email"
    assert not fields["ecids"].updateable


async def test_usage_today_counts_calls() -> None:
    """usage_today reports the calls counted today, including itself."""
    with sandbox() as sb:
        async with client_for(sb, RecordingLimiter()) as client:
            before = await client.usage_today()
            await make_leads(client, 1)
            await client.find_folder("Audiences")
            after = await client.usage_today()
        assert after == before + 3
        assert after == sandbox_stats(sb)["quota_used"]


async def test_usage_tells_another_api_users_calls_from_ours() -> None:
    """usage() splits today's calls into ours (the token's API user) and the others'."""
    other = ("etl-client", "etl-secret", "etl@other.example")
    with sandbox("--api-user", ":".join(other)) as sb:
        etl = MarketoClient(
            Transport(sb.url, SecretStr(other[0]), SecretStr(other[1]), RecordingLimiter())
        )
        async with etl:
            for _ in range(4):
                await etl.find_folder("Audiences")
        async with client_for(sb, RecordingLimiter()) as client:
            await client.find_folder("Audiences")
            usage = await client.usage()
    assert (usage.total, usage.own, usage.others) == (6, 2, 4)
