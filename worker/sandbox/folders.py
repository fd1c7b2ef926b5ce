"""The folder tree of a new instance plus the user's folders, and the Asset API folder lookups.

System folders follow a fresh instance (`/Lead Database/Default/Group Lists`, id 12).
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

import orjson

from worker.sandbox.envelope import ApiError, Reply, asset_date, asset_ok
from worker.sandbox.params import Call, int_param

USER_FOLDER_FIRST_ID = 1001
_LIST_HOLDERS = frozenset({"List", "Marketing Folder"})
_NOT_FOUND = "No assets found for the given search criteria."


@dataclass(frozen=True, slots=True)
class Folder:
    """A folder; `parent_id` is None for the three top-level trees."""

    id: int
    name: str
    folder_type: str
    parent_id: int | None
    path: str
    is_system: bool
    created_s: float

    @property
    def holds_lists(self) -> bool:
        """Whether static lists may be created here (else 711)."""
        return self.folder_type in _LIST_HOLDERS


def _system_folders(now_s: float) -> list[Folder]:
    rows = [
        (1, "Marketing Activities", "Zone", None, "/Marketing Activities"),
        (2, "Default", "Zone", 1, "/Marketing Activities/Default"),
        (3, "Design Studio", "Zone", None, "/Design Studio"),
        (4, "Default", "Zone", 3, "/Design Studio/Default"),
        (6, "Lead Database", "Zone", None, "/Lead Database"),
        (5, "Default", "Zone", 6, "/Lead Database/Default"),
        (12, "Group Lists", "List", 5, "/Lead Database/Default/Group Lists"),
        (13, "Landing Pages", "Landing Page", 4, "/Design Studio/Default/Landing Pages"),
        (14, "Emails", "Email", 4, "/Design Studio/Default/Emails"),
    ]
    return [Folder(i, n, t, p, path, True, now_s) for i, n, t, p, path in rows]


def build_tree(names: Iterable[str], known: Mapping[str, int], now_s: float) -> dict[int, Folder]:
    """Return the system folders plus one marketing folder per name, keeping ids from `known`."""
    tree = {f.id: f for f in _system_folders(now_s)}
    next_id = max([USER_FOLDER_FIRST_ID - 1, *known.values()]) + 1
    for name in dict.fromkeys([*known, *names]):
        fid = known.get(name)
        if fid is None:
            fid, next_id = next_id, next_id + 1
        path = f"/Marketing Activities/Default/{name}"
        tree[fid] = Folder(fid, name, "Marketing Folder", 2, path, False, now_s)
    return tree


def user_folders(tree: Mapping[int, Folder]) -> dict[str, int]:
    """Return the non-system folders by name, for the state file."""
    return {f.name: f.id for f in tree.values() if not f.is_system}


def folder_json(f: Folder) -> dict[str, object]:
    """Render a folder as the recorded `folder/byName.json` items (null description and url)."""
    parent = None if f.parent_id is None else {"id": f.parent_id, "type": "Folder"}
    return {
        "name": f.name,
        "description": None,
        "createdAt": asset_date(f.created_s),
        "updatedAt": asset_date(f.created_s),
        "url": None,
        "folderId": {"id": f.id, "type": "Folder"},
        "folderType": f.folder_type,
        "parent": parent,
        "path": f.path,
        "isArchive": False,
        "isSystem": f.is_system,
        "accessZoneId": 1,
        "workspace": "Default",
        "id": f.id,
    }


def parse_folder_ref(raw: str | None, param: str) -> int:
    """Parse a `{"id":12,"type":"Folder"}` parameter (a bare id is tolerated); 701 if blank."""
    if not raw:
        raise ApiError("701", f"{param} cannot be blank")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError("1001", f"Invalid value for {param}: {raw}") from exc
    if isinstance(value, dict):
        value = value.get("id")
    if not isinstance(value, int) or isinstance(value, bool):
        raise ApiError("1001", f"Invalid value for {param}: {raw}")
    return value


def find_by_name(tree: Mapping[int, Folder], name: str, root_id: int | None) -> list[Folder]:
    """Every folder called `name` (there may be several), optionally under `root_id`."""
    found = [f for f in tree.values() if f.name == name]
    if root_id is not None:
        found = [f for f in found if _is_under(tree, f, root_id)]
    return sorted(found, key=lambda f: f.id)


def browse(tree: Mapping[int, Folder], root_id: int | None, max_depth: int) -> list[Folder]:
    """Folders at most `max_depth` levels below `root_id` (or every top-level tree), root first."""
    out: list[Folder] = []
    frontier = [tree[root_id]] if root_id is not None and root_id in tree else []
    if root_id is None:
        frontier = [f for f in tree.values() if f.parent_id is None]
    for _ in range(max_depth + 1):
        out.extend(frontier)
        ids = {f.id for f in frontier}
        frontier = sorted((f for f in tree.values() if f.parent_id in ids), key=lambda f: f.id)
    return out


def _is_under(tree: Mapping[int, Folder], folder: Folder, root_id: int) -> bool:
    current: Folder | None = folder
    while current is not None:
        if current.id == root_id:
            return True
        current = tree.get(current.parent_id) if current.parent_id is not None else None
    return False


def not_found_warning() -> tuple[str, ...]:
    """The warning an Asset search answers with when nothing matches."""
    return (_NOT_FOUND,)


class HasFolders(Protocol):
    """What the folder endpoints read of the store (worker.sandbox.store.Store): its tree."""

    @property
    def folders(self) -> Mapping[int, Folder]: ...


def folder_by_name(store: HasFolders, call: Call) -> Reply:
    """`GET /rest/asset/v1/folder/byName.json?name=…[&root=…]`: every folder with that name."""
    name = call.params.get("name")
    if not name:
        raise ApiError("701", "name cannot be blank")
    root = call.params.get("root")
    root_id = parse_folder_ref(root, "root") if root else None
    found = find_by_name(store.folders, name, root_id)
    if not found:
        return asset_ok(call.rid, None, not_found_warning())
    return asset_ok(call.rid, [folder_json(f) for f in found])


def folders(store: HasFolders, call: Call) -> Reply:
    """`GET /rest/asset/v1/folders.json` with `root`, `maxDepth`, `offset`, `maxReturn`."""
    root = call.params.get("root")
    root_id = parse_folder_ref(root, "root") if root else None
    max_depth = int_param(call, "maxDepth", 2, 100)
    offset = int_param(call, "offset", 0, 1 << 31)
    max_return = int_param(call, "maxReturn", 20, 200)
    found = browse(store.folders, root_id, max_depth)[offset : offset + max_return]
    if not found:
        return asset_ok(call.rid, None, not_found_warning())
    return asset_ok(call.rid, [folder_json(f) for f in found])


def folder_by_id(store: HasFolders, call: Call) -> Reply:
    """`GET /rest/asset/v1/folder/{id}.json`."""
    found = store.folders.get(call.path_id)
    if found is None:
        return asset_ok(call.rid, None, not_found_warning())
    return asset_ok(call.rid, [folder_json(found)])
