"""The Grafana dashboard (deploy/grafana) has one row per concern and queries only metrics the
worker exports: names are parsed out of each PromQL expression and looked up in `Metrics()`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client.metrics_core import Metric

from worker.telemetry.metrics import Metrics

DASHBOARD = (
    Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "marketo-audience-worker.json"
)
ROWS = ("Input", "Audiences", "Buffers", "Marketo budget and quota", "Latency", "Errors")
# The worker's minimum set of metrics: each must be on a panel somewhere
MINIMUM_METRICS = (
    "events_total",
    "membership_changes_total",
    "audience_members_wanted",
    "audience_members_in_marketo",
    "audience_pending_changes",
    "buffered_changes",
    "marketo_requests_total",
    "marketo_records_total",
    "marketo_request_duration_seconds_bucket",
    "budget_wait_seconds_total",
    "daily_quota_remaining",
    "end_to_end_latency_seconds_bucket",
    "committed_offset",
    "consumer_lag",
    "dead_letters_total",
    "rejections_total",
    "state_profiles",
    "state_restore_seconds_total",
    "paused_partitions",
    "rebalances_total",
)
# PromQL keywords that look like names; a word followed by "(" is a function and skipped too
KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan"})
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(?P<selector>.+?)\s*,\s*)?\w+\s*\)\s*$")


def exported_names() -> set[str]:
    """Every series name the worker's registry exposes, with Prometheus' type suffixes."""
    families: list[Metric] = list(Metrics().registry.collect())
    return {family.name + suffix for family in families for suffix in SUFFIXES[family.type]}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, labels or keywords)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals, e.g. label values
    expr = re.sub(r"\{[^}]*\}", " ", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", " ", expr)  # range and subquery durations
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.$])[A-Za-z_:][\w:]*", expr):
        if match.group() in KEYWORDS or expr[match.end() :].lstrip().startswith("("):
            continue
        names.add(match.group())
    return names


def load() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def panels() -> list[dict[str, Any]]:
    """Every panel, rows included (a collapsed row keeps its panels inside it)."""
    out: list[dict[str, Any]] = []
    for panel in load()["panels"]:
        out += [panel, *panel.get("panels", [])]
    return out


def expressions() -> dict[str, list[str]]:
    """Panel title -> its targets' PromQL expressions (rows have none)."""
    return {
        p["title"]: [t["expr"] for t in p.get("targets", [])]
        for p in panels()
        if p["type"] != "row"
    }


def rows() -> dict[str, list[str]]:
    """Row title -> the titles of the panels under it, in dashboard order."""
    out: dict[str, list[str]] = {}
    current: list[str] | None = None
    for panel in load()["panels"]:
        if panel["type"] == "row":
            current = out.setdefault(panel["title"], [])
            current += [p["title"] for p in panel.get("panels", [])]
        elif current is not None:
            current.append(panel["title"])
    return out


def test_metric_name_parser_sees_names_not_functions_or_labels() -> None:
    """The parser finds selected names, including a typo, and skips functions, labels, keywords."""
    expr = (
        'sum by (le) (rate(marketo_worker_typo_total{outcome="a b"}[5m])) / on (job) up'
        " and histogram_quantile(0.95, x_bucket offset 1h) > bool 1e3"
    )
    assert metric_names(expr) == {"marketo_worker_typo_total", "up", "x_bucket"}


def test_every_panel_queries_only_exported_metrics() -> None:
    """No panel expression names a metric the worker does not export."""
    known = exported_names()
    unknown = {
        title: sorted(name for expr in exprs for name in metric_names(expr) - known)
        for title, exprs in expressions().items()
    }
    assert {title: names for title, names in unknown.items() if names} == {}


def test_every_panel_has_a_query() -> None:
    """Each panel has at least one non-empty PromQL target naming a worker metric."""
    empty = [
        title
        for title, exprs in expressions().items()
        if not exprs or not all(metric_names(expr) for expr in exprs)
    ]
    assert empty == []


def test_template_variables_query_only_exported_metrics() -> None:
    """The job and instance variables' label_values() select exported metrics."""
    known = exported_names()
    variables = [v for v in load()["templating"]["list"] if v["type"] == "query"]
    assert variables, "expected job/instance variables"
    for variable in variables:
        query = variable["query"]["query"] if isinstance(variable["query"], dict) else ""
        match = LABEL_VALUES.match(query)
        assert match is not None, f"{variable['name']}: {query!r}"
        assert match["selector"], f"{variable['name']}: label_values() names no metric"
        assert metric_names(match["selector"]) <= known, variable["name"]


def test_each_concern_has_a_row_with_panels() -> None:
    """The rows Input, Audiences, Buffers, Marketo budget and quota, Latency, Errors exist,
    in that order, and none is empty."""
    found = rows()
    assert list(found) == list(ROWS)
    assert [row for row, titles in found.items() if not titles] == []


def test_every_design_metric_is_charted() -> None:
    """Each metric of the minimum set appears in at least one panel."""
    charted = {name for exprs in expressions().values() for e in exprs for name in metric_names(e)}
    missing = [m for m in MINIMUM_METRICS if f"marketo_worker_{m}" not in charted]
    assert missing == []


def test_panel_ids_are_unique() -> None:
    """Grafana keys panels by id: a duplicate would hide one panel's edits behind another's."""
    ids = [p["id"] for p in panels()]
    assert len(ids) == len(set(ids))
