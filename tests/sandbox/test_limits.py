"""Limits over HTTP: 606 window, 615 concurrency, 607 quota with reset, usage endpoints.

Time is a fake clock, so nothing waits for a real window.
"""

import asyncio
import time

import pytest

from tests.sandbox.conftest import Answer, Api, StartSandbox
from worker.sandbox.faults import Faults
from worker.sandbox.gate import LimitConfig
from worker.sandbox.limits import QuotaDay

pytestmark = pytest.mark.integration

DESCRIBE = "/rest/v1/leads/describe.json"


def _code(answer: Answer) -> str:
    body = answer.body
    return "ok" if body["success"] else str(body["errors"][0]["code"])


async def test_call_past_the_window_limit_is_606(start_sandbox: StartSandbox) -> None:
    """The call after `calls_per_window` counted calls in the window gets 606."""
    api = await start_sandbox(limits=LimitConfig(calls_per_window=3, window_s=20))
    codes = [_code(await api.get(DESCRIBE)) for _ in range(4)]
    assert codes == ["ok", "ok", "ok", "606"]


async def test_606_message_names_the_limit(start_sandbox: StartSandbox) -> None:
    """The 606 message has the recorded wording with the configured numbers."""
    api = await start_sandbox(limits=LimitConfig(calls_per_window=1, window_s=5))
    await api.get(DESCRIBE)
    answer = await api.get(DESCRIBE)
    assert answer.body["errors"][0]["message"] == "Max rate limit '1' exceeded with in '5' secs"


async def test_window_frees_after_window_s(start_sandbox: StartSandbox) -> None:
    """Once the window has passed, calls succeed again."""
    api = await start_sandbox(limits=LimitConfig(calls_per_window=2, window_s=20))
    await api.get(DESCRIBE)
    await api.get(DESCRIBE)
    api.clock.advance(20)
    assert _code(await api.get(DESCRIBE)) == "ok"


async def test_606_rejections_do_not_count_by_default(start_sandbox: StartSandbox) -> None:
    """Refused calls do not extend the storm: the window frees on time."""
    api = await start_sandbox(limits=LimitConfig(calls_per_window=1, window_s=20))
    await api.get(DESCRIBE)
    api.clock.advance(10)
    assert _code(await api.get(DESCRIBE)) == "606"
    api.clock.advance(10)
    assert _code(await api.get(DESCRIBE)) == "ok"


async def test_counting_rejections_extends_the_window(start_sandbox: StartSandbox) -> None:
    """With count_rejections, a 606 answer itself occupies the window."""
    limits = LimitConfig(calls_per_window=1, window_s=20, count_rejections=True)
    api = await start_sandbox(limits=limits)
    await api.get(DESCRIBE)
    api.clock.advance(10)
    assert _code(await api.get(DESCRIBE)) == "606"
    api.clock.advance(10)
    assert _code(await api.get(DESCRIBE)) == "606"


async def test_uncounted_codes_do_not_use_the_window(start_sandbox: StartSandbox) -> None:
    """601 and 605 answers count against neither window nor quota (Adobe's error-code notes)."""
    api = await start_sandbox(limits=LimitConfig(calls_per_window=1, window_s=20))
    token, api.token = api.token, "bogus"
    await api.get(DESCRIBE)
    api.token = token
    await api.call("PUT", DESCRIBE)
    assert _code(await api.get(DESCRIBE)) == "ok"


async def test_business_errors_do_count(start_sandbox: StartSandbox) -> None:
    """A 1013 answer is a counted call."""
    api = await start_sandbox(limits=LimitConfig(calls_per_window=1, window_s=20))
    await api.get("/rest/v1/lists/1.json")
    assert _code(await api.get(DESCRIBE)) == "606"


async def test_more_than_concurrency_in_flight_is_615(start_sandbox: StartSandbox) -> None:
    """With `concurrency` calls in flight, the next call gets 615."""
    api = await start_sandbox(limits=LimitConfig(concurrency=2), faults=Faults(latency_ms=1500))
    slow = [asyncio.create_task(api.get(DESCRIBE)) for _ in range(2)]
    deadline = time.monotonic() + 5
    while api.sandbox.gate.concurrency.in_flight < 2:
        assert time.monotonic() < deadline, "the slow calls never got in flight"
        await asyncio.sleep(0.01)
    refused = await api.get(DESCRIBE)
    assert _code(refused) == "615"
    assert refused.body["errors"][0]["message"] == "Concurrent access limit '2' reached"
    assert [_code(a) for a in await asyncio.gather(*slow)] == ["ok", "ok"]


async def test_quota_spent_gives_607_until_the_reset(start_sandbox: StartSandbox) -> None:
    """After `daily_quota` counted calls every call gets 607 until the quota day turns."""
    limits = LimitConfig(daily_quota=2, quota_day=QuotaDay(day_s=60))
    api = await start_sandbox(limits=limits)
    codes = [_code(await api.get(DESCRIBE)) for _ in range(3)]
    api.wall.advance(60)
    codes.append(_code(await api.get(DESCRIBE)))
    assert codes == ["ok", "ok", "607", "ok"]


async def test_quota_resets_at_midnight_chicago(start_sandbox: StartSandbox) -> None:
    """With the default zone the quota resets at local midnight (12 hours after the start)."""
    api = await start_sandbox(limits=LimitConfig(daily_quota=1))
    await api.get(DESCRIBE)
    api.wall.advance(12 * 3600 - 1)
    blocked = _code(await api.get(DESCRIBE))
    api.wall.advance(1)
    assert [blocked, _code(await api.get(DESCRIBE))] == ["607", "ok"]


async def test_usage_endpoint_reports_counted_calls(api: Api) -> None:
    """usage.json totals today's counted calls for the API user."""
    await api.get(DESCRIBE)
    await api.get(DESCRIBE)
    answer = await api.get("/rest/v1/stats/usage.json")
    today = answer.body["result"][0]
    assert today["date"] == "2026-03-10"
    assert today["total"] == 3
    assert today["users"][0]["count"] == 3


async def test_errors_endpoint_counts_codes(start_sandbox: StartSandbox) -> None:
    """errors.json counts today's error codes."""
    api = await start_sandbox(limits=LimitConfig(calls_per_window=1, window_s=20))
    await api.get("/rest/v1/lists/1.json")
    api.clock.advance(20)
    answer = await api.get("/rest/v1/stats/errors.json")
    assert answer.body["result"][0]["errors"] == [{"errorCode": "1013", "count": 1}]


async def test_admin_stats_report_peaks_and_calls(start_sandbox: StartSandbox) -> None:
    """/_sandbox/stats reports calls by endpoint and code and the busiest window."""
    api = await start_sandbox(limits=LimitConfig(calls_per_window=2, window_s=20))
    for _ in range(3):
        await api.get(DESCRIBE)
    stats = (await api.call("GET", "/_sandbox/stats", auth=False)).body
    assert stats["calls"]["describe"] == {"ok": 2, "606": 1}
    assert stats["peak_window_calls"] == 2
    assert stats["peak_in_flight"] == 1
