"""What the rule tests share: a profile, the event's ts, and shorthands to match or fail."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from worker.core.ids import JsonValue
from worker.core.rules import compile_rule
from worker.errors import RuleError

TS_MS = 1_795_867_200_000  # 2026-11-28T12:00:00Z, the event's ts

DAY_MS = 86_400_000

PROFILE: dict[str, JsonValue] = {
    "country": "FR",
    "ltv": 1200.5,
    "tags": ["vip", "beta"],
    "email": "Ann@Example.com",
    "address": {"city": "Lyon", "geo": {"zip": "69001"}},
    "opted_in": True,
    "visits": 3,
}


def matches(text: str, attributes: Mapping[str, object] = PROFILE, ts_ms: int = TS_MS) -> bool:
    return compile_rule(text).matches(attributes, ts_ms)


def rule_error(text: str) -> RuleError:
    with pytest.raises(RuleError) as caught:
        compile_rule(text)
    return caught.value
