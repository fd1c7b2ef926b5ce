"""librdkafka's statistics (STATISTICS.md): the per-partition consumer lag of the input topic.

`consumer_lag` is the high watermark (or LSO) minus the committed offset; -1 means unknown and
the "-1" partition entry is librdkafka's internal one: both are skipped.
"""

from __future__ import annotations

import orjson


def consumer_lag(stats_json: str | bytes, topic: str) -> dict[int, int]:
    """Return partition -> lag for the assigned partitions of `topic` that report one."""
    try:
        stats = orjson.loads(stats_json)
        partitions = stats["topics"][topic]["partitions"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return {}
    lags: dict[int, int] = {}
    for key, entry in partitions.items():
        if key == "-1" or not isinstance(entry, dict):
            continue
        lag = entry.get("consumer_lag")
        if isinstance(lag, int) and lag >= 0 and entry.get("fetch_state") != "none":
            lags[int(key)] = lag
    return lags
