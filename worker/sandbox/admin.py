"""Inspection and control for tests and benchmarks: `/_sandbox/state`, `/stats`, `/faults`.

Never counted, never limited, no token needed.
"""

from collections.abc import Callable
from typing import Protocol

import orjson
from aiohttp import web

from worker.sandbox import faults as fault_rules
from worker.sandbox.bulk_export import BulkExports
from worker.sandbox.bulk_import import BulkImports
from worker.sandbox.gate import Gate
from worker.sandbox.identity import Services
from worker.sandbox.store import Store, snapshot


class Inspected(Protocol):
    """What the admin endpoints read and change of a sandbox (worker.sandbox.server.Sandbox)."""

    store: Store
    gate: Gate
    bulk_imports: BulkImports
    bulk_exports: BulkExports
    tokens: Services
    clock: Callable[[], float]
    wall_clock: Callable[[], float]


def _json(payload: object, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(payload), content_type="application/json")


def stats(sandbox: Inspected) -> dict[str, object]:
    """Calls per endpoint and code, peaks of the window and of concurrency, quota used."""
    gate = sandbox.gate
    now_s, wall_s = sandbox.clock(), sandbox.wall_clock()
    return {
        "calls": gate.stats.as_json(),
        "total_calls": gate.stats.total(),
        "window_calls": gate.window.count(now_s),
        "peak_window_calls": gate.window.peak,
        "in_flight": gate.concurrency.in_flight,
        "peak_in_flight": gate.concurrency.peak,
        "quota_used": gate.quota.used_today(wall_s),
        "quota_resets_in_s": max(0.0, gate.quota.day.resets_at_s(wall_s) - wall_s),
    }


async def _set_faults(sandbox: Inspected, request: web.Request) -> web.Response:
    try:
        spec = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return _json({"error": "body must be a JSON object"}, 400)
    if not isinstance(spec, dict):
        return _json({"error": "body must be a JSON object"}, 400)
    gate, now_s = sandbox.gate, sandbox.clock()
    try:
        gate.faults = fault_rules.update(gate.faults, spec, now_s)
    except fault_rules.FaultSpecError as error:
        return _json({"error": str(error)}, 400)
    if spec.get("revoke_tokens"):
        sandbox.tokens.revoke_all()
    if spec.get("exhaust_quota"):
        gate.quota.exhaust(sandbox.wall_clock(), sandbox.tokens.primary.user_id)
    return _json(fault_rules.describe(gate.faults, now_s))


async def handle(sandbox: Inspected, request: web.Request) -> web.Response:
    """Answer a `/_sandbox/...` request."""
    path, method = request.path, request.method
    if path == "/_sandbox/state" and method == "GET":
        imports = {"bulkImports": sandbox.bulk_imports.as_json()}
        return _json({**snapshot(sandbox.store), **imports, **sandbox.bulk_exports.state()})
    if path == "/_sandbox/stats" and method == "GET":
        return _json(stats(sandbox))
    if path == "/_sandbox/faults" and method == "GET":
        return _json(fault_rules.describe(sandbox.gate.faults, sandbox.clock()))
    if path == "/_sandbox/faults" and method == "POST":
        return await _set_faults(sandbox, request)
    return _json({"error": f"no admin endpoint {method} {path}"}, 404)
