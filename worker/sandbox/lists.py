"""Static list objects: Asset API create/by name/by id/browse/update/delete, Lead Database lookups.

Asset answers carry `errors: []` and string warnings; "not found" is a success without `result`.
"""

from worker.core.marketo_api import MAX_BATCH
from worker.sandbox.envelope import ApiError, Reply, asset_date, asset_ok, lead_db_date, lead_db_ok
from worker.sandbox.folders import not_found_warning, parse_folder_ref
from worker.sandbox.params import Call, int_param, page, values
from worker.sandbox.store import StaticList, Store

MAX_RETURN = 200


def asset_json(sl: StaticList) -> dict[str, object]:
    """A list as the Asset API renders it (`StaticListResponse`)."""
    url = f"https://app-sandbox.marketo.com/#ST{sl.id}A1"
    return {
        "id": sl.id,
        "name": sl.name,
        "description": sl.description,
        "createdAt": asset_date(sl.created_s),
        "updatedAt": asset_date(sl.updated_s),
        "url": url,
        "folder": {"id": sl.folder_id, "type": "Folder"},
        "computedUrl": url,
        "workspace": "Default",
    }


def lead_db_json(sl: StaticList) -> dict[str, object]:
    """A list as the Lead Database API renders it (`StaticList`)."""
    return {
        "id": sl.id,
        "name": sl.name,
        "description": sl.description,
        "workspaceName": "Default",
        "createdAt": lead_db_date(sl.created_s),
        "updatedAt": lead_db_date(sl.updated_s),
    }


def _found(call: Call, found: list[StaticList]) -> Reply:
    if not found:
        return asset_ok(call.rid, None, not_found_warning())
    return asset_ok(call.rid, [asset_json(sl) for sl in found])


def create(store: Store, call: Call) -> Reply:
    """`POST /rest/asset/v1/staticLists.json`: unique name, in a folder that can hold lists."""
    name = (call.params.get("name") or "").strip()
    if not name:
        raise ApiError("701", "name cannot be blank")
    folder = store.folders.get(parse_folder_ref(call.params.get("folder"), "folder"))
    if folder is None:
        raise ApiError("710", "Parent folder not found")
    if not folder.holds_lists:
        raise ApiError("711", f"Incompatible folder type '{folder.folder_type}'")
    if store.list_by_name(name) is not None:
        # The exact code is undocumented by Adobe; 709 is the business-rule family.
        raise ApiError("709", f"Static List name '{name}' is already in use")
    description = call.params.get("description") or ""
    return _found(call, [store.create_list(name, description, folder.id, call.now_s)])


def by_name(store: Store, call: Call) -> Reply:
    """`GET /rest/asset/v1/staticList/byName.json?name=…` (exact match)."""
    found = store.list_by_name(call.params.get("name") or "")
    return _found(call, [] if found is None else [found])


def by_id(store: Store, call: Call) -> Reply:
    """`GET /rest/asset/v1/staticList/{id}.json`."""
    found = store.lists.get(call.path_id)
    return _found(call, [] if found is None else [found])


def browse(store: Store, call: Call) -> Reply:
    """`GET /rest/asset/v1/staticLists.json` with `folder`, `offset` and `maxReturn` (≤200)."""
    offset = int_param(call, "offset", 0, 1 << 31)
    max_return = int_param(call, "maxReturn", 20, MAX_RETURN)
    found = sorted(store.lists.values(), key=lambda sl: sl.id)
    if call.params.get("folder"):
        folder_id = parse_folder_ref(call.params.get("folder"), "folder")
        found = [sl for sl in found if sl.folder_id == folder_id]
    return _found(call, found[offset : offset + max_return])


def update(store: Store, call: Call) -> Reply:
    """`POST /rest/asset/v1/staticList/{id}.json`: rename or re-describe a list."""
    sl = store.lists.get(call.path_id)
    if sl is None:
        raise ApiError("702", f"Static List {call.path_id} not found")
    name = (call.params.get("name") or "").strip()
    other = store.list_by_name(name) if name else None
    if other is not None and other.id != sl.id:
        raise ApiError("709", f"Static List name '{name}' is already in use")
    sl.name = name or sl.name
    sl.description = call.params.get("description", sl.description)
    sl.updated_s = call.now_s
    return _found(call, [sl])


def delete(store: Store, call: Call) -> Reply:
    """`POST /rest/asset/v1/staticList/{id}/delete.json`: `result: [{"id": …}]`."""
    if call.path_id not in store.lists:
        raise ApiError("702", f"Static List {call.path_id} not found")
    store.delete_list(call.path_id)
    return asset_ok(call.rid, [{"id": call.path_id}])


def lead_db_lists(store: Store, call: Call) -> Reply:
    """`GET /rest/v1/lists.json` with optional `id`/`name` filters and paging."""
    batch_size = int_param(call, "batchSize", MAX_BATCH, MAX_BATCH)
    wanted_ids = {int(v) for v in values(call, "id") if v.isdigit()}
    wanted_names = set(values(call, "name"))
    found = sorted(store.lists.values(), key=lambda sl: sl.id)
    if wanted_ids or wanted_names:
        found = [sl for sl in found if sl.id in wanted_ids or sl.name in wanted_names]
    chunk, extra = page(found, call, batch_size)
    return lead_db_ok(call.rid, [lead_db_json(sl) for sl in chunk], **extra)


def lead_db_list(store: Store, call: Call) -> Reply:
    """`GET /rest/v1/lists/{id}.json`: one list, or request-level 1013."""
    sl = store.lists.get(call.path_id)
    if sl is None:
        raise ApiError("1013", "Static list not found")
    return lead_db_ok(call.rid, [lead_db_json(sl)])
