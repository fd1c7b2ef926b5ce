"""Fault injection settings: latency, random 5xx/604/608/611, forced 606 storms.

Pure: the random roll and `now_s` are passed in. Changed at run time through `/_sandbox/faults`.
"""

import dataclasses
import random
from collections.abc import Mapping
from dataclasses import dataclass

# Order matters only for the cumulative roll; each outcome has its own probability.
_RANDOM_FAULTS = ("http500", "http502", "604", "608", "611")
_PROBABILITY_KEYS = ("p_http_500", "p_http_502", "p_604", "p_608", "p_611")
_SETTABLE = frozenset({"latency_ms", "latency_jitter_ms", *_PROBABILITY_KEYS})
ACTIONS = frozenset({"storm_606_s", "revoke_tokens", "exhaust_quota"})


class FaultSpecError(ValueError):
    """A `/_sandbox/faults` body names an unknown fault or gives a bad value."""


@dataclass(frozen=True, slots=True)
class Faults:
    """Current fault settings; `storm_until_s` is on the monotonic clock."""

    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    p_http_500: float = 0.0
    p_http_502: float = 0.0
    p_604: float = 0.0
    p_608: float = 0.0
    p_611: float = 0.0
    storm_until_s: float = 0.0

    @property
    def any_random(self) -> bool:
        """Whether any random fault can fire (skips the roll on the hot path)."""
        return any(getattr(self, key) > 0 for key in _PROBABILITY_KEYS)


def latency_s(faults: Faults, rng: random.Random) -> float:
    """Delay before answering: `latency_ms` plus a uniform jitter of up to `latency_jitter_ms`."""
    jitter_ms = rng.uniform(0, faults.latency_jitter_ms) if faults.latency_jitter_ms > 0 else 0.0
    return (faults.latency_ms + jitter_ms) / 1000


def pick(faults: Faults, roll: float) -> str | None:
    """The random fault for a roll in [0, 1), or None: "http500", "http502", "604", "608", "611"."""
    edge = 0.0
    for name, key in zip(_RANDOM_FAULTS, _PROBABILITY_KEYS, strict=True):
        edge += getattr(faults, key)
        if roll < edge:
            return name
    return None


def is_storming(faults: Faults, now_s: float) -> bool:
    """Whether a forced 606 storm is on."""
    return now_s < faults.storm_until_s


def update(faults: Faults, spec: Mapping[str, object], now_s: float) -> Faults:
    """Apply the settings of a `/_sandbox/faults` body (actions are handled by the caller)."""
    changes: dict[str, float] = {}
    for key, value in spec.items():
        if key not in _SETTABLE and key not in ACTIONS:
            raise FaultSpecError(f"unknown fault {key!r}")
        if key in ACTIONS:
            continue
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            raise FaultSpecError(f"{key} must be a non-negative number")
        if key.startswith("p_") and value > 1:
            raise FaultSpecError(f"{key} is a probability (0..1)")
        changes[key] = float(value)
    storm_s = spec.get("storm_606_s")
    if storm_s is not None:
        if not isinstance(storm_s, int | float) or isinstance(storm_s, bool) or storm_s < 0:
            raise FaultSpecError("storm_606_s must be a non-negative number")
        changes["storm_until_s"] = now_s + float(storm_s)
    return dataclasses.replace(faults, **changes)


def describe(faults: Faults, now_s: float) -> dict[str, object]:
    """Current settings as JSON values, with the storm as seconds remaining."""
    out: dict[str, object] = {key: getattr(faults, key) for key in sorted(_SETTABLE)}
    out["storm_606_remaining_s"] = max(0.0, faults.storm_until_s - now_s)
    return out
