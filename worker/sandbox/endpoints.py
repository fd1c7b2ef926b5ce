"""The endpoint table: every supported (method, path) bound to its handler and body kind.

docs/marketo-facts.md lists the Marketo behaviour this table covers.
"""

from functools import partial

from worker.sandbox import bulk_export, bulk_import, folders, leads, lists, membership, sync
from worker.sandbox.bulk_export import BulkExports
from worker.sandbox.bulk_import import BulkImports
from worker.sandbox.routes import Body, Route, Router
from worker.sandbox.stats import Usage
from worker.sandbox.store import Store

_LEAD_DB = (
    ("GET", "/rest/v1/leads.json", "getLeadsByFilter", leads.get_by_filter, Body.QUERY),
    ("POST", "/rest/v1/leads.json", "syncLeads", sync.sync_leads, Body.JSON),
    ("DELETE", "/rest/v1/leads.json", "deleteLeads", leads.delete_leads, Body.JSON),
    ("POST", "/rest/v1/leads/delete.json", "deleteLeads", leads.delete_leads, Body.JSON),
    ("GET", "/rest/v1/lead/{id}.json", "getLeadById", leads.get_by_id, Body.QUERY),
    ("GET", "/rest/v1/leads/describe.json", "describe", leads.describe, Body.QUERY),
    ("GET", "/rest/v1/leads/describe2.json", "describe2", leads.describe2, Body.QUERY),
    ("GET", "/rest/v1/lists.json", "getLists", lists.lead_db_lists, Body.QUERY),
    ("GET", "/rest/v1/lists/{id}.json", "getListById", lists.lead_db_list, Body.QUERY),
    ("GET", "/rest/v1/lists/{id}/leads.json", "getListMembers", membership.members, Body.QUERY),
    ("GET", "/rest/v1/list/{id}/leads.json", "getListMembers", membership.members, Body.QUERY),
    ("POST", "/rest/v1/lists/{id}/leads.json", "addToList", membership.add, Body.JSON),
    ("DELETE", "/rest/v1/lists/{id}/leads.json", "removeFromList", membership.remove, Body.JSON),
    (
        "GET",
        "/rest/v1/lists/{id}/leads/ismember.json",
        "isMember",
        membership.is_member,
        Body.QUERY,
    ),
)
_ASSET = (
    ("GET", "/rest/asset/v1/staticLists.json", "browseStaticLists", lists.browse, Body.QUERY),
    ("POST", "/rest/asset/v1/staticLists.json", "createStaticList", lists.create, Body.FORM),
    ("GET", "/rest/asset/v1/staticList/byName.json", "staticListByName", lists.by_name, Body.QUERY),
    ("GET", "/rest/asset/v1/staticList/{id}.json", "staticListById", lists.by_id, Body.QUERY),
    ("POST", "/rest/asset/v1/staticList/{id}.json", "updateStaticList", lists.update, Body.FORM),
    (
        "POST",
        "/rest/asset/v1/staticList/{id}/delete.json",
        "deleteStaticList",
        lists.delete,
        Body.FORM,
    ),
    (
        "GET",
        "/rest/asset/v1/folder/byName.json",
        "folderByName",
        folders.folder_by_name,
        Body.QUERY,
    ),
    ("GET", "/rest/asset/v1/folders.json", "browseFolders", folders.folders, Body.QUERY),
    ("GET", "/rest/asset/v1/folder/{id}.json", "folderById", folders.folder_by_id, Body.QUERY),
)


def build_router(store: Store, usage: Usage, imports: BulkImports, exports: BulkExports) -> Router:
    """Bind every endpoint to the store (and the usage counters, the bulk jobs)."""
    router = Router()
    for method, path, name, handler, body in (*_LEAD_DB, *_ASSET):
        router.add(method, path, Route(name, partial(handler, store), body))
    for method, path, name, bulk_handler, body in bulk_import.ROUTES:
        router.add(method, path, Route(name, partial(bulk_handler, imports), body))
    bulk_export.register(router, exports)
    router.add("GET", "/rest/v1/stats/usage.json", Route("usage", usage.usage, Body.QUERY))
    router.add("GET", "/rest/v1/stats/errors.json", Route("usageErrors", usage.errors, Body.QUERY))
    return router
