"""Benchmark results: per metric the runs, median, min, max and the target; a table and a JSON file.

A scenario run yields one `Sample` (metric name -> value); targets are judged on the median.
"""

from __future__ import annotations

import operator
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Sample = dict[str, float]
_OPS: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, "<=": operator.le}


@dataclass(frozen=True, slots=True)
class Metric:
    """One reported figure; `op` and `bound` make it a target (`None`: reported only)."""

    name: str
    unit: str
    op: str | None = None
    bound: float | None = None
    note: str = ""

    @property
    def target(self) -> str | None:
        """The target as text, e.g. `>= 50000`."""
        return None if self.op is None else f"{self.op} {self.bound:g}"

    def passes(self, value: float) -> bool | None:
        """Whether `value` meets the target (None when there is none, or no value)."""
        if self.op is None or self.bound is None or value != value:  # NaN: not measured
            return None
        return _OPS[self.op](value, self.bound)


def _number(value: float) -> float | None:
    """A JSON-safe number: NaN (not measured) becomes null."""
    return None if value != value else round(value, 4)


def summarise(metrics: Sequence[Metric], samples: Sequence[Sample]) -> dict[str, Any]:
    """Per metric: runs, median, min, max, target, pass; plus whether every target passed."""
    out: dict[str, Any] = {}
    for metric in metrics:
        runs = [s[metric.name] for s in samples if metric.name in s]
        valid = [v for v in runs if v == v]
        median = statistics.median(valid) if valid else float("nan")
        out[metric.name] = {
            "unit": metric.unit,
            "runs": [_number(v) for v in runs],
            "median": _number(median),
            "min": round(min(valid), 4) if valid else None,
            "max": round(max(valid), 4) if valid else None,
            "target": metric.target,
            "pass": metric.passes(median),
            **({"note": metric.note} if metric.note else {}),
        }
    verdicts = [m["pass"] for m in out.values() if m["target"] is not None]
    return {"metrics": out, "pass": all(v is True for v in verdicts)}


def _fmt(value: float | None) -> str:
    if value is None or value != value:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def table(report: dict[str, Any]) -> str:
    """A Markdown table of every scenario's metrics."""
    lines = [
        "| scenario | metric | median | min | max | unit | target | result |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for scenario, result in report["scenarios"].items():
        if "error" in result:
            lines.append(f"| {scenario} | error: {result['error'][:80]} | | | | | | FAIL |")
        for name, m in result["metrics"].items():
            verdict = {True: "pass", False: "FAIL", None: ""}[m["pass"]]
            lines.append(
                f"| {scenario} | {name} | {_fmt(m['median'])} | {_fmt(m['min'])} "
                f"| {_fmt(m['max'])} | {m['unit']} | {m['target'] or ''} | {verdict} |"
            )
    return "\n".join(lines)
