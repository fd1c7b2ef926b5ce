"""Every response shape validates against Adobe's Swagger specs, allowing only documented quirks.

The quirks are listed in spec_quirks.py.
"""

import json
from typing import Any

import pytest

from tests.sandbox.conftest import Api, StartSandbox, assert_matches_spec
from worker.sandbox.gate import LimitConfig

pytestmark = pytest.mark.integration

MAPI, ASSET, IDENTITY = "swagger-mapi.json", "swagger-asset.json", "swagger-identity.json"


@pytest.fixture
async def populated(start_sandbox: StartSandbox) -> Api:
    """A sandbox with two leads, one list holding the first, limits off."""
    api = await start_sandbox(limits=LimitConfig(calls_per_window=0, concurrency=0, daily_quota=0))
    await api.sync({"email": "s1@example.com", "firstName": "S"}, {"email": "s2@example.com"})
    list_id = await api.create_list("Schema")
    await api.post(f"/rest/v1/lists/{list_id}/leads.json", {"input": [{"id": 1}]})
    return api


CASES: list[tuple[str, str, str, str, dict[str, Any]]] = [
    (
        "sync",
        MAPI,
        "ResponseOfLead",
        "POST /rest/v1/leads.json",
        {"json": {"input": [{"email": "n@example.com"}, {"bogus": 1}]}},
    ),
    (
        "filter",
        MAPI,
        "ResponseOfLead",
        "GET /rest/v1/leads.json",
        {
            "params": {
                "filterType": "email",
                "filterValues": "s1@example.com,s2@example.com",
                "batchSize": "1",
            }
        },
    ),
    ("by id", MAPI, "ResponseOfLead", "GET /rest/v1/lead/1.json", {}),
    (
        "delete",
        MAPI,
        "ResponseOfLead",
        "POST /rest/v1/leads/delete.json",
        {"json": {"input": [{"id": 2}, {"id": 99}]}},
    ),
    ("describe", MAPI, "ResponseOfLeadAttribute", "GET /rest/v1/leads/describe.json", {}),
    ("describe2", MAPI, "ResponseOfLeadAttribute2", "GET /rest/v1/leads/describe2.json", {}),
    ("lists", MAPI, "ResponseOfStaticList", "GET /rest/v1/lists.json", {}),
    ("list", MAPI, "ResponseOfStaticList", "GET /rest/v1/lists/1001.json", {}),
    (
        "add",
        MAPI,
        "ResponseOfListOperationOutputData",
        "POST /rest/v1/lists/1001/leads.json",
        {"params": {"id": "2,99"}},
    ),
    (
        "remove",
        MAPI,
        "ResponseOfListOperationOutputData",
        "DELETE /rest/v1/lists/1001/leads.json",
        {"params": {"id": "1,2,99"}},
    ),
    (
        "ismember",
        MAPI,
        "ResponseOfListOperationOutputData",
        "GET /rest/v1/lists/1001/leads/ismember.json",
        {"params": {"id": "1,99"}},
    ),
    (
        "members",
        MAPI,
        "ResponseOfLead",
        "GET /rest/v1/lists/1001/leads.json",
        {"params": {"batchSize": "1"}},
    ),
    ("usage", MAPI, "ResponseOfUsageData", "GET /rest/v1/stats/usage.json", {}),
    ("errors", MAPI, "ResponseOfErrorsData", "GET /rest/v1/stats/errors.json", {}),
    ("failure", MAPI, "ResponseOfLead", "GET /rest/v1/lists/5/leads.json", {}),
    (
        "import status failure",
        MAPI,
        "ResponseOfImportLeadResponse",
        "GET /bulk/v1/leads/batch/9.json",
        {},
    ),
    (
        "create",
        ASSET,
        "ResponseOfStaticListResponse",
        "POST /rest/asset/v1/staticLists.json",
        {"data": {"name": "Another", "folder": json.dumps({"id": 12, "type": "Folder"})}},
    ),
    (
        "by name",
        ASSET,
        "ResponseOfStaticListResponse",
        "GET /rest/asset/v1/staticList/byName.json",
        {"params": {"name": "Schema"}},
    ),
    (
        "by name missing",
        ASSET,
        "ResponseOfStaticListResponse",
        "GET /rest/asset/v1/staticList/byName.json",
        {"params": {"name": "none"}},
    ),
    (
        "asset by id",
        ASSET,
        "ResponseOfStaticListResponse",
        "GET /rest/asset/v1/staticList/1001.json",
        {},
    ),
    ("browse", ASSET, "ResponseOfStaticListResponse", "GET /rest/asset/v1/staticLists.json", {}),
    (
        "asset failure",
        ASSET,
        "ResponseOfStaticListResponse",
        "POST /rest/asset/v1/staticLists.json",
        {"data": {"name": "NoFolder"}},
    ),
    (
        "asset delete",
        ASSET,
        "ResponseOfIdResponse",
        "POST /rest/asset/v1/staticList/1001/delete.json",
        {},
    ),
    (
        "folder by name",
        ASSET,
        "ResponseOfFolderResponse",
        "GET /rest/asset/v1/folder/byName.json",
        {"params": {"name": "Group Lists"}},
    ),
    (
        "folders",
        ASSET,
        "ResponseOfFolderResponse",
        "GET /rest/asset/v1/folders.json",
        {"params": {"maxReturn": "200"}},
    ),
]


@pytest.mark.parametrize(
    ("spec_name", "definition", "request_line", "kwargs"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
async def test_response_matches_swagger_schema(
    populated: Api, spec_name: str, definition: str, request_line: str, kwargs: dict[str, Any]
) -> None:
    """The response body validates against its Swagger definition."""
    method, path = request_line.split(" ")
    answer = await populated.call(method, path, **kwargs)
    assert answer.status == 200
    assert_matches_spec(spec_name, definition, answer.body)


async def _export_answers(api: Api) -> dict[str, Any]:
    """Each bulk extract JSON answer, from one job's life (created, queued, completed)."""
    export = "/bulk/v1/leads/export"
    body = {"fields": ["id", "email"], "format": "CSV", "filter": {"staticListId": 1001}}
    created = await api.post(f"{export}/create.json", body)
    export_id = created.body["result"][0]["exportId"]
    other = (await api.post(f"{export}/create.json", body)).body["result"][0]["exportId"]
    answers = {"create": created.body}
    answers["enqueue"] = (await api.post(f"{export}/{export_id}/enqueue.json", None)).body
    api.clock.advance(120)
    api.wall.advance(120)
    answers["status"] = (await api.get(f"{export}/{export_id}/status.json")).body
    answers["cancel"] = (await api.post(f"{export}/{other}/cancel.json", None)).body
    answers["failure"] = (await api.post(f"{export}/{export_id}/enqueue.json", None)).body
    answers["list"] = (await api.get(f"{export}.json", batchSize="1")).body
    return answers


@pytest.mark.parametrize(
    ("answer", "definition"),
    [
        ("create", "ResponseOfExportResponse"),
        ("enqueue", "ResponseOfExportResponse"),
        ("status", "ResponseOfExportResponse"),
        ("cancel", "ResponseOfExportResponse"),
        ("failure", "ResponseOfExportResponse"),
        ("list", "ResponseOfExportResponseWithToken"),
    ],
)
async def test_bulk_export_answer_matches_swagger_schema(
    populated: Api, answer: str, definition: str
) -> None:
    """A bulk extract answer validates against its Swagger definition."""
    answers = await _export_answers(populated)
    assert answers["status"]["result"][0]["status"] == "Completed"
    assert_matches_spec(MAPI, definition, answers[answer])


async def test_token_response_matches_identity_schema(api: Api) -> None:
    """The token response validates against ResponseOfIdentity."""
    answer = await api.identity("test-client", "test-secret")
    assert_matches_spec(IDENTITY, "ResponseOfIdentity", answer.body)


async def test_schema_check_catches_a_wrong_type() -> None:
    """The validator is live: a numeric error code (instead of a string) is rejected."""
    bad = {"requestId": "1#2", "success": False, "errors": [{"code": 601, "message": "x"}]}
    with pytest.raises(Exception, match="is not of type 'string'"):
        assert_matches_spec(MAPI, "ResponseOfLead", bad)
