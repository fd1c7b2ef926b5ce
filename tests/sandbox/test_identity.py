"""Identity: tokens are reused until expiry, expire with 602 then 601, and go in the header.

Tokens as in docs/marketo-facts.md, Authentication.
"""

import pytest

from tests.sandbox.conftest import CLIENT_ID, CLIENT_SECRET, Api, StartSandbox

pytestmark = pytest.mark.integration


async def test_token_by_get_query_has_the_oauth_shape(api: Api) -> None:
    """A GET with query parameters returns a bearer token, its lifetime and the owning user."""
    answer = await api.identity(CLIENT_ID, CLIENT_SECRET)
    assert answer.status == 200
    assert answer.body["token_type"] == "bearer"
    assert answer.body["expires_in"] == 3599
    assert "@" in answer.body["scope"]
    assert answer.headers["Cache-Control"] == "no-store"


async def test_token_by_post_form_body_is_accepted(api: Api) -> None:
    """A POST with a form body works like the query form."""
    form = {"grant_type": "client_credentials", "client_id": CLIENT_ID}
    form["client_secret"] = CLIENT_SECRET
    answer = await api.call("POST", "/identity/oauth/token", data=form, auth=False)
    assert answer.status == 200
    assert answer.body["access_token"] == api.token


async def test_bad_secret_is_http_401_with_oauth_error(api: Api) -> None:
    """A wrong secret gets HTTP 401 and an OAuth error body, not a token."""
    answer = await api.identity(CLIENT_ID, "wrong")
    assert answer.status == 401
    assert answer.body == {"error": "invalid_client", "error_description": "Bad client credentials"}


async def test_unknown_client_id_is_http_401(api: Api) -> None:
    """An unknown client id gets HTTP 401."""
    answer = await api.identity("nobody", CLIENT_SECRET)
    assert answer.status == 401
    assert answer.body["error"] == "unauthorized"


async def test_same_token_with_decreasing_expires_in_until_expiry(api: Api) -> None:
    """Asking again before expiry returns the same token with less time left."""
    api.clock.advance(100)
    again = await api.identity(CLIENT_ID, CLIENT_SECRET)
    assert again.body["access_token"] == api.token
    assert again.body["expires_in"] == 3499


async def test_new_token_after_expiry(api: Api) -> None:
    """Once the token's lifetime has passed, the identity endpoint mints a different one."""
    api.clock.advance(3600)
    again = await api.identity(CLIENT_ID, CLIENT_SECRET)
    assert again.body["access_token"] != api.token
    assert again.body["expires_in"] == 3599


async def test_first_use_after_expiry_is_602_then_601(api: Api) -> None:
    """The first call with an expired token gets 602, later calls with it get 601."""
    api.clock.advance(3600)
    first = await api.get("/rest/v1/leads/describe.json")
    second = await api.get("/rest/v1/leads/describe.json")
    assert first.body["errors"][0]["code"] == "602"
    assert second.body["errors"][0]["code"] == "601"


async def test_unknown_token_is_601(api: Api) -> None:
    """A token the instance never issued gets 601 in an HTTP 200 failure envelope."""
    api.token = "not-a-token:sb"
    answer = await api.get("/rest/v1/leads/describe.json")
    assert answer.status == 200
    assert answer.body["success"] is False
    assert answer.body["errors"] == [{"code": "601", "message": "Access token invalid"}]


async def test_missing_token_is_601(api: Api) -> None:
    """A call without any token is refused with 601."""
    api.token = ""
    answer = await api.get("/rest/v1/leads/describe.json")
    assert answer.body["errors"][0]["code"] == "601"


async def test_access_token_query_parameter_works_when_not_strict(api: Api) -> None:
    """Without --strict-auth the legacy access_token parameter is still honoured."""
    token, api.token = api.token, ""
    answer = await api.get("/rest/v1/leads/describe.json", access_token=token)
    assert answer.body["success"] is True


async def test_strict_auth_rejects_access_token_in_query(start_sandbox: StartSandbox) -> None:
    """With strict auth, a token passed as a query parameter is refused even if valid."""
    api = await start_sandbox(strict_auth=True)
    answer = await api.get("/rest/v1/leads/describe.json", access_token=api.token)
    assert answer.body["errors"][0]["code"] == "601"


async def test_strict_auth_rejects_access_token_in_form_body(start_sandbox: StartSandbox) -> None:
    """With strict auth, a token in a form body is refused too."""
    api = await start_sandbox(strict_auth=True)
    answer = await api.call(
        "POST",
        "/rest/v1/lists.json",
        params={"_method": "GET"},
        data={"access_token": api.token},
    )
    assert answer.body["errors"][0]["code"] == "601"


async def test_identity_calls_are_not_counted_against_quota(api: Api) -> None:
    """Identity calls consume neither the rate window nor the daily quota."""
    for _ in range(3):
        await api.identity(CLIENT_ID, CLIENT_SECRET)
    usage = await api.get("/rest/v1/stats/usage.json")
    assert usage.body["result"][0]["total"] == 1  # the usage call itself
