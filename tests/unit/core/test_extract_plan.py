"""The extract plan's decisions: when to extract, how long to wait, when to stop, which ranges."""

from __future__ import annotations

import pytest

from worker.core.extract_plan import ExtractPlan


def test_status_waits_start_at_one_refresh_and_double_to_five_minutes() -> None:
    """Never faster than Marketo refreshes, never slower than every 5 minutes."""
    plan = ExtractPlan()
    assert [plan.wait_s(polls) for polls in range(6)] == [60, 120, 240, 300, 300, 300]


def test_a_refresh_longer_than_the_ceiling_is_still_respected() -> None:
    """The ceiling never makes status reads come faster than the refresh."""
    plan = ExtractPlan(refresh_s=600, longest_wait_s=300)
    assert plan.wait_s(3) == 600


def test_an_audience_above_the_line_is_extracted_at_once() -> None:
    """The line is exclusive: exactly `bulk_above` desired members still pages."""
    plan = ExtractPlan(bulk_above=5_000)
    assert (plan.starts_in_bulk(5_000), plan.starts_in_bulk(5_001)) == (False, True)


def test_paging_switches_once_the_members_read_pass_the_line() -> None:
    """A list larger than its audience is extracted once it shows more than the line."""
    plan = ExtractPlan(bulk_above=600)
    assert (plan.switches(600), plan.switches(601)) == (False, True)


def test_waiting_past_the_deadline_gives_up() -> None:
    """The deadline counts the wait about to start."""
    plan = ExtractPlan(deadline_s=1_000)
    assert (plan.gives_up(700, 300), plan.gives_up(701, 300)) == (False, True)


def test_a_full_queue_is_waited_for_a_bounded_number_of_times() -> None:
    """Each refusal waits as a status read would; after the tries, None."""
    plan = ExtractPlan(limited_tries=3)
    assert [plan.limited_wait_s(t) for t in range(4)] == [60, 120, 240, None]


def test_ranges_cover_the_file_exactly_in_order() -> None:
    """Inclusive ranges of at most `range_bytes`, the last one short."""
    assert ExtractPlan(range_bytes=10).ranges(25) == [(0, 9), (10, 19), (20, 24)]


def test_a_plan_with_a_nonpositive_refresh_is_refused() -> None:
    """A zero refresh would poll without pause."""
    with pytest.raises(ValueError, match="extract plan"):
        ExtractPlan(refresh_s=0)
