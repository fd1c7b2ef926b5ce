"""The flusher's answer to whole-call failures: what is retried, split, or held (fake writer)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from tests.fakes import FakePublisher, ScriptedWriter
from tests.unit.conftest import MakeCore, MakeFlusher
from worker.core.ids import AudienceId, LeadId, ListId, ProfileId
from worker.core.ledger import OffsetLedger
from worker.core.profile import ProfileState
from worker.errors import RequestRejected
from worker.flusher import Flusher

A, B = AudienceId("a"), AudienceId("b")
LISTS = {A: ListId(77), B: ListId(78)}
PROFILES = [ProfileId(f"p{i}") for i in range(3)]


def flusher_with_three_adds(
    make_core: MakeCore, make_flusher: MakeFlusher, lists: Sequence[AudienceId] = (A,)
) -> tuple[Flusher, OffsetLedger]:
    """Three known persons, read at offsets 0-2 of partition 0, entering `lists` in turn."""
    core = make_core(list(LISTS), linger_s=0.0)
    core.store.assign(0)
    core.ledger.assign(0, 1)
    for offset, profile in enumerate(PROFILES):
        lead = LeadId(10 + offset)
        state = ProfileState(ts_ms=1, offset=offset, email=f"{profile}@x.io", lead_id=lead)
        core.store.put(0, profile, state)
        core.ledger.read(0, offset)
        flips = {lists[offset % len(lists)]: True}
        core.outbox.enqueue(profile, state, flips, 0, offset, 0.0)
    return make_flusher(core, list_ids=LISTS), core.ledger


async def one_round(flusher: Flusher) -> None:
    """Start the due calls and wait until they, and any they spawned, have ended."""
    flusher.start_due(flusher.clock(), force=True)
    for _ in range(10):  # bounded: a split spawns at most a few generations here
        if not flusher.tasks:
            return
        await asyncio.gather(*flusher.tasks)
    raise AssertionError("calls still running")


async def test_a_whole_call_refused_holds_its_offsets_and_rejects_no_record(
    make_core: MakeCore, make_flusher: MakeFlusher, writer: ScriptedWriter, publisher: FakePublisher
) -> None:
    """603 (access denied) judged no record: nothing is a rejection, the changes wait, and
    their offsets stay uncommitted."""
    writer.fail = lambda _list, _n: RequestRejected("603", "Access denied")
    flusher, ledger = flusher_with_three_adds(make_core, make_flusher)
    await one_round(flusher)
    assert writer.sizes == [3]  # the call was made
    assert (publisher.rejections, flusher.outbox.size(), ledger.committable()) == ([], 3, {0: 0})


async def test_a_call_too_large_is_split_until_its_halves_pass(
    make_core: MakeCore, make_flusher: MakeFlusher, writer: ScriptedWriter, publisher: FakePublisher
) -> None:
    """HTTP 413 splits the call in halves, each sent on its own; every record gets through."""
    too_large = RequestRejected("http_413", "request too large")
    writer.fail = lambda _list, n: too_large if n > 2 else None
    flusher, ledger = flusher_with_three_adds(make_core, make_flusher)
    await one_round(flusher)
    assert (sorted(writer.sizes), publisher.rejections) == ([1, 2, 3], [])
    assert ledger.committable() == {0: 3}


async def test_an_unexpected_error_puts_the_call_back(
    make_core: MakeCore, make_flusher: MakeFlusher, writer: ScriptedWriter
) -> None:
    """A bug in a call's path must not strand its changes in flight: they are retried."""
    writer.fail = lambda _list, _n: RuntimeError("boom")
    flusher, ledger = flusher_with_three_adds(make_core, make_flusher)
    await one_round(flusher)
    assert writer.sizes == [3]  # the call was made
    assert (flusher.outbox.size(), ledger.committable()) == (3, {0: 0})


async def test_a_list_refused_as_a_whole_does_not_hold_back_the_others(
    make_core: MakeCore, make_flusher: MakeFlusher, writer: ScriptedWriter
) -> None:
    """List A was deleted (1013): its changes wait alone; list B's are sent meanwhile, and
    A's next attempt waits for the refusal's backoff."""
    gone = RequestRejected("1013", "Object not found")
    writer.fail = lambda list_id, _n: gone if list_id == LISTS[A] else None
    flusher, _ = flusher_with_three_adds(make_core, make_flusher, lists=(A, B))
    await one_round(flusher)
    await one_round(flusher)
    assert (writer.added, writer.sizes, flusher.outbox.size()) == ([LISTS[B]], [2, 1], 2)
