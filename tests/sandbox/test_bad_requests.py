"""Bad requests: malformed JSON, wrong content type, unknown path, wrong method, oversize.

As in docs/marketo-facts.md: wire conventions, limits, error codes.
"""

import io

import pytest

from tests.sandbox.conftest import Api

pytestmark = pytest.mark.integration

LEADS = "/rest/v1/leads.json"
JSON = {"Content-Type": "application/json"}


async def test_malformed_json_is_609(api: Api) -> None:
    """A body that is not JSON fails with 609."""
    answer = await api.call("POST", LEADS, data=b'{"input": [', headers=JSON)
    assert answer.status == 200
    assert answer.body["errors"][0]["code"] == "609"


async def test_wrong_content_type_is_612(api: Api) -> None:
    """A JSON body sent as text/plain fails with 612."""
    answer = await api.call(
        "POST", LEADS, data=b'{"input": []}', headers={"Content-Type": "text/plain"}
    )
    assert answer.body["errors"][0]["code"] == "612"


async def test_form_body_on_sync_is_612(api: Api) -> None:
    """Sync Leads takes JSON only; a form body is the wrong content type."""
    answer = await api.call("POST", LEADS, data={"input": "x"})
    assert answer.body["errors"][0]["code"] == "612"


async def test_unknown_path_is_610(api: Api) -> None:
    """A path the API does not have fails with 610."""
    answer = await api.get("/rest/v1/nothing.json")
    assert answer.status == 200
    assert answer.body["errors"][0]["code"] == "610"


async def test_non_numeric_path_id_is_610(api: Api) -> None:
    """A list id that is not a number matches no resource."""
    answer = await api.get("/rest/v1/lists/abc/leads.json")
    assert answer.body["errors"][0]["code"] == "610"


async def test_wrong_method_is_605(api: Api) -> None:
    """PUT on Sync Leads fails with 605."""
    answer = await api.call("PUT", LEADS, json={"input": []})
    assert answer.body["errors"][0]["code"] == "605"


async def test_body_over_1_mb_is_http_413(api: Api) -> None:
    """A body over 1 MB is refused at the HTTP level."""
    answer = await api.call("POST", LEADS, data=io.BytesIO(b" " * (1024 * 1024 + 1)), headers=JSON)
    assert answer.status == 413


async def test_body_of_exactly_1_mb_is_accepted(api: Api) -> None:
    """The limit is over 1 MB, so exactly 1 MB reaches the API (and fails as JSON only)."""
    answer = await api.call("POST", LEADS, data=io.BytesIO(b" " * (1024 * 1024)), headers=JSON)
    assert answer.status == 200


async def test_lead_db_uri_over_8_kb_is_http_414(api: Api) -> None:
    """A Lead Database URI over 8 KB is refused with HTTP 414."""
    values = ",".join(f"someone{i}@example.com" for i in range(400))
    answer = await api.get(LEADS, filterType="email", filterValues=values)
    assert answer.status == 414


async def test_asset_uri_over_8_kb_is_accepted(api: Api) -> None:
    """The Asset API allows URIs up to 65 KiB."""
    answer = await api.get("/rest/asset/v1/staticList/byName.json", name="x" * 9000)
    assert answer.status == 200


async def test_missing_ids_is_a_request_error(api: Api) -> None:
    """Add to list without any id fails with 701."""
    list_id = await api.create_list("NoIds")
    answer = await api.call("POST", f"/rest/v1/lists/{list_id}/leads.json")
    assert answer.body["errors"][0]["code"] == "701"


async def test_unknown_action_is_a_request_error(api: Api) -> None:
    """An action outside the four fails the request."""
    answer = await api.post(LEADS, {"action": "upsert", "input": [{"email": "a@example.com"}]})
    assert answer.body["success"] is False


async def test_unsupported_lookup_field_is_1011(api: Api) -> None:
    """firstName cannot be a lookup field."""
    answer = await api.post(LEADS, {"lookupField": "firstName", "input": [{"firstName": "A"}]})
    assert answer.body["errors"][0]["code"] == "1011"


async def test_bad_next_page_token_is_an_error(api: Api) -> None:
    """A paging token the sandbox never issued fails the request."""
    answer = await api.get(LEADS, filterType="id", filterValues="1", nextPageToken="garbage!")
    assert answer.body["success"] is False
