"""In-memory Marketo data (leads, static lists, memberships, folders) and its state file.

Records are mutable on purpose: a 300-record sync updates leads in place on the hot path.
"""

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from worker.sandbox.folders import Folder, build_tree, user_folders


@dataclass(slots=True)
class Lead:
    """One person record; `fields` holds writable REST fields only."""

    id: int
    fields: dict[str, object]
    created_s: float
    updated_s: float


@dataclass(slots=True)
class StaticList:
    """One static list asset."""

    id: int
    name: str
    description: str
    folder_id: int
    created_s: float
    updated_s: float


def _email_key(value: object) -> str:
    # Email matching is case-insensitive and trimmed here (Adobe does not document it).
    return str(value).strip().lower()


@dataclass(slots=True)
class Store:
    """Every record the sandbox holds; ids auto-increment and are never reused."""

    folders: dict[int, Folder]
    leads: dict[int, Lead] = field(default_factory=dict)
    lists: dict[int, StaticList] = field(default_factory=dict)
    members: dict[int, dict[int, None]] = field(default_factory=dict)
    next_lead_id: int = 1
    next_list_id: int = 1001
    by_email: dict[str, list[int]] = field(default_factory=dict)

    def create_lead(self, values: dict[str, object], now_s: float) -> Lead:
        """Create a lead with the next id."""
        lead = Lead(self.next_lead_id, values, now_s, now_s)
        self.next_lead_id += 1
        self.leads[lead.id] = lead
        if values.get("email") is not None:
            self.by_email.setdefault(_email_key(values["email"]), []).append(lead.id)
        return lead

    def update_lead(self, lead: Lead, values: dict[str, object], now_s: float) -> None:
        """Merge `values` into a lead, keeping the email index right."""
        new_email, old_email = values.get("email"), lead.fields.get("email")
        reindex = "email" in values and new_email != old_email
        if reindex:
            self._unindex(lead)
        lead.fields.update(values)
        lead.updated_s = now_s
        if reindex and new_email is not None:
            self.by_email.setdefault(_email_key(new_email), []).append(lead.id)

    def find(self, name: str, value: object) -> list[int]:
        """Ids of the leads whose field `name` equals `value`."""
        if name == "email":
            return list(self.by_email.get(_email_key(value), ()))
        if name == "id":
            return [value] if isinstance(value, int) and value in self.leads else []
        return [lead.id for lead in self.leads.values() if lead.fields.get(name) == value]

    def delete_lead(self, lead_id: int) -> bool:
        """Delete a lead and its memberships; False if it did not exist."""
        lead = self.leads.pop(lead_id, None)
        if lead is None:
            return False
        self._unindex(lead)
        for members in self.members.values():
            members.pop(lead_id, None)
        return True

    def list_by_name(self, name: str) -> StaticList | None:
        """The static list with this exact name, if any."""
        return next((sl for sl in self.lists.values() if sl.name == name), None)

    def create_list(self, name: str, description: str, folder_id: int, now_s: float) -> StaticList:
        """Create an empty static list with the next id."""
        sl = StaticList(self.next_list_id, name, description, folder_id, now_s, now_s)
        self.next_list_id += 1
        self.lists[sl.id] = sl
        self.members[sl.id] = {}
        return sl

    def delete_list(self, list_id: int) -> None:
        """Delete a static list and its memberships."""
        self.lists.pop(list_id, None)
        self.members.pop(list_id, None)

    def _unindex(self, lead: Lead) -> None:
        email = lead.fields.get("email")
        if email is None:
            return
        ids = self.by_email.get(_email_key(email), [])
        if lead.id in ids:
            ids.remove(lead.id)


def new_store(folder_names: Iterable[str], now_s: float) -> Store:
    """An empty instance with its system folders and the user's folders."""
    return Store(folders=build_tree(folder_names, {}, now_s))


def snapshot(store: Store) -> dict[str, object]:
    """Everything in the store as plain JSON values (for `/_sandbox/state` and the state file)."""
    leads = [
        {"id": ld.id, **ld.fields, "createdAt": ld.created_s, "updatedAt": ld.updated_s}
        for ld in store.leads.values()
    ]
    lists = [
        {
            "id": sl.id,
            "name": sl.name,
            "description": sl.description,
            "folderId": sl.folder_id,
            "createdAt": sl.created_s,
            "updatedAt": sl.updated_s,
        }
        for sl in store.lists.values()
    ]
    members = {str(list_id): list(ids) for list_id, ids in store.members.items()}
    return {
        "leads": leads,
        "lists": lists,
        "members": members,
        "folders": user_folders(store.folders),
        "nextLeadId": store.next_lead_id,
        "nextListId": store.next_list_id,
    }


def save(store: Store, path: Path) -> None:
    """Write the state file atomically (a crash mid-write leaves the old file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(orjson.dumps(snapshot(store)))
    os.replace(tmp, path)


class StateFileError(ValueError):
    """The state file cannot be read or is not one `save` wrote; the message names the file."""


def load(path: Path, folder_names: Iterable[str], now_s: float) -> Store:
    """Read a state file written by `save`; a missing file gives an empty instance.

    Raise StateFileError when the file cannot be read or does not hold a saved state.
    """
    if not path.exists():
        return new_store(folder_names, now_s)
    try:
        return _restore(orjson.loads(path.read_bytes()), folder_names, now_s)
    except OSError as exc:
        raise StateFileError(f"--state-file {path}: cannot read: {exc.strerror}") from None
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as exc:
        problem = f"{type(exc).__name__}: {exc}"
        raise StateFileError(
            f"--state-file {path}: not a sandbox state file ({problem}); move it away to start "
            "empty"
        ) from None


def _restore(data: dict[str, Any], folder_names: Iterable[str], now_s: float) -> Store:
    store = Store(folders=build_tree(folder_names, data.get("folders", {}), now_s))
    for raw in data.get("leads", []):
        lead = Lead(raw.pop("id"), {}, raw.pop("createdAt"), raw.pop("updatedAt"))
        store.leads[lead.id] = lead
        store.update_lead(lead, raw, lead.updated_s)
    for raw in data.get("lists", []):
        store.lists[raw["id"]] = StaticList(
            raw["id"],
            raw["name"],
            raw["description"],
            raw["folderId"],
            raw["createdAt"],
            raw["updatedAt"],
        )
    store.members = {int(k): dict.fromkeys(v) for k, v in data.get("members", {}).items()}
    store.next_lead_id = data.get("nextLeadId", max(store.leads, default=0) + 1)
    store.next_list_id = data.get("nextListId", max(store.lists, default=1000) + 1)
    return store
