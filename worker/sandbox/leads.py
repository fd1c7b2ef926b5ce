"""Lead reads and deletes: get by filter type, get by id, describe/describe2, delete.

Requested fields with no value come back as null, as in recorded exchanges.
"""

from collections.abc import Sequence

from worker.core.marketo_api import MAX_BATCH
from worker.sandbox import catalogue
from worker.sandbox.envelope import ApiError, Reply, lead_db_date, lead_db_ok
from worker.sandbox.params import Call, check_batch, ids, int_param, page, values
from worker.sandbox.store import Lead, Store

MAX_FILTER_MATCHES = 1000


def requested_fields(call: Call) -> tuple[str, ...]:
    """The `fields` projection; an unknown name fails the request with 1006."""
    names = values(call, "fields")
    for name in names:
        if name not in catalogue.BY_NAME:
            raise ApiError("1006", f"Field '{name}' not found")
    return tuple(names) or catalogue.DEFAULT_FIELDS


def project(lead: Lead, fields: Sequence[str]) -> dict[str, object]:
    """A lead as Lead Database reads return it: `id` first, then each requested field or null."""
    out: dict[str, object] = {"id": lead.id}
    got = lead.fields.get
    for name in fields:
        if name == "createdAt":
            out[name] = lead_db_date(lead.created_s)
        elif name == "updatedAt":
            out[name] = lead_db_date(lead.updated_s)
        elif name != "id":
            out[name] = got(name)
    return out


def _filter_key(field: str, raw: str) -> object:
    if catalogue.BY_NAME[field].data_type == "integer":
        valid, number = catalogue.coerce(catalogue.BY_NAME[field], raw)
        return number if valid else raw
    return raw


def get_by_filter(store: Store, call: Call) -> Reply:
    """`GET /rest/v1/leads.json?filterType=…&filterValues=…`: every lead matching any value."""
    field = call.params.get("filterType")
    if not field:
        raise ApiError("701", "filterType cannot be blank")
    if field not in catalogue.SEARCHABLE:
        raise ApiError("1011", f"Field '{field}' not supported for filterType")
    wanted = values(call, "filterValues")
    if not wanted:
        raise ApiError("701", "filterValues cannot be blank")
    check_batch(len(wanted))
    fields = requested_fields(call)
    batch_size = int_param(call, "batchSize", MAX_BATCH, MAX_BATCH)
    found: set[int] = set()
    for raw in wanted:
        found.update(store.find(field, _filter_key(field, raw)))
    if len(found) > MAX_FILTER_MATCHES:
        raise ApiError("1003", "Too many results match the filter")
    chunk, extra = page(sorted(found), call, batch_size)
    return lead_db_ok(call.rid, [project(store.leads[i], fields) for i in chunk], **extra)


def get_by_id(store: Store, call: Call) -> Reply:
    """`GET /rest/v1/lead/{id}.json`: the lead in `result[0]`, or an empty result."""
    fields = requested_fields(call)
    lead = store.leads.get(call.path_id)
    return lead_db_ok(call.rid, [] if lead is None else [project(lead, fields)])


def describe(store: Store, call: Call) -> Reply:
    """`GET /rest/v1/leads/describe.json`."""
    return lead_db_ok(call.rid, catalogue.describe())


def describe2(store: Store, call: Call) -> Reply:
    """`GET /rest/v1/leads/describe2.json`."""
    return lead_db_ok(call.rid, catalogue.describe2())


def delete_leads(store: Store, call: Call) -> Reply:
    """Delete up to 300 leads by id: `deleted`, or skipped with 1004."""
    lead_ids = ids(call)
    check_batch(len(lead_ids))
    result: list[object] = []
    for lead_id in lead_ids:
        if store.delete_lead(lead_id):
            result.append({"id": lead_id, "status": "deleted"})
        else:
            reasons = [{"code": "1004", "message": "Lead not found"}]
            result.append({"id": lead_id, "status": "skipped", "reasons": reasons})
    return lead_db_ok(call.rid, result)
