"""Static list membership: add, remove, ismember, members, overrides, 1004/1013/1015.

Membership as in docs/marketo-facts.md, Static lists.
"""

import pytest

from tests.sandbox.conftest import Api

pytestmark = pytest.mark.integration


async def _list_with_leads(api: Api, count: int) -> tuple[int, list[int]]:
    result = await api.sync(*[{"email": f"m{i}@example.com"} for i in range(count)])
    return await api.create_list("Members"), [r["id"] for r in result]


def _members(api: Api, list_id: int) -> list[int]:
    return list(api.sandbox.store.members[list_id])


async def test_add_by_query_ids(api: Api) -> None:
    """POST with `?id=` adds the leads."""
    list_id, ids = await _list_with_leads(api, 2)
    answer = await api.call(
        "POST", f"/rest/v1/lists/{list_id}/leads.json", params={"id": f"{ids[0]},{ids[1]}"}
    )
    assert answer.body["result"] == [{"id": i, "status": "added"} for i in ids]
    assert _members(api, list_id) == ids


async def test_add_by_json_body_is_idempotent(api: Api) -> None:
    """Adding a lead that is already a member answers `added` again."""
    list_id, ids = await _list_with_leads(api, 1)
    body = {"input": [{"id": ids[0]}]}
    await api.post(f"/rest/v1/lists/{list_id}/leads.json", body)
    again = await api.post(f"/rest/v1/lists/{list_id}/leads.json", body)
    assert again.body["result"] == [{"id": ids[0], "status": "added"}]
    assert _members(api, list_id) == ids


async def test_add_unknown_lead_is_skipped_1004(api: Api) -> None:
    """An id with no lead is skipped with 1004 while the others are added."""
    list_id, ids = await _list_with_leads(api, 1)
    answer = await api.post(
        f"/rest/v1/lists/{list_id}/leads.json", {"input": [{"id": 999}, {"id": ids[0]}]}
    )
    assert answer.body["result"][0]["reasons"][0]["code"] == "1004"
    assert answer.body["result"][1]["status"] == "added"


async def test_add_to_unknown_list_is_request_level_1013(api: Api) -> None:
    """An unknown list id fails the whole request with 1013."""
    await api.sync({"email": "x@example.com"})
    answer = await api.post("/rest/v1/lists/4040/leads.json", {"input": [{"id": 1}]})
    assert answer.body["success"] is False
    assert answer.body["errors"][0]["code"] == "1013"


async def test_add_more_than_300_ids_is_an_error(api: Api) -> None:
    """More than 300 ids fail the request and add nobody."""
    list_id, _ = await _list_with_leads(api, 1)
    answer = await api.post(f"/rest/v1/lists/{list_id}/leads.json", {"input": [{"id": 1}] * 301})
    assert answer.body["success"] is False
    assert _members(api, list_id) == []


async def test_remove_by_delete_with_query_ids(api: Api) -> None:
    """DELETE with `?id=` removes members."""
    list_id, ids = await _list_with_leads(api, 2)
    await api.post(f"/rest/v1/lists/{list_id}/leads.json", {"input": [{"id": i} for i in ids]})
    answer = await api.call(
        "DELETE", f"/rest/v1/lists/{list_id}/leads.json", params=[("id", str(ids[0]))]
    )
    assert answer.body["result"] == [{"id": ids[0], "status": "removed"}]
    assert _members(api, list_id) == ids[1:]


async def test_remove_by_delete_with_json_body(api: Api) -> None:
    """DELETE with a JSON body removes members."""
    list_id, ids = await _list_with_leads(api, 1)
    await api.post(f"/rest/v1/lists/{list_id}/leads.json", {"input": [{"id": ids[0]}]})
    answer = await api.call(
        "DELETE", f"/rest/v1/lists/{list_id}/leads.json", json={"input": [{"id": ids[0]}]}
    )
    assert answer.body["result"][0]["status"] == "removed"
    assert _members(api, list_id) == []


async def test_remove_with_method_delete_override(api: Api) -> None:
    """POST ?_method=DELETE with a JSON body removes members."""
    list_id, ids = await _list_with_leads(api, 1)
    await api.post(f"/rest/v1/lists/{list_id}/leads.json", {"input": [{"id": ids[0]}]})
    answer = await api.post(
        f"/rest/v1/lists/{list_id}/leads.json", {"input": [{"id": ids[0]}]}, _method="DELETE"
    )
    assert answer.body["result"][0]["status"] == "removed"
    assert _members(api, list_id) == []


async def test_remove_non_member_is_skipped_1015(api: Api) -> None:
    """Removing a lead that is not in the list is skipped with 1015."""
    list_id, ids = await _list_with_leads(api, 1)
    answer = await api.call(
        "DELETE", f"/rest/v1/lists/{list_id}/leads.json", params={"id": str(ids[0])}
    )
    assert answer.body["result"] == [
        {
            "id": ids[0],
            "status": "skipped",
            "reasons": [{"code": "1015", "message": "Lead not in list"}],
        }
    ]


async def test_remove_unknown_lead_is_skipped_1004(api: Api) -> None:
    """Removing an id with no lead is skipped with 1004."""
    list_id, _ = await _list_with_leads(api, 1)
    answer = await api.call("DELETE", f"/rest/v1/lists/{list_id}/leads.json", params={"id": "999"})
    assert answer.body["result"][0]["reasons"][0]["code"] == "1004"


async def test_ismember_reports_each_id(api: Api) -> None:
    """ismember answers memberof, notmemberof, or skipped 1004 per id."""
    list_id, ids = await _list_with_leads(api, 2)
    await api.post(f"/rest/v1/lists/{list_id}/leads.json", {"input": [{"id": ids[0]}]})
    answer = await api.get(
        f"/rest/v1/lists/{list_id}/leads/ismember.json", id=f"{ids[0]},{ids[1]},999"
    )
    statuses = [r["status"] for r in answer.body["result"]]
    assert statuses == ["memberof", "notmemberof", "skipped"]


async def test_ismember_with_method_get_json_body(api: Api) -> None:
    """POST ?_method=GET with a JSON input body works for ismember."""
    list_id, ids = await _list_with_leads(api, 1)
    answer = await api.post(
        f"/rest/v1/lists/{list_id}/leads/ismember.json", {"input": [{"id": ids[0]}]}, _method="GET"
    )
    assert answer.body["result"] == [{"id": ids[0], "status": "notmemberof"}]


async def test_members_of_empty_list_is_empty_success(api: Api) -> None:
    """An empty list reads as an empty result."""
    list_id = await api.create_list("Empty")
    answer = await api.get(f"/rest/v1/lists/{list_id}/leads.json")
    assert answer.body["result"] == []
    assert "nextPageToken" not in answer.body


async def test_members_page_with_next_page_token(unlimited: Api) -> None:
    """Members come in pages of batchSize with a nextPageToken until the last page."""
    list_id, ids = await _list_with_leads(unlimited, 5)
    await unlimited.post(
        f"/rest/v1/lists/{list_id}/leads.json", {"input": [{"id": i} for i in ids]}
    )
    first = await unlimited.get(f"/rest/v1/lists/{list_id}/leads.json", batchSize=3, fields="email")
    token = first.body["nextPageToken"]
    second = await unlimited.get(
        f"/rest/v1/lists/{list_id}/leads.json", batchSize=3, nextPageToken=token
    )
    assert [r["id"] for r in first.body["result"] + second.body["result"]] == ids
    assert "nextPageToken" not in second.body


async def test_members_with_legacy_path_and_method_get(api: Api) -> None:
    """The recorded `POST /rest/v1/list/{id}/leads.json` with a `_method=GET` form body works."""
    list_id, ids = await _list_with_leads(api, 1)
    await api.post(f"/rest/v1/lists/{list_id}/leads.json", {"input": [{"id": ids[0]}]})
    answer = await api.call(
        "POST",
        f"/rest/v1/list/{list_id}/leads.json",
        data={"listId": str(list_id), "_method": "GET"},
    )
    assert [r["id"] for r in answer.body["result"]] == ids


async def test_deleting_a_lead_removes_its_memberships(api: Api) -> None:
    """A deleted lead is no longer a member of any list."""
    list_id, ids = await _list_with_leads(api, 1)
    await api.post(f"/rest/v1/lists/{list_id}/leads.json", {"input": [{"id": ids[0]}]})
    assert _members(api, list_id) == [ids[0]]
    await api.post("/rest/v1/leads/delete.json", {"input": [{"id": ids[0]}]})
    assert _members(api, list_id) == []
