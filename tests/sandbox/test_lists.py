"""Static list objects and folders: create, by name, by id, browse, delete; lists.json.

Lists as in docs/marketo-facts.md, Static lists.
"""

import json

import pytest

from tests.sandbox.conftest import Api, StartSandbox

pytestmark = pytest.mark.integration

CREATE = "/rest/asset/v1/staticLists.json"
NOT_FOUND = "No assets found for the given search criteria."


def _folder(folder_id: int) -> str:
    return json.dumps({"id": folder_id, "type": "Folder"})


async def test_new_instance_has_system_group_lists_folder(api: Api) -> None:
    """`Group Lists` exists as a system list folder at the recorded path."""
    answer = await api.get("/rest/asset/v1/folder/byName.json", name="Group Lists")
    folder = answer.body["result"][0]
    assert folder["isSystem"] is True
    assert folder["folderType"] == "List"
    assert folder["path"] == "/Lead Database/Default/Group Lists"


async def test_folder_flags_create_named_folders(start_sandbox: StartSandbox) -> None:
    """Each `--folder` name becomes a user folder that can be found by name."""
    api = await start_sandbox(folders=("Audiences", "Segments"))
    answer = await api.get("/rest/asset/v1/folder/byName.json", name="Segments")
    assert answer.body["result"][0]["isSystem"] is False


async def test_unknown_folder_name_is_success_with_warning(api: Api) -> None:
    """Looking up a missing folder succeeds with the not-found warning and no result."""
    answer = await api.get("/rest/asset/v1/folder/byName.json", name="Nope")
    assert answer.body["success"] is True
    assert answer.body["warnings"] == [NOT_FOUND]
    assert "result" not in answer.body


async def test_browse_folders_under_root_respects_depth(api: Api) -> None:
    """folders.json with a root returns the root and its children down to maxDepth."""
    answer = await api.get("/rest/asset/v1/folders.json", root=_folder(6), maxDepth=1)
    assert [f["id"] for f in answer.body["result"]] == [6, 5]


async def test_create_list_returns_it_in_the_folder(api: Api) -> None:
    """Creating a list returns its id, name and folder."""
    answer = await api.form(CREATE, name="High value", folder=_folder(1001), description="d")
    created = answer.body["result"][0]
    assert created["name"] == "High value"
    assert created["folder"] == {"id": 1001, "type": "Folder"}
    assert created["description"] == "d"


async def test_create_list_with_taken_name_fails(api: Api) -> None:
    """List names are unique across the instance."""
    await api.create_list("Taken")
    answer = await api.form(CREATE, name="Taken", folder=_folder(12))
    assert answer.body["success"] is False
    assert answer.body["errors"][0]["code"] == "709"


async def test_create_list_in_missing_folder_is_710(api: Api) -> None:
    """The folder must exist."""
    answer = await api.form(CREATE, name="Orphan", folder=_folder(4242))
    assert answer.body["errors"][0]["code"] == "710"


async def test_create_list_in_non_list_folder_is_711(api: Api) -> None:
    """A Design Studio folder cannot hold lists."""
    answer = await api.form(CREATE, name="Wrong", folder=_folder(14))
    assert answer.body["errors"][0]["code"] == "711"


async def test_create_list_with_json_body_is_612(api: Api) -> None:
    """Asset writes take a form body; JSON is the wrong content type."""
    answer = await api.post(CREATE, {"name": "J", "folder": {"id": 1001, "type": "Folder"}})
    assert answer.body["errors"][0]["code"] == "612"


async def test_list_by_name_found(api: Api) -> None:
    """byName returns the list with exactly that name."""
    list_id = await api.create_list("Findme")
    answer = await api.get("/rest/asset/v1/staticList/byName.json", name="Findme")
    assert answer.body["result"][0]["id"] == list_id


async def test_list_by_name_missing_is_success_without_result(api: Api) -> None:
    """An unknown name is success true, the recorded warning, and no result key."""
    answer = await api.get("/rest/asset/v1/staticList/byName.json", name="ghost")
    assert answer.body["success"] is True
    assert answer.body["warnings"] == [NOT_FOUND]
    assert "result" not in answer.body


async def test_list_by_id(api: Api) -> None:
    """A list is read by id through the Asset API."""
    list_id = await api.create_list("ById")
    answer = await api.get(f"/rest/asset/v1/staticList/{list_id}.json")
    assert answer.body["result"][0]["name"] == "ById"


async def test_browse_lists_pages_with_offset_and_max_return(api: Api) -> None:
    """staticLists.json pages by offset/maxReturn; past the end is the not-found warning."""
    ids = [await api.create_list(f"L{i}") for i in range(3)]
    first = await api.get(CREATE, maxReturn=2)
    second = await api.get(CREATE, maxReturn=2, offset=2)
    past = await api.get(CREATE, maxReturn=2, offset=4)
    assert [sl["id"] for sl in first.body["result"]] == ids[:2]
    assert [sl["id"] for sl in second.body["result"]] == ids[2:]
    assert past.body["warnings"] == [NOT_FOUND]


async def test_browse_lists_max_return_above_200_is_an_error(api: Api) -> None:
    """maxReturn is capped at 200."""
    answer = await api.get(CREATE, maxReturn=201)
    assert answer.body["success"] is False


async def test_delete_list(api: Api) -> None:
    """Deleting a list returns its id and it is gone afterwards."""
    list_id = await api.create_list("Doomed")
    answer = await api.form(f"/rest/asset/v1/staticList/{list_id}/delete.json")
    assert answer.body["result"] == [{"id": list_id}]
    assert list_id not in api.sandbox.store.lists


async def test_asset_api_rejects_method_override(api: Api) -> None:
    """The Asset API stopped honouring `_method` in 2020."""
    answer = await api.call(
        "POST",
        "/rest/asset/v1/staticList/byName.json",
        params={"_method": "GET"},
        data={"name": "x"},
    )
    assert answer.body["success"] is False
    assert answer.body["errors"][0]["code"] == "605"


async def test_lead_db_lists_by_name(api: Api) -> None:
    """lists.json filters by name and uses Lead Database dates."""
    list_id = await api.create_list("LeadDb")
    await api.create_list("Other")
    answer = await api.get("/rest/v1/lists.json", name="LeadDb")
    assert [sl["id"] for sl in answer.body["result"]] == [list_id]
    assert answer.body["result"][0]["createdAt"].endswith("Z")


async def test_lead_db_list_by_id_unknown_is_1013(api: Api) -> None:
    """An unknown list id on lists/{id}.json is request-level 1013."""
    answer = await api.get("/rest/v1/lists/5.json")
    assert answer.body["errors"][0]["code"] == "1013"
