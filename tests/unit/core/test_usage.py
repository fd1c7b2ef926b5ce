"""Other API users' calls today, the group's allowance they leave, and the reading schedule."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest

from worker.core.usage import (
    DailyUsage,
    UsageSchedule,
    daily_usage,
    export_bytes_on,
    group_allowance,
)


def test_others_are_the_total_less_our_api_user() -> None:
    """Every API user but ours counts as another integration."""
    users = [("us@example.com", 200), ("etl@example.com", 1000)]
    usage = daily_usage(1200, users, "us@example.com")
    assert (usage.own, usage.others) == (200, 1000)


def test_our_api_user_is_matched_without_case() -> None:
    """User ids are emails: `Us@Example.com` in the stats is the token's `us@example.com`."""
    usage = daily_usage(300, [("Us@Example.com", 300)], "us@example.com")
    assert usage.others == 0


def test_an_unknown_api_user_takes_nothing_from_the_allowance() -> None:
    """Without the token's user every call counts as ours: no others are guessed."""
    assert daily_usage(900, [("etl@example.com", 900)], None).others == 0


def test_our_api_user_absent_from_the_stats_means_all_are_others() -> None:
    """A stats breakdown without our user (no call of ours counted yet) is all others'."""
    assert daily_usage(40, [("etl@example.com", 40)], "us@example.com") == DailyUsage(40, 0)


def test_allowance_is_quota_less_reserve_less_others() -> None:
    """50,000 - 5,000 reserve - 3,000 others' calls leaves the group 42,000."""
    assert group_allowance(50_000, 5_000, 3_000) == 42_000


def test_allowance_never_goes_below_zero() -> None:
    """Others spending past quota - reserve leave the group nothing, not a negative count."""
    assert group_allowance(1_000, 100, 5_000) == 0


def test_first_reading_is_due_at_once() -> None:
    """At start-up the stats are read without waiting."""
    assert UsageSchedule(600.0, now=10.0).due_in_s(10.0) == 0.0


def test_next_reading_is_due_an_interval_after_a_success() -> None:
    """After a reading at 100 s, the next is due at 700 s."""
    schedule = UsageSchedule(600.0, now=0.0)
    schedule.read(100.0)
    assert (schedule.due_in_s(699.0), schedule.due_in_s(700.0)) == (1.0, 0.0)


def test_a_failed_reading_is_retried_after_a_minute() -> None:
    """A failed reading is tried again sooner than a whole interval."""
    schedule = UsageSchedule(600.0, now=0.0)
    schedule.failed(100.0)
    assert schedule.due_in_s(100.0) == 60.0


def test_retry_is_never_later_than_the_interval() -> None:
    """With an interval under a minute, a failed reading is retried after the interval."""
    schedule = UsageSchedule(5.0, now=0.0)
    schedule.failed(0.0)
    assert schedule.due_in_s(0.0) == 5.0


def test_interval_must_be_positive() -> None:
    """An interval of 0 is refused."""
    with pytest.raises(ValueError, match="interval_s"):
        UsageSchedule(0.0, now=0.0)


CHICAGO = ZoneInfo("America/Chicago")
DAY = date(2026, 3, 10)


def test_export_bytes_count_the_jobs_finished_today_in_the_quota_zone() -> None:
    """Jobs finished on the quota day (Chicago) count; one finished the evening before does not."""
    jobs = [
        ("2026-03-10T15:00:00Z", 1_000),  # 10:00 in Chicago
        ("2026-03-11T04:59:59Z", 500),  # 23:59:59 in Chicago, still the 10th
        ("2026-03-10T04:00:00Z", 7_000),  # 23:00 on the 9th in Chicago
    ]
    assert export_bytes_on(DAY, CHICAGO, jobs) == 1_500


def test_export_jobs_without_a_readable_time_or_size_count_nothing() -> None:
    """A job missing `finishedAt` or `fileSize`, or with an unreadable time, adds 0."""
    jobs = [(None, 10), ("2026-03-10T15:00:00Z", None), ("yesterday", 10)]
    assert export_bytes_on(DAY, CHICAGO, jobs) == 0
