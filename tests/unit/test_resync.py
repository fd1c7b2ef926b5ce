"""The repair step of `resync` against a fake Marketo (the end-to-end runs use the sandbox)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import pytest

from tests.fakes import Result
from tests.unit.test_bulk_lane import ScriptedBulk
from worker.bulk_lane import QUEUE_FULL_FIRST_S
from worker.bulk_repair import BulkRepair
from worker.commands.resync import Repair
from worker.core import drift
from worker.core.bulk_csv import FAILURE_COLUMN
from worker.core.fields import Converter, FieldSpec
from worker.core.ids import AudienceId, LeadId, ListId
from worker.errors import MarketoError
from worker.flusher import LeadFields

A = AudienceId("a")


class UpdateOnlyMarketo:
    """Knows one person (known@x.io, lead 5); anyone else is skipped with 1004."""

    def __init__(self) -> None:
        self.added: list[LeadId] = []

    async def sync_leads(
        self, records: Sequence[Mapping[str, object]], *, action: str, lookup_field: str
    ) -> list[Result]:
        assert action == "updateOnly"
        return [
            Result("updated", LeadId(5))
            if r["email"] == "known@x.io"
            else Result("skipped", None, (("1004", "Lead not found"),))
            for r in records
        ]

    async def add_to_list(
        self,
        list_id: ListId,
        lead_ids: Sequence[LeadId],
        still_wanted: Callable[[], bool] | None = None,
    ) -> list[Result]:
        self.added += lead_ids
        return [Result("added") for _ in lead_ids]

    async def remove_from_list(
        self,
        list_id: ListId,
        lead_ids: Sequence[LeadId],
        still_wanted: Callable[[], bool] | None = None,
    ) -> list[Result]:
        return [Result("removed") for _ in lead_ids]

    async def delete_leads(
        self, lead_ids: Sequence[LeadId], still_wanted: Callable[[], bool] | None = None
    ) -> list[Result]:
        raise AssertionError("resync repairs lists; it never deletes a person")


async def test_match_only_counts_persons_unknown_to_marketo_as_unmatched_not_refused() -> None:
    """As the worker does, match_only never creates a person: a rerun could not change that,
    so it is not a refusal (which would make every run exit 1)."""
    marketo = UpdateOnlyMarketo()
    fields = LeadFields(
        "email", Converter([], {"email": FieldSpec("email", "email", 255, True)}), match_only=True
    )
    wanted = (drift.Wanted("known@x.io", None), drift.Wanted("stranger@x.io", None))
    gap = drift.Drift(in_marketo=0, desired=2, to_add=wanted, to_remove=())
    tallies = await Repair(marketo, fields, {}).run({A: ListId(1)}, {A: gap})
    assert (marketo.added, dict(tallies[A])) == ([LeadId(5)], {"added": 1, "unmatched": 1})


def _fields() -> LeadFields:
    return LeadFields(
        "email", Converter([], {"email": FieldSpec("email", "email", 255, True)}), match_only=False
    )


def _gap(count: int) -> drift.Drift:
    wanted = tuple(drift.Wanted(f"p{i}@x.io", None) for i in range(count))
    return drift.Drift(in_marketo=0, desired=count, to_add=wanted, to_remove=())


class Sleeps:
    """An injected sleep that returns at once and remembers each wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def _bulk_repair(bulk: ScriptedBulk, sleeps: Sleeps) -> BulkRepair:
    return BulkRepair(bulk, _fields(), {}, sleep=sleeps)


async def test_a_large_add_set_is_repaired_by_one_bulk_import_not_syncs_and_adds() -> None:
    """Five persons to add at a threshold of three: one import with the list's id, no lead
    sync or list add, every one counted added."""
    marketo, bulk = UpdateOnlyMarketo(), ScriptedBulk()
    repair = Repair(marketo, _fields(), {}, bulk=_bulk_repair(bulk, Sleeps()), bulk_above=3)
    tallies = await repair.run({A: ListId(1)}, {A: _gap(5)})
    assert [list_id for _, _, list_id in bulk.imports] == [ListId(1)]
    assert sorted(bulk.emails()) == sorted(f"p{i}@x.io" for i in range(5))
    assert marketo.added == []
    assert dict(tallies[A]) == {"added": 5}


async def test_a_small_add_set_is_repaired_by_rest() -> None:
    """Two persons to add at a threshold of three: no import, lead syncs and list adds."""
    marketo, bulk = UpdateOnlyMarketo(), ScriptedBulk()
    fields = LeadFields(
        "email", Converter([], {"email": FieldSpec("email", "email", 255, True)}), match_only=True
    )
    known = drift.Drift(0, 1, (drift.Wanted("known@x.io", None),), ())
    repair = Repair(marketo, fields, {}, bulk=_bulk_repair(bulk, Sleeps()), bulk_above=3)
    tallies = await repair.run({A: ListId(1)}, {A: known})
    assert bulk.imports == []
    assert (marketo.added, dict(tallies[A])) == ([LeadId(5)], {"added": 1})


async def test_a_failed_row_of_a_repair_import_is_counted_refused() -> None:
    """The failures file names p3@x.io: one refused, the other four added."""
    failures = f"email,{FAILURE_COLUMN}\r\nP3@x.io,Invalid email\r\n".encode()
    bulk = ScriptedBulk(failures=failures)
    repair = Repair(
        UpdateOnlyMarketo(), _fields(), {}, bulk=_bulk_repair(bulk, Sleeps()), bulk_above=3
    )
    tallies = await repair.run({A: ListId(1)}, {A: _gap(5)})
    assert dict(tallies[A]) == {"added": 4, "refused": 1}


async def test_a_repair_import_waits_out_a_full_queue_longer_each_time() -> None:
    """1016 twice: waits of the first and twice the first, then the import goes and completes."""
    bulk, sleeps = ScriptedBulk(queue_full=2), Sleeps()
    repair = Repair(
        UpdateOnlyMarketo(), _fields(), {}, bulk=_bulk_repair(bulk, sleeps), bulk_above=3
    )
    tallies = await repair.run({A: ListId(1)}, {A: _gap(5)})
    assert sleeps.waits[:2] == [QUEUE_FULL_FIRST_S, 2 * QUEUE_FULL_FIRST_S]
    assert len(bulk.imports) == 1
    assert dict(tallies[A]) == {"added": 5}


async def test_a_failed_repair_import_stops_the_run() -> None:
    """An import Marketo reports Failed: a MarketoError (the run exits 1; running again is safe)."""
    bulk = ScriptedBulk(statuses=["Importing", "Failed"])
    repair = Repair(
        UpdateOnlyMarketo(), _fields(), {}, bulk=_bulk_repair(bulk, Sleeps()), bulk_above=3
    )
    with pytest.raises(MarketoError, match="import 1"):
        await repair.run({A: ListId(1)}, {A: _gap(5)})
