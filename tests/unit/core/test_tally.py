"""The audiences' running counts: what a state's change moves, per partition."""

from __future__ import annotations

from worker.core.ids import AudienceId
from worker.core.tally import NO_MEMBERSHIPS, Counts, Tally

FR, DE = AudienceId("fr"), AudienceId("de")
WANTED = (frozenset({FR}), frozenset[AudienceId]())
KNOWN = (frozenset({FR}), frozenset({FR}))
LEFT = (frozenset[AudienceId](), frozenset({FR}))


def test_a_new_member_is_wanted_and_a_pending_add() -> None:
    """A state that enters FR, unacknowledged, counts one wanted and one add pending."""
    tally = Tally()
    tally.change(0, NO_MEMBERSHIPS, WANTED)
    assert tally.totals([FR]) == {FR: Counts(wanted=1, pending_adds=1)}


def test_an_acknowledgement_turns_the_pending_add_into_a_member_in_marketo() -> None:
    """Once Marketo acknowledges the add, nothing is pending."""
    tally = Tally()
    tally.change(0, NO_MEMBERSHIPS, WANTED)
    tally.change(0, WANTED, KNOWN)
    assert tally.totals([FR]) == {FR: Counts(wanted=1, in_marketo=1)}


def test_a_member_leaving_is_a_pending_remove_until_acknowledged() -> None:
    """Leaving an acknowledged audience counts in Marketo and a remove pending; its ack, zero."""
    tally = Tally()
    tally.change(0, NO_MEMBERSHIPS, KNOWN)
    tally.change(0, KNOWN, LEFT)
    assert tally.totals([FR]) == {FR: Counts(in_marketo=1, pending_removes=1)}
    tally.change(0, LEFT, NO_MEMBERSHIPS)
    assert tally.totals([FR]) == {FR: Counts()}


def test_totals_sum_partitions_and_a_dropped_partition_takes_its_counts() -> None:
    """Two partitions' members add up; dropping one leaves the other's."""
    tally = Tally()
    tally.change(0, NO_MEMBERSHIPS, KNOWN)
    tally.change(1, NO_MEMBERSHIPS, KNOWN)
    assert tally.totals([FR])[FR].wanted == 2
    tally.drop(1)
    assert tally.totals([FR]) == {FR: Counts(wanted=1, in_marketo=1)}


def test_loading_heads_counts_as_their_changes_would() -> None:
    """Encoded heads loaded at once (deleted ones wanted nowhere) count as one by one."""
    loaded, one_by_one = Tally(), Tally()
    heads = [(False, (FR,), ()), (False, (FR,), ()), (False, (FR,), (FR,)), (True, (FR,), (FR,))]
    loaded.load(0, heads)
    for contribution in (WANTED, WANTED, KNOWN, LEFT):
        one_by_one.change(0, NO_MEMBERSHIPS, contribution)
    assert loaded.totals([FR]) == one_by_one.totals([FR])
    assert loaded.totals([FR]) == {
        FR: Counts(wanted=3, in_marketo=2, pending_adds=2, pending_removes=1)
    }


def test_totals_name_the_audiences_asked_for_only() -> None:
    """A configured audience without members reads 0; one the config no longer names is left out."""
    tally = Tally()
    tally.change(0, NO_MEMBERSHIPS, WANTED)
    assert tally.totals([DE]) == {DE: Counts()}
