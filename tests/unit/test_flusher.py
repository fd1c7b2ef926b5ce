"""The flusher's answer to whole-call failures: what is retried, split, or held (fake writer)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence

from tests.fakes import Result
from worker.core.fields import Converter, FieldSpec
from worker.core.ids import AudienceId, LeadId, ListId, ProfileId
from worker.core.ledger import OffsetLedger
from worker.core.outbox import Outbox, Rejection
from worker.core.profile import ProfileState
from worker.core.snapshot import StateCodec
from worker.core.store import StateStore
from worker.errors import RequestRejected
from worker.flusher import Flusher, LeadFields
from worker.telemetry.metrics import Metrics

A, B = AudienceId("a"), AudienceId("b")
LISTS = {A: ListId(77), B: ListId(78)}
PROFILES = [ProfileId(f"p{i}") for i in range(3)]


class Writer:
    """Adds leads to lists, or fails as `fail` says for a call to a list of so many leads."""

    def __init__(self, fail: Callable[[ListId, int], Exception | None]) -> None:
        self.fail = fail
        self.sizes: list[int] = []
        self.added: list[ListId] = []

    async def sync_leads(
        self, records: Sequence[Mapping[str, object]], *, action: str, lookup_field: str
    ) -> list[Result]:
        raise AssertionError("every profile has a lead id")

    async def add_to_list(
        self,
        list_id: ListId,
        lead_ids: Sequence[LeadId],
        still_wanted: Callable[[], bool] | None = None,
    ) -> list[Result]:
        self.sizes.append(len(lead_ids))
        error = self.fail(list_id, len(lead_ids))
        if error is not None:
            raise error
        self.added.append(list_id)
        return [Result("added") for _ in lead_ids]

    async def remove_from_list(
        self,
        list_id: ListId,
        lead_ids: Sequence[LeadId],
        still_wanted: Callable[[], bool] | None = None,
    ) -> list[Result]:
        raise AssertionError("no removal here")


class Sink:
    def __init__(self) -> None:
        self.rejections: list[Rejection] = []

    def rejection(
        self, rejection: Rejection, list_ids: Mapping[AudienceId, ListId], rejected_at_ms: int
    ) -> None:
        self.rejections.append(rejection)


def flusher_with_three_adds(
    writer: Writer, lists: Sequence[AudienceId] = (A,)
) -> tuple[Flusher, OffsetLedger, Sink]:
    """Three known persons, read at offsets 0-2 of partition 0, entering `lists` in turn."""
    store, ledger, sink = StateStore(StateCodec(())), OffsetLedger(), Sink()
    store.assign(0)
    ledger.assign(0)
    outbox = Outbox(ledger, list(LISTS), 300, 0.0)
    fields = {"email": FieldSpec("email", "email", 255, True)}
    flusher = Flusher(
        outbox,
        writer,
        store,
        sink,
        Metrics(),
        LISTS,
        LeadFields("email", Converter([], fields), match_only=False),
        max_in_flight=1,
    )
    for offset, profile in enumerate(PROFILES):
        lead = LeadId(10 + offset)
        state = ProfileState(ts_ms=1, offset=offset, email=f"{profile}@x.io", lead_id=lead)
        store.put(0, profile, state)
        ledger.read(0, offset)
        flips = {lists[offset % len(lists)]: True}
        outbox.enqueue(profile, state, flips, 0, offset, 0.0)
    return flusher, ledger, sink


async def one_round(flusher: Flusher) -> None:
    """Start the due calls and wait until they, and any they spawned, have ended."""
    flusher.start_due(100.0, force=True)
    for _ in range(10):  # bounded: a split spawns at most a few generations here
        if not flusher.tasks:
            return
        await asyncio.gather(*flusher.tasks)
    raise AssertionError("calls still running")


async def test_a_whole_call_refused_holds_its_offsets_and_rejects_no_record() -> None:
    """603 (access denied) judged no record: nothing is a rejection, the changes wait, and
    their offsets stay uncommitted."""
    writer = Writer(lambda _list, _n: RequestRejected("603", "Access denied"))
    flusher, ledger, sink = flusher_with_three_adds(writer)
    await one_round(flusher)
    assert (sink.rejections, flusher.outbox.size(), ledger.committable()) == ([], 3, {0: 0})


async def test_a_call_too_large_is_split_until_its_halves_pass() -> None:
    """HTTP 413 splits the call in halves, each sent on its own; every record gets through."""
    too_large = RequestRejected("http_413", "request too large")
    writer = Writer(lambda _list, n: too_large if n > 2 else None)
    flusher, ledger, sink = flusher_with_three_adds(writer)
    await one_round(flusher)
    assert (sorted(writer.sizes), sink.rejections) == ([1, 2, 3], [])
    assert ledger.committable() == {0: 3}


async def test_an_unexpected_error_puts_the_call_back() -> None:
    """A bug in a call's path must not strand its changes in flight: they are retried."""
    writer = Writer(lambda _list, _n: RuntimeError("boom"))
    flusher, ledger, _ = flusher_with_three_adds(writer)
    await one_round(flusher)
    assert (flusher.outbox.size(), ledger.committable()) == (3, {0: 0})


async def test_a_list_refused_as_a_whole_does_not_hold_back_the_others() -> None:
    """List A was deleted (1013): its changes wait alone; list B's are sent meanwhile, and
    A's next attempt waits for the refusal's backoff."""
    gone = RequestRejected("1013", "Object not found")
    writer = Writer(lambda list_id, _n: gone if list_id == LISTS[A] else None)
    flusher, _, _ = flusher_with_three_adds(writer, lists=(A, B))
    await one_round(flusher)
    await one_round(flusher)
    assert (writer.added, writer.sizes, flusher.outbox.size()) == ([LISTS[B]], [2, 1], 2)
