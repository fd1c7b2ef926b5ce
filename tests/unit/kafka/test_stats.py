"""Consumer lag is read from librdkafka's statistics, skipping unknown and internal entries."""

from __future__ import annotations

import orjson

from worker.kafka.stats import consumer_lag


def stats(partitions: dict[str, dict[str, object]]) -> bytes:
    return orjson.dumps({"topics": {"in": {"partitions": partitions}}})


def test_lag_per_assigned_partition() -> None:
    """Each partition's consumer_lag is reported under its number."""
    raw = stats({"0": {"consumer_lag": 5, "fetch_state": "active"}, "1": {"consumer_lag": 0}})
    assert consumer_lag(raw, "in") == {0: 5, 1: 0}


def test_unknown_lag_and_the_internal_partition_are_skipped() -> None:
    """Lag -1 (unknown) and the "-1" entry are not metrics."""
    raw = stats({"-1": {"consumer_lag": 3}, "2": {"consumer_lag": -1}})
    assert consumer_lag(raw, "in") == {}


def test_garbage_statistics_give_no_lag() -> None:
    """A statistics blob that is not what we expect never raises."""
    assert consumer_lag(b"not json", "in") == {}
    assert consumer_lag(orjson.dumps({"topics": []}), "in") == {}
