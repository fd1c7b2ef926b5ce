"""The repair step of `resync` against a fake Marketo (the end-to-end runs use the sandbox)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from tests.fakes import Result
from worker.commands.resync import Repair
from worker.core import drift
from worker.core.fields import Converter, FieldSpec
from worker.core.ids import AudienceId, LeadId, ListId
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
