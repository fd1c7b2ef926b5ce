"""librdkafka's statistics (STATISTICS.md): the per-partition consumer lag of the input topic.

`consumer_lag` is the high watermark (or LSO) minus the committed offset; -1 means unknown and
the "-1" partition entry is librdkafka's internal one: both are skipped.
"""

from __future__ import annotations

import orjson


def consumer_lag(stats_json: str | bytes, topic: str) -> dict[int, int]:
    """Return partition -> lag for the assigned partitions of `topic` that report one."""
    try:
        partitions = orjson.loads(stats_json)["topics"][topic]["partitions"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return {}
    if not isinstance(partitions, dict):
        return {}
    lags: dict[int, int] = {}
    for key, entry in partitions.items():
        # "-1" (librdkafka's internal entry) is not decimal, so it is skipped with the garbage
        if not key.isdecimal() or not isinstance(entry, dict):
            continue
        lag = entry.get("consumer_lag")
        if type(lag) is int and lag >= 0 and entry.get("fetch_state") != "none":
            lags[int(key)] = lag
    return lags
