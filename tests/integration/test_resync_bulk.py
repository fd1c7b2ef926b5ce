"""Guarantees checked (resync, large lists): a 50,000-member list is read through one bulk
extract, not 167 REST pages; a large set of persons missing from it is put back by a bulk import
with the list's id, not lead syncs and list adds; the list is exact afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.harness import list_members
from tests.integration.test_resync import fill_list, rest, row, run_command, spent
from tests.sandbox_views import READ_ENDPOINTS, read_calls
from worker.core.marketo_api import MAX_BATCH
from worker.sandbox.process import SandboxProcess

pytestmark = pytest.mark.integration
MEMBERS = 50_000
DROPPED = 1_200  # members removed behind the worker's back: above the repair's bulk threshold
THRESHOLD = 1_000
REPAIR_ENDPOINTS = ("syncLeads", "addToList", "importLeads")


@dataclass(frozen=True)
class Large:
    """A sandbox whose list France holds every wanted person, and the worker's config."""

    sandbox: SandboxProcess
    config: Path
    wanted: set[str]
    list_id: int


def calls(sandbox: SandboxProcess, names: tuple[str, ...]) -> dict[str, int]:
    """The calls of `names` the sandbox answered so far, every outcome."""
    counted = sandbox.stats()["calls"]
    assert isinstance(counted, dict)
    return {name: sum(counted.get(name, {}).values()) for name in names}


@pytest.fixture(scope="module")
def large(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Large]:
    """The worker filled a 50,000-member list (extracts refresh every second and take no time,
    imports run at 50,000 rows a second), then stopped; its config repairs by bulk import from
    THRESHOLD persons to add."""
    wanted = {f"big{i}@example.com" for i in range(MEMBERS)}
    fast = ("--bulk-status-interval-s", "1", "--bulk-export-rows-per-s", "0")
    with SandboxProcess("--no-limits", *fast, "--bulk-rows-per-s", "50000") as sandbox:
        tmp = tmp_path_factory.mktemp("resync-bulk")
        people = [(email, "FR") for email in sorted(wanted)]
        config = fill_list(kafka_bootstrap, sandbox, tmp, people, wanted)
        settings = yaml.safe_load(config.read_text())
        settings["flush"]["bulk_threshold"] = THRESHOLD
        config.write_text(yaml.safe_dump(settings))
        state: dict[str, Any] = sandbox.state()
        (list_id,) = [item["id"] for item in state["lists"] if item["name"] == "France"]
        yield Large(sandbox, config, wanted, int(list_id))


def test_a_resync_reads_a_50000_member_list_with_one_bulk_extract(large: Large) -> None:
    """`resync --dry-run` reads the list through an extract job (create, enqueue, a few status
    reads, the file), no REST page, and finds it exact."""
    before = read_calls(large.sandbox)
    result = run_command("worker.commands.resync", str(large.config), "--dry-run")
    assert result.returncode == 0, result.stderr[-3000:]
    used = spent(before, read_calls(large.sandbox))
    assert "getListMembers" not in used
    assert used["createExportLeads"] == used["enqueueExportLeads"] == 1
    assert sum(used.values()) <= 10, used  # REST pages of 300: 167 calls
    assert set(used) <= set(READ_ENDPOINTS)
    assert row(result.stdout, "fr")[2:] == [str(MEMBERS), str(MEMBERS), "0", "0"]


def test_a_resync_puts_a_large_set_of_missing_members_back_by_bulk_import(large: Large) -> None:
    """1,200 members removed through REST: `resync` adds them back with one import into the
    list, no lead sync or list add, and the list equals the audience again."""
    state: dict[str, Any] = large.sandbox.state()
    by_email = {lead["email"]: lead["id"] for lead in state["leads"]}
    dropped = [by_email[f"big{i}@example.com"] for i in range(DROPPED)]
    members = f"/rest/v1/lists/{large.list_id}/leads.json"
    for start in range(0, DROPPED, MAX_BATCH):
        chunk = dropped[start : start + MAX_BATCH]
        rest(large.sandbox, "DELETE", members, {"input": [{"id": i} for i in chunk]})
    assert len(list_members(large.sandbox)["France"]) == MEMBERS - DROPPED
    before = calls(large.sandbox, REPAIR_ENDPOINTS)
    result = run_command("worker.commands.resync", str(large.config))
    assert result.returncode == 0, result.stderr[-3000:]
    after = calls(large.sandbox, REPAIR_ENDPOINTS)
    used = {name: after[name] - before[name] for name in REPAIR_ENDPOINTS}
    assert used == {"syncLeads": 0, "addToList": 0, "importLeads": 1}
    assert list_members(large.sandbox)["France"] == large.wanted
    added = row(result.stdout, "fr")[5]
    assert added == str(DROPPED)
