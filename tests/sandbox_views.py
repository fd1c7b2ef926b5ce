"""Typed views of the sandbox's inspection answers (`/_sandbox/state` and `/_sandbox/stats`).

The sandbox's client returns plain JSON objects; these views check the parts tests read, so a
changed answer fails where it is read instead of as a confusing comparison later.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

# pydantic validates only typing_extensions' TypedDict before Python 3.12 (it comes with pydantic)
from typing_extensions import TypedDict

from worker.sandbox.process import SandboxProcess


class SandboxList(TypedDict):
    """One static list as the sandbox holds it (description, folder and dates left out)."""

    id: int
    name: str


class SandboxState(TypedDict):
    """The sandbox's leads, lists and memberships (folders and id counters left out)."""

    leads: list[dict[str, Any]]  # a person: id, its fields by REST name, createdAt, updatedAt
    lists: list[SandboxList]
    members: dict[str, list[int]]  # list id (as a JSON key) -> lead ids


class SandboxStats(TypedDict):
    """Calls the sandbox answered, and the quota they used (window and peaks left out)."""

    calls: dict[str, dict[str, int]]  # endpoint -> code ("ok", "606", ...) -> calls
    total_calls: int
    quota_used: int


_STATE = TypeAdapter(SandboxState)
_STATS = TypeAdapter(SandboxStats)


def sandbox_state(sandbox: SandboxProcess) -> SandboxState:
    """The sandbox's state, checked against SandboxState."""
    return _STATE.validate_python(sandbox.state(), strict=True)


def sandbox_stats(sandbox: SandboxProcess) -> SandboxStats:
    """The sandbox's call counters, checked against SandboxStats."""
    return _STATS.validate_python(sandbox.stats(), strict=True)


# the calls that read a list's members: REST pages, or the bulk extract's job and file
READ_ENDPOINTS = (
    "getListMembers",
    "createExportLeads",
    "enqueueExportLeads",
    "getExportLeadsStatus",
    "getExportLeadsFile",
    "cancelExportLeads",
)


def read_calls(sandbox: SandboxProcess) -> dict[str, int]:
    """The list-reading calls the sandbox counted so far, by endpoint (every outcome)."""
    calls = sandbox.stats()["calls"]
    assert isinstance(calls, dict)
    return {name: sum(calls.get(name, {}).values()) for name in READ_ENDPOINTS}
