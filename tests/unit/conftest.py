"""Fixtures of the unit tier: the fakes of tests/fakes.py, and factories that wire the loop and
the flusher to them as app.py wires the real parts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

import pytest

from tests.fakes import FakeClock, FakeConsumer, FakePublisher, ScriptedWriter
from worker.core.activation import definitions
from worker.core.fields import Converter, FieldSpec
from worker.core.ids import AudienceId, ListId
from worker.core.ledger import OffsetLedger
from worker.core.membership import AudienceRule, Audiences
from worker.core.outbox import Outbox
from worker.core.partitions import Partitions
from worker.core.rules import compile_rule
from worker.core.snapshot import StateCodec
from worker.core.store import StateStore
from worker.flusher import Flusher, LeadFields
from worker.loop import Core, Loop, LoopSettings
from worker.restoring import Restorer, Restores
from worker.telemetry.metrics import Metrics

FR = AudienceId("fr")
AUDIENCES = Audiences([AudienceRule(FR, compile_rule('country == "FR"'))])
LISTS = {FR: ListId(1)}
EMAIL = {"email": FieldSpec("email", "email", 255, True)}


def nothing_to_restore(_partition: int) -> Iterable[list[tuple[bytes, bytes | None]]]:
    """An empty changelog."""
    return []


class MakeCore(Protocol):
    """Builds the pure state a loop or a flusher works on."""

    def __call__(
        self,
        lists: Sequence[AudienceId] = ...,
        *,
        linger_s: float = ...,
        delete_persons: bool = ...,
    ) -> Core: ...


class MakeFlusher(Protocol):
    """Builds a flusher on a core, writing to the test's Marketo and publisher."""

    def __call__(
        self,
        core: Core,
        *,
        list_ids: Mapping[AudienceId, ListId] = ...,
        max_in_flight: int = ...,
        publisher: FakePublisher | None = ...,
    ) -> Flusher: ...


class MakeLoop(Protocol):
    """Builds a loop on the test's fakes, wired as app.py wires the real parts."""

    def __call__(
        self,
        *,
        restorer: Restorer = ...,
        consumer: FakeConsumer | None = ...,
        publisher: FakePublisher | None = ...,
        end_offset: int = ...,
        max_buffered: int = ...,
        commit_interval_s: float = ...,
        delete_persons: bool = ...,
        max_in_flight: int = ...,
    ) -> Loop: ...


@pytest.fixture
def clock() -> FakeClock:
    """The one clock every part decides on."""
    return FakeClock()


@pytest.fixture
def consumer() -> FakeConsumer:
    """The input, handing out no records unless scripted."""
    return FakeConsumer()


@pytest.fixture
def publisher() -> FakePublisher:
    """The outputs: state records, dead letters, rejections."""
    return FakePublisher()


@pytest.fixture
def writer() -> ScriptedWriter:
    """Marketo, as the flusher writes to it."""
    return ScriptedWriter()


@pytest.fixture
def make_core() -> MakeCore:
    """The partitions' table, the ledger, the states and the outbox, for the audience `fr`."""

    def make(
        lists: Sequence[AudienceId] = (FR,), *, linger_s: float = 1.0, delete_persons: bool = False
    ) -> Core:
        ledger, store = OffsetLedger(), StateStore(StateCodec())
        outbox = Outbox(ledger, store, list(lists), 300, linger_s, delete_persons=delete_persons)
        return Core(Partitions(), ledger, store, outbox, AUDIENCES, AUDIENCES.paths)

    return make


@pytest.fixture
def make_flusher(clock: FakeClock, writer: ScriptedWriter, publisher: FakePublisher) -> MakeFlusher:
    """A flusher on the test's clock, Marketo and publisher."""

    def make(
        core: Core,
        *,
        list_ids: Mapping[AudienceId, ListId] = LISTS,
        max_in_flight: int = 1,
        publisher: FakePublisher | None = None,
    ) -> Flusher:
        return Flusher(
            core.outbox,
            writer,
            core.store,
            publisher or default_publisher,
            Metrics(),
            list_ids,
            LeadFields("email", Converter([], EMAIL), match_only=False),
            max_in_flight=max_in_flight,
            clock=clock.monotonic,
            wall=clock.time,
        )

    default_publisher = publisher
    return make


@pytest.fixture
def make_loop(
    clock: FakeClock,
    consumer: FakeConsumer,
    publisher: FakePublisher,
    make_core: MakeCore,
    make_flusher: MakeFlusher,
) -> MakeLoop:
    """A loop for the audience `fr` (list 1), restoring partitions at once (no handover)."""
    default_consumer, default_publisher = consumer, publisher

    def make(
        *,
        restorer: Restorer = nothing_to_restore,
        consumer: FakeConsumer | None = None,
        publisher: FakePublisher | None = None,
        end_offset: int = -1,
        max_buffered: int = 1000,
        commit_interval_s: float = 1.0,
        delete_persons: bool = False,
        max_in_flight: int = 1,
        started: float = 1_000.0,
    ) -> Loop:
        out = publisher or default_publisher
        into = consumer or default_consumer
        core = make_core(delete_persons=delete_persons)
        flusher = make_flusher(core, max_in_flight=max_in_flight, publisher=out)
        restores = Restores(
            partitions=core.partitions,
            store=core.store,
            outbox=core.outbox,
            audiences=core.audiences,
            metrics=flusher.metrics,
            read=restorer,
            write_state=out.state,
            flush=out.flush,
            end_offset=lambda _partition: end_offset,
            resume=into.resume,
            definitions=definitions(core.audiences, LISTS, started),
            clock=clock.monotonic,
        )
        settings = LoopSettings("in", 65536, max_buffered, commit_interval_s, handover_s=0.0)
        return Loop(
            core,
            into,
            out,
            flusher,
            restores,
            flusher.metrics,
            settings,
            clock=clock.monotonic,
            wall_clock=clock.time,
        )

    return make
