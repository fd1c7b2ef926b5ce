"""Static list membership: add (idempotent), remove (1015 if absent), ismember, members.

The hot path of the worker: keep the per-id loops flat (up to 300 ids a call).
"""

from worker.core.marketo_api import MAX_BATCH
from worker.sandbox.envelope import ApiError, Reply, lead_db_ok
from worker.sandbox.leads import project, requested_fields
from worker.sandbox.params import Call, ids, int_param, page
from worker.sandbox.store import Store

_NOT_FOUND = [{"code": "1004", "message": "Lead not found"}]
_NOT_IN_LIST = [{"code": "1015", "message": "Lead not in list"}]


def _members(store: Store, call: Call) -> dict[int, None]:
    members = store.members.get(call.path_id)
    if members is None:
        # Unknown list as 1013: third-party evidence only, but every client expects it.
        raise ApiError("1013", "Static list not found")
    return members


def add(store: Store, call: Call) -> Reply:
    """Add up to 300 leads: `added` (also when already a member) or skipped 1004."""
    members = _members(store, call)
    leads = store.leads
    result: list[object] = []
    for lead_id in ids(call):
        if lead_id in leads:
            members[lead_id] = None
            result.append({"id": lead_id, "status": "added"})
        else:
            result.append({"id": lead_id, "status": "skipped", "reasons": _NOT_FOUND})
    return lead_db_ok(call.rid, result)


def remove(store: Store, call: Call) -> Reply:
    """Remove up to 300 leads: `removed`, or skipped 1004 (no lead) / 1015 (not a member)."""
    members = _members(store, call)
    leads = store.leads
    result: list[object] = []
    for lead_id in ids(call):
        if lead_id in members:
            del members[lead_id]
            result.append({"id": lead_id, "status": "removed"})
        elif lead_id in leads:
            result.append({"id": lead_id, "status": "skipped", "reasons": _NOT_IN_LIST})
        else:
            result.append({"id": lead_id, "status": "skipped", "reasons": _NOT_FOUND})
    return lead_db_ok(call.rid, result)


def is_member(store: Store, call: Call) -> Reply:
    """Check up to 300 leads: `memberof`, `notmemberof`, or skipped 1004."""
    members = _members(store, call)
    result: list[object] = []
    for lead_id in ids(call):
        if lead_id in members:
            result.append({"id": lead_id, "status": "memberof"})
        elif lead_id in store.leads:
            result.append({"id": lead_id, "status": "notmemberof"})
        else:
            result.append({"id": lead_id, "status": "skipped", "reasons": _NOT_FOUND})
    return lead_db_ok(call.rid, result)


def members(store: Store, call: Call) -> Reply:
    """`GET /rest/v1/lists/{id}/leads.json`: members in the order added, paged by 300."""
    found = _members(store, call)
    fields = requested_fields(call)
    batch_size = int_param(call, "batchSize", MAX_BATCH, MAX_BATCH)
    chunk, extra = page(list(found), call, batch_size)
    return lead_db_ok(call.rid, [project(store.leads[i], fields) for i in chunk], **extra)
