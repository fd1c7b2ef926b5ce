"""Usage stats per API user: each custom service's calls count under the user that owns it.

Marketo's `/rest/v1/stats/usage.json` covers the whole subscription, with a per-user breakdown
(`users[]` of `{userId, count}`); the identity answer's `scope` names the service's API user.
"""

import pytest

from tests.sandbox.conftest import CLIENT_ID, CLIENT_SECRET, Api, StartSandbox, assert_matches_spec
from worker.sandbox.gate import LimitConfig
from worker.sandbox.identity import SCOPE, ApiUser

pytestmark = pytest.mark.integration

USAGE = "/rest/v1/stats/usage.json"
DESCRIBE = "/rest/v1/leads/describe.json"
OTHER = ApiUser("other-client", "other-secret", "etl@other.example")


async def _as_other(api: Api) -> None:
    """Switch `api` to the other service's token."""
    answer = await api.identity(OTHER.client_id, OTHER.client_secret)
    api.token = answer.body["access_token"]


async def test_token_scope_names_the_service_api_user(start_sandbox: StartSandbox) -> None:
    """Each service's token answer carries its own API user as `scope`."""
    api = await start_sandbox(api_users=(OTHER,))
    own = await api.identity(CLIENT_ID, CLIENT_SECRET)
    other = await api.identity(OTHER.client_id, OTHER.client_secret)
    assert (own.body["scope"], other.body["scope"]) == (SCOPE, OTHER.user_id)


async def test_usage_counts_each_api_user_apart(start_sandbox: StartSandbox) -> None:
    """Calls made with another service's token show under its user; the total sums both."""
    api = await start_sandbox(api_users=(OTHER,))
    await api.get(DESCRIBE)
    own_token = api.token
    await _as_other(api)
    for _ in range(3):
        await api.get(DESCRIBE)
    api.token = own_token
    today = (await api.get(USAGE)).body["result"][0]
    users = {user["userId"]: user["count"] for user in today["users"]}
    assert (today["total"], users) == (5, {SCOPE: 2, OTHER.user_id: 3})  # 2: the usage call


async def test_usage_with_several_users_matches_swagger(start_sandbox: StartSandbox) -> None:
    """The per-user breakdown validates against Adobe's ResponseOfUsageData."""
    api = await start_sandbox(api_users=(OTHER,))
    await _as_other(api)
    await api.get(DESCRIBE)
    assert_matches_spec("swagger-mapi.json", "ResponseOfUsageData", (await api.get(USAGE)).body)


async def test_other_service_wrong_secret_is_refused(start_sandbox: StartSandbox) -> None:
    """Another service's client id with a wrong secret gets 401 like the main one."""
    api = await start_sandbox(api_users=(OTHER,))
    answer = await api.identity(OTHER.client_id, CLIENT_SECRET)
    assert (answer.status, answer.body["error"]) == (401, "invalid_client")


async def test_calls_of_every_user_share_the_daily_quota(start_sandbox: StartSandbox) -> None:
    """The quota is the instance's: another user's calls spend it for everyone (607)."""
    api = await start_sandbox(api_users=(OTHER,), limits=LimitConfig(daily_quota=2))
    own_token = api.token
    await _as_other(api)
    await api.get(DESCRIBE)
    await api.get(DESCRIBE)
    api.token = own_token
    assert (await api.get(DESCRIBE)).body["errors"][0]["code"] == "607"
