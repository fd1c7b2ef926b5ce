"""Sync Leads (`POST /rest/v1/leads.json`): the four actions, lookupField and per-record reasons.

Records are answered in input order, as Marketo does; request-level problems raise ApiError.
"""

from worker.sandbox.catalogue import BY_NAME, SEARCHABLE, coerce
from worker.sandbox.envelope import ApiError, Reply, lead_db_ok
from worker.sandbox.params import Call, body_input, check_batch
from worker.sandbox.store import Store

ACTIONS = frozenset({"createOnly", "updateOnly", "createOrUpdate", "createDuplicate"})


class _Skip(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _skipped(code: str, message: str) -> dict[str, object]:
    return {"status": "skipped", "reasons": [{"code": code, "message": message}]}


def _values(record: dict[str, object], action: str) -> dict[str, object]:
    """Check every field of a record and return the values to store."""
    out: dict[str, object] = {}
    for name, raw in record.items():
        field = BY_NAME.get(name)
        if field is None:
            raise _Skip("1006", f"Field '{name}' not found")
        if name == "id":
            if action != "updateOnly":
                raise _Skip("1003", "Field 'id' is allowed only with action 'updateOnly'")
            continue
        if field.read_only:
            raise _Skip("1003", f"Field '{name}' is read-only")
        valid, value = coerce(field, raw)
        if not valid:
            raise _Skip("1003", f"Invalid value for field '{name}'")
        out[name] = value
    return out


def _lookup_key(record: dict[str, object], lookup: str) -> object:
    key = record.get(lookup)
    if key is None or key == "":
        raise _Skip("1003", f"Value for lookup field '{lookup}' not specified")
    if lookup == "email" and isinstance(key, str):
        return key.strip().lower()
    if lookup == "id" or BY_NAME[lookup].data_type == "integer":
        valid, number = coerce(BY_NAME["id"], key)
        if not valid:
            raise _Skip("1003", f"Invalid value for field '{lookup}'")
        return number
    return key


class _Syncer:
    """One Sync Leads request: action, lookup field, and the keys seen so far (for 1036)."""

    def __init__(self, store: Store, action: str, lookup: str, now_s: float) -> None:
        self.store = store
        self.action = action
        self.lookup = lookup
        self.now_s = now_s
        self.seen: set[object] = set()

    def one(self, record: object) -> dict[str, object]:
        """Sync one record and return its result entry."""
        if not isinstance(record, dict):
            return _skipped("1003", "Invalid record: an object is required")
        try:
            values = _values(record, self.action)
            if self.action == "createDuplicate":
                return self._create(values)
            key = _lookup_key(record, self.lookup)
            if key in self.seen:
                raise _Skip("1036", "Duplicate lead in input")
            self.seen.add(key)
            return self._upsert(key, values)
        except _Skip as skip:
            return _skipped(skip.code, skip.message)

    def _upsert(self, key: object, values: dict[str, object]) -> dict[str, object]:
        matches = self.store.find(self.lookup, key)
        if len(matches) > 1 and self.action != "createOnly":
            raise _Skip("1007", "Multiple lead match lookup criteria")
        if matches and self.action == "createOnly":
            raise _Skip("1005", "Lead already exists")
        if not matches and self.action == "updateOnly":
            raise _Skip("1004", "Lead not found")
        if not matches:
            return self._create(values)
        lead = self.store.leads[matches[0]]
        self.store.update_lead(lead, values, self.now_s)
        return {"id": lead.id, "status": "updated"}

    def _create(self, values: dict[str, object]) -> dict[str, object]:
        lead = self.store.create_lead(values, self.now_s)
        return {"id": lead.id, "status": "created"}


def sync_one(
    store: Store, record: dict[str, object], action: str, lookup: str, now_s: float
) -> dict[str, object]:
    """Sync one record outside a request (a bulk import row): its result entry."""
    return _Syncer(store, action, lookup, now_s).one(record)


def sync_leads(store: Store, call: Call) -> Reply:
    """Create or update up to 300 leads; each record is created, updated or skipped."""
    records = body_input(call)
    if records is None:
        raise ApiError("609", "Invalid JSON: a body with 'input' is required")
    check_batch(len(records))
    body = call.body if isinstance(call.body, dict) else {}
    action = body.get("action") or "createOrUpdate"
    if action not in ACTIONS:
        raise ApiError("1003", f"Invalid action '{action}'")
    lookup = body.get("lookupField") or "email"
    if lookup not in SEARCHABLE or (lookup == "id" and action != "updateOnly"):
        raise ApiError("1011", f"Field '{lookup}' not supported for lookup")
    syncer = _Syncer(store, str(action), str(lookup), call.now_s)
    return lead_db_ok(call.rid, [syncer.one(record) for record in records])
