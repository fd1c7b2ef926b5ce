"""Fault injection at run time through /_sandbox/faults: 5xx, 604/608/611, storms, revocation.

Probabilities of 1 make each fault certain, so no test depends on luck.
"""

import pytest

from tests.sandbox.conftest import Api

pytestmark = pytest.mark.integration

DESCRIBE = "/rest/v1/leads/describe.json"


async def _set(api: Api, **faults: object) -> dict[str, object]:
    answer = await api.call("POST", "/_sandbox/faults", json=faults, auth=False)
    assert answer.status == 200, answer.body
    result: dict[str, object] = answer.body
    return result


@pytest.mark.parametrize("code", ["604", "608", "611"])
async def test_certain_fault_returns_its_code(api: Api, code: str) -> None:
    """A fault with probability 1 answers every call with that code."""
    await _set(api, **{f"p_{code}": 1.0})
    answer = await api.get(DESCRIBE)
    assert answer.status == 200
    assert answer.body["errors"][0]["code"] == code


@pytest.mark.parametrize("status", [500, 502])
async def test_certain_http_fault_returns_non_json(api: Api, status: int) -> None:
    """An HTTP 5xx fault answers with that status and an HTML body."""
    await _set(api, **{f"p_http_{status}": 1.0})
    answer = await api.get(DESCRIBE)
    assert answer.status == status
    assert answer.headers["Content-Type"].startswith("text/html")


async def test_faults_can_be_cleared(api: Api) -> None:
    """Setting a probability back to 0 stops the fault."""
    await _set(api, p_608=1.0)
    await _set(api, p_608=0)
    assert (await api.get(DESCRIBE)).body["success"] is True


async def test_faulted_calls_are_not_counted(api: Api) -> None:
    """608 answers do not count against the quota."""
    await _set(api, p_608=1.0)
    await api.get(DESCRIBE)
    await _set(api, p_608=0)
    usage = await api.get("/rest/v1/stats/usage.json")
    assert usage.body["result"][0]["total"] == 1


async def test_storm_gives_606_for_its_duration(api: Api) -> None:
    """A forced 606 storm refuses every call until it ends."""
    await _set(api, storm_606_s=10)
    during = await api.get(DESCRIBE)
    api.clock.advance(10)
    after = await api.get(DESCRIBE)
    assert during.body["errors"][0]["code"] == "606"
    assert after.body["success"] is True


async def test_revoked_token_gets_601_and_a_new_token_is_minted(api: Api) -> None:
    """After revocation the old token is 601 and the identity endpoint issues a new one."""
    old = api.token
    await _set(api, revoke_tokens=True)
    refused = await api.get(DESCRIBE)
    new = await api.login()
    assert refused.body["errors"][0]["code"] == "601"
    assert new != old
    assert (await api.get(DESCRIBE)).body["success"] is True


async def test_exhaust_quota_now_gives_607(api: Api) -> None:
    """Exhausting the quota at run time makes the next call 607."""
    await _set(api, exhaust_quota=True)
    assert (await api.get(DESCRIBE)).body["errors"][0]["code"] == "607"


async def test_latency_is_reported_back(api: Api) -> None:
    """The faults endpoint echoes the latency distribution it applies."""
    faults = await _set(api, latency_ms=5, latency_jitter_ms=2)
    assert faults["latency_ms"] == 5
    assert faults["latency_jitter_ms"] == 2
    assert (await api.get(DESCRIBE)).body["success"] is True


async def test_unknown_fault_is_http_400(api: Api) -> None:
    """A misspelt fault name is refused rather than ignored."""
    answer = await api.call("POST", "/_sandbox/faults", json={"p_609": 1}, auth=False)
    assert answer.status == 400


async def test_probability_above_one_is_http_400(api: Api) -> None:
    """Probabilities must lie in 0..1."""
    answer = await api.call("POST", "/_sandbox/faults", json={"p_604": 2}, auth=False)
    assert answer.status == 400
