"""The pure limit logic: rolling window, concurrency gate, quota day and reset. No HTTP.

Limits as in docs/marketo-facts.md.
"""

from datetime import UTC, datetime

from worker.sandbox.limits import ConcurrencyGate, DailyQuota, QuotaDay, RollingWindow


def test_window_is_full_at_the_limit_and_frees_as_calls_age_out() -> None:
    """After `calls` calls the window is full, and it frees once the oldest leaves the window."""
    window = RollingWindow(calls=3, window_s=20)
    for t in (0.0, 1.0, 2.0):
        window.record(t)
    assert window.is_full(19.9)
    assert not window.is_full(20.0)


def test_window_forget_uncounts_a_call() -> None:
    """A forgotten call no longer occupies the window."""
    window = RollingWindow(calls=1, window_s=20)
    window.record(5.0)
    window.forget(5.0)
    assert not window.is_full(6.0)


def test_window_of_zero_calls_is_off() -> None:
    """A limit of 0 never fills."""
    window = RollingWindow(calls=0, window_s=20)
    for t in range(1000):
        window.record(float(t) / 1000)
    assert not window.is_full(1.0)


def test_window_peak_is_the_most_calls_in_any_window() -> None:
    """The peak remembers the busiest window even after it drains."""
    window = RollingWindow(calls=0, window_s=10)
    for t in (0.0, 1.0, 2.0, 30.0):
        window.record(t)
    assert window.peak == 3


def test_concurrency_gate_refuses_beyond_limit_and_records_peak() -> None:
    """The call past the limit is refused but counted in the peak of arrivals."""
    gate = ConcurrencyGate(limit=2)
    assert gate.enter()
    assert gate.enter()
    assert not gate.enter()
    assert gate.in_flight == 2
    assert gate.peak == 3


def test_quota_exhausts_and_resets_at_chicago_midnight() -> None:
    """The quota is spent after `quota` calls and resets at midnight America/Chicago."""
    quota = DailyQuota(2, QuotaDay("America/Chicago"))
    before_s = datetime(2026, 3, 11, 4, 59, 59, tzinfo=UTC).timestamp()  # 23:59:59 CDT
    quota.use(before_s, "u")
    quota.use(before_s, "u")
    assert quota.is_exhausted(before_s)
    assert not quota.is_exhausted(before_s + 1)


def test_fixed_utc_minus_6_zone_resets_an_hour_later_in_summer() -> None:
    """With Etc/GMT+6 (fixed UTC-6) the reset is at 06:00 UTC even under daylight time."""
    day = QuotaDay("Etc/GMT+6")
    at_s = datetime(2026, 7, 1, 5, 30, tzinfo=UTC).timestamp()
    assert day.resets_at_s(at_s) == datetime(2026, 7, 1, 6, 0, tzinfo=UTC).timestamp()


def test_quota_day_length_for_tests() -> None:
    """With `day_s`, the quota day turns every `day_s` seconds from the origin."""
    quota = DailyQuota(1, QuotaDay(day_s=5.0, origin_s=100.0))
    quota.use(101.0, "u")
    assert quota.is_exhausted(104.9)
    assert not quota.is_exhausted(105.0)


def test_quota_counts_each_api_user_apart() -> None:
    """Today's calls are kept per API user as well as in total, and reset with the day."""
    quota = DailyQuota(10, QuotaDay(day_s=5.0, origin_s=100.0))
    quota.use(101.0, "worker")
    quota.use(101.0, "other")
    quota.use(101.0, "other")
    assert quota.users_today(101.0) == [("other", 2), ("worker", 1)]
    assert quota.users_today(105.0) == []


def test_refund_uncounts_the_call_of_its_user() -> None:
    """A refunded call leaves its user's count and the total."""
    quota = DailyQuota(10, QuotaDay())
    quota.use(0.0, "worker")
    quota.use(0.0, "other")
    quota.refund(0.0, "other")
    assert (quota.used_today(0.0), quota.users_today(0.0)) == (1, [("worker", 1)])


def test_quota_zero_is_off() -> None:
    """A quota of 0 is never exhausted."""
    quota = DailyQuota(0, QuotaDay())
    quota.use(0.0, "u")
    assert not quota.is_exhausted(0.0)
