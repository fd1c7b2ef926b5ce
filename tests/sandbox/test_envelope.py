"""Envelope fidelity: HTTP 200 failures with string codes, omitted fields, recorded formats.

The envelope as in docs/marketo-facts.md, Response envelope.
"""

import re

import pytest

from tests.sandbox.conftest import Api

pytestmark = pytest.mark.integration

REQUEST_ID = re.compile(r"[0-9a-f]+#[0-9a-f]+\Z")


async def test_lead_db_success_omits_errors_and_warnings(api: Api) -> None:
    """A Lead Database success has requestId, result and success, and nothing else."""
    answer = await api.get("/rest/v1/leads/describe.json")
    assert set(answer.body) == {"requestId", "result", "success"}


async def test_business_error_is_http_200_with_string_code(api: Api) -> None:
    """A request-level error is HTTP 200, success false, a quoted code, and no result."""
    answer = await api.get("/rest/v1/lists/999999.json")
    assert answer.status == 200
    assert answer.body["success"] is False
    assert answer.body["errors"][0]["code"] == "1013"
    assert "result" not in answer.body


async def test_asset_success_carries_empty_errors_and_warnings(api: Api) -> None:
    """Asset responses always carry `errors: []` and `warnings: []`."""
    answer = await api.get("/rest/asset/v1/folder/byName.json", name="Audiences")
    assert answer.body["errors"] == []
    assert answer.body["warnings"] == []


async def test_asset_failure_keeps_warnings_list(api: Api) -> None:
    """An asset failure has success false, the error, and an empty warnings list."""
    answer = await api.form("/rest/asset/v1/staticLists.json", name="x")
    assert answer.body["success"] is False
    assert answer.body["warnings"] == []
    assert answer.body["errors"][0]["code"] == "701"


async def test_request_id_has_recorded_shape_with_time_in_hex_ms(api: Api) -> None:
    """requestId is `<hex>#<hex unix milliseconds>` and the second part is the request time."""
    answer = await api.get("/rest/v1/leads/describe.json")
    rid = answer.body["requestId"]
    assert REQUEST_ID.match(rid)
    assert int(rid.split("#")[1], 16) == int(api.wall() * 1000)


async def test_content_type_is_json_with_charset_without_space(api: Api) -> None:
    """The Content-Type header is exactly `application/json;charset=UTF-8`."""
    answer = await api.get("/rest/v1/leads/describe.json")
    assert answer.headers["Content-Type"] == "application/json;charset=UTF-8"


async def test_lead_dates_end_in_z(api: Api) -> None:
    """Lead Database datetimes look like `2026-03-10T17:00:00Z`."""
    created = await api.sync({"email": "d@example.com"})
    answer = await api.get(f"/rest/v1/lead/{created[0]['id']}.json", fields="createdAt")
    assert answer.body["result"][0]["createdAt"] == "2026-03-10T17:00:00Z"


async def test_asset_dates_end_in_z_plus_0000(api: Api) -> None:
    """Asset datetimes carry the odd `Z+0000` suffix."""
    list_id = await api.create_list("dates")
    answer = await api.get(f"/rest/asset/v1/staticList/{list_id}.json")
    assert answer.body["result"][0]["createdAt"] == "2026-03-10T17:00:00Z+0000"
