"""Audience activation at a restore: the decision read from the partition's definitions record,
what an activation writes and queues, and a stand-down that leaves the partition alone."""

from __future__ import annotations

from tests.fakes import Changelog, FakeConsumer, FakePublisher, run_until_idle
from tests.unit.conftest import AUDIENCES, FR, LISTS, MakeLoop
from tests.unit.test_loop import CODEC, layout_record, saved
from worker.app import _readiness
from worker.core.activation import DEFINITIONS_KEY, definitions, parse, record
from worker.core.ids import AudienceId, ListId, ProfileId
from worker.core.membership import AudienceRule, Audiences
from worker.core.rules import compile_rule
from worker.core.snapshot import CONTROL_PREFIX
from worker.loop import Loop

GONE = AudienceId("gone")
# the loop's replica starts at 1000 (tests/unit/conftest.py)
EARLIER, LATER = 500.0, 2_000.0


def recorded(started: float, *, with_gone: bool = False, rule: str = 'country == "FR"') -> bytes:
    """A definitions record of `fr` (with `rule`), and `gone` too, by a replica started then."""
    items = [AudienceRule(FR, compile_rule(rule))]
    lists = dict(LISTS)
    if with_gone:
        items.append(AudienceRule(GONE, compile_rule("country == 'DE'")))
        lists[GONE] = ListId(9)
    return record(definitions(Audiences(items), lists, started))[1]


async def assign(
    loop_maker: MakeLoop, changelog: Changelog
) -> tuple[Loop, FakePublisher, FakeConsumer]:
    """Assign partition 0 to a loop restoring `changelog`; turn it until idle."""
    publisher, consumer = FakePublisher(), FakeConsumer()
    loop = loop_maker(restorer=lambda _p: [changelog], publisher=publisher, consumer=consumer)
    loop.on_assign({0})
    await run_until_idle(loop)
    return loop, publisher, consumer


def written(publisher: FakePublisher) -> list[bytes]:
    """The keys the restore wrote to the state topic, in order, the layout record left out."""
    return [key for _, key, _ in publisher.states if not key.startswith(CONTROL_PREFIX + b"l")]


async def test_a_partition_without_a_record_is_activated_and_its_record_written_last(
    make_loop: MakeLoop,
) -> None:
    """States written before records existed are evaluated; the changed one is written, then
    our record, and its add is queued."""
    changelog: Changelog = [layout_record(), (b"p1", saved("FR", set(), set()))]
    loop, publisher, consumer = await assign(make_loop, changelog)
    assert written(publisher) == [b"p1", DEFINITIONS_KEY]
    assert (consumer.resumed, loop.outbox.lists[FR].pending(ProfileId("p1"))) == ({0}, True)


async def test_an_activation_record_names_this_replica_and_its_definitions(
    make_loop: MakeLoop,
) -> None:
    """The record written is our definitions with our start time."""
    _, publisher, _ = await assign(make_loop, [(b"p1", saved("DE", set(), set()))])
    [value] = [v for _, key, v in publisher.states if key == DEFINITIONS_KEY]
    assert parse(value) == definitions(AUDIENCES, LISTS, 1_000.0)


async def test_the_same_definitions_rewrite_nothing_and_queue_nothing(make_loop: MakeLoop) -> None:
    """A settled state under the recorded definitions costs no write and no call."""
    changelog: Changelog = [
        layout_record(),
        (DEFINITIONS_KEY, recorded(LATER)),
        (b"p1", saved("FR", {FR}, {FR})),
    ]
    loop, publisher, consumer = await assign(make_loop, changelog)
    assert (publisher.states, consumer.resumed, loop.outbox.size()) == ([], {0}, 0)


async def test_a_changed_rule_queues_the_removal_of_a_member_it_no_longer_matches(
    make_loop: MakeLoop,
) -> None:
    """Recorded by an earlier replica with another rule: the member that left is removed."""
    changelog: Changelog = [
        layout_record(),
        (DEFINITIONS_KEY, recorded(EARLIER, rule='country == "DE"')),
        (b"p1", saved("DE", {FR}, {FR})),
        (b"p2", saved("FR", set(), set())),
    ]
    loop, _, _ = await assign(make_loop, changelog)
    buffer = loop.outbox.lists[FR]
    assert (buffer.pending(ProfileId("p1")), buffer.pending(ProfileId("p2"))) == (False, True)


async def test_a_removed_audience_leaves_the_state_and_costs_no_call(make_loop: MakeLoop) -> None:
    """Its memberships leave desired and acknowledged; nothing is queued for it or for `fr`."""
    changelog: Changelog = [
        layout_record(),
        (DEFINITIONS_KEY, recorded(EARLIER, with_gone=True)),
        (b"p1", saved("FR", {FR, GONE}, {FR, GONE})),
    ]
    loop, publisher, _ = await assign(make_loop, changelog)
    [data] = [v for _, key, v in publisher.states if key == b"p1"]
    assert data is not None
    state = CODEC.decode(data)
    assert (state.desired, state.acked, loop.outbox.size()) == (frozenset({FR}), frozenset({FR}), 0)


async def test_newer_definitions_of_a_later_replica_stand_the_partition_down(
    make_loop: MakeLoop,
) -> None:
    """Recorded by a replica started after us with other definitions: the partition stays
    paused and unread, nothing is written, and this replica is not ready."""
    changelog: Changelog = [
        layout_record(),
        (DEFINITIONS_KEY, recorded(LATER, with_gone=True)),
        (b"p1", saved("FR", {FR, GONE}, {FR, GONE})),
    ]
    loop, publisher, consumer = await assign(make_loop, changelog)
    assert (publisher.states, consumer.resumed, len(loop.store)) == ([], set(), 0)
    assert (loop.partitions.stood_down(), _readiness(loop.partitions)[0]) == ({0}, False)
