"""Scenario 8, activation_bulk: a restart adds an audience matching 100,000 stored persons unknown
to Marketo; the bulk lane imports them while 50 changes/s stream into another audience.

A first worker (audience `s` only) stores 200,000 profiles, the even ones carrying "x" in
`lists`, and stops cleanly: Marketo knows none of them. A worker restarts on the same state
with audience `x` added at the default `flush.bulk_threshold`: its 100,000 adds are a backlog,
sent as bulk imports with the list's id. Marketo's real limits (100 calls per 20 s); the sandbox
imports `ROWS_PER_S` rows a second (Adobe publishes no speed; this one makes the import take
100 s, so the run takes about two minutes and the status polls reach their longest interval).

Figures, read at the wire (tests/bench/wiretap.py): the time from the restart to the status
poll that saw the last file Complete, against 1.2 x the sandbox's modelled import time (rows /
`ROWS_PER_S`) plus one poll interval (the lane's longest, 30 s); the activation's calls (every
bulk call: submits, status polls, failures and warnings files; and any lead sync or list add for
`x`) against the REST lane on the same work, computed rather than run (a lead sync and a list add
per 300 new persons, 668 calls at 100,000); the quota spent from the restart on; the stream's
latency, event `ts` to its acknowledged add, meanwhile.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from tests.bench.bench_activation import LINGER_S, Stream
from tests.bench.bench_drain import BATCH, Limits, refused
from tests.bench.context import Bench, poll_until
from tests.bench.fleet import BenchWorker, committed, is_ready, write_worker_config
from tests.bench.results import Metric, Sample
from tests.bench.wiretap import Call, Wiretap
from tests.bench.workload import email, list_audience, list_event, now_ms, produce_all
from tests.kafka_support import create_topic
from worker.bulk_lane import POLL_MAX_S
from worker.sandbox.process import SandboxProcess

NAME = "activation_bulk"
ROWS_PER_S = 1_000.0  # the sandbox's import speed for this scenario (module docstring)
IMPORT_PATH = "/bulk/v1/leads.json"
METRICS = [
    Metric("complete_ratio", "x bound", "<=", 1.0, "restart to list x complete / bound"),
    Metric("complete_s", "s", note="restart to the status poll that saw the last file Complete"),
    Metric("bound_s", "s", note="1.2 x modelled import time + one poll interval (30 s)"),
    Metric("import_s", "s", note="first submit to the last file Complete"),
    Metric("submit_s", "s", note="restart to the first import submitted"),
    Metric("call_ratio", "x REST", "<=", 0.02, "activation calls / REST lane's (668)"),
    Metric("calls", "calls", note="submits, status polls, files; lead syncs and adds for x"),
    Metric("status_polls", "calls"),
    Metric("rest_lane_calls", "calls", note="a lead sync and a list add per 300 new persons"),
    Metric("rest_lane_s", "s", note="the REST lane's calls at 100 per 20 s"),
    Metric("quota_used", "calls", note="the sandbox's daily quota spent, restart to complete"),
    Metric("missing_members", "persons", "<=", 0, "members of x not in the list at the end"),
    Metric("stream_p99_s", "s", "<=", LINGER_S + 2.0, "event ts to add of s acked, meanwhile"),
    Metric("stream_p50_s", "s"),
    Metric("stream_changes", "changes"),
    Metric("refused_606_615", "answers", "<=", 0),
]


@dataclass(frozen=True, slots=True)
class Sizes:
    """Profiles in the state (every other one in x), the limits, the import speed, timeout."""

    profiles: int
    limits: Limits
    rows_per_s: float
    timeout_s: float
    flush: dict[str, object]  # beside linger: the bulk threshold when the default is too large

    @property
    def members(self) -> int:
        """Persons audience x matches (the even ones), all new to Marketo."""
        return len(range(0, self.profiles, 2))


def _sizes(bench: Bench) -> Sizes:
    if bench.quick:
        return Sizes(8_000, Limits(20, 1.0), 200.0, 120.0, {"bulk_threshold": 1_000})
    return Sizes(200_000, Limits(100, 20.0), ROWS_PER_S, 600.0, {})  # the default, 10,000


def measure(bench: Bench, runs: int) -> list[Sample]:
    """Each run: a fresh topic, sandbox and state, stored by a first worker, then the restart."""
    return [_one_run(bench, _sizes(bench)) for _ in range(runs)]


def store_profiles(
    bench: Bench, topic: str, profiles: int, lists: Sequence[str], first: Any, every: int = 2
) -> None:
    """Produce the profiles (one in `every` in `lists`), let the first worker store them all
    (none matches its audiences), stop it cleanly."""
    ts0 = now_ms() - 10 * 60_000  # older than the stream's events
    records = (
        list_event(i, list(lists) if i % every == 0 else [], ts0 + i) for i in range(profiles)
    )
    worker = BenchWorker(first, bench.path(f"{NAME}-first", ".log"))
    try:
        produce_all(bench.bootstrap, topic, records)
        poll_until(lambda: committed(worker), lambda c: c >= profiles, 900, "storing", 0.5)
    finally:
        assert worker.stop(120) == 0, f"the first worker did not stop cleanly; see {worker.log}"


def import_complete(tap: Wiretap, worker: BenchWorker, after: float) -> float | None:
    """When the status poll that saw the job's last file Complete ended (None: not yet)."""
    queued = [e for e in worker.logs() if e.get("event") == "bulk.job_queued"]
    if not queued:
        return None
    files = int(queued[0]["files"])
    done: dict[str, float] = {}
    for call in tap.calls():
        complete = call.status == "Complete" and call.path not in done
        if complete and call.started_s >= after and _is_status(call.path):
            done[call.path] = call.ended_s
    return max(done.values()) if len(done) >= files else None


def _one_run(bench: Bench, sizes: Sizes) -> Sample:
    topic = create_topic(bench.bootstrap, 1, prefix=NAME)
    flags = [*sizes.limits.sandbox_flags(), "--bulk-rows-per-s", f"{sizes.rows_per_s:g}"]
    with SandboxProcess(*flags) as sandbox, Wiretap(sandbox.url) as tap:
        first = write_worker_config(
            bench.path(NAME, ".yaml"),
            bench.bootstrap,
            tap.url,
            topic,
            [list_audience("s")],
            budget=sizes.limits.budget(),
            flush={"max_linger_s": LINGER_S, **sizes.flush},
            request_timeout_s=bench.request_timeout_s,
        )
        store_profiles(bench, topic, sizes.profiles, ["x"], first)
        config = yaml.safe_load(first.read_text())
        config["audiences"].append(list_audience("x"))
        second = bench.path(NAME, ".yaml")
        second.write_text(yaml.safe_dump(config))
        stats_before = sandbox.stats()
        restart_at = time.time()
        worker = BenchWorker(second, bench.path(NAME, ".log"))
        try:
            poll_until(lambda: is_ready(worker), bool, 300, "the restarted worker", 0.2)
            with Stream(bench.bootstrap, topic) as stream:
                complete_at, _ = poll_until(
                    lambda: import_complete(tap, worker, restart_at),
                    lambda at: at is not None,
                    sizes.timeout_s,
                    "list x's import to complete",
                    0.25,
                )
            lists = _list_ids(sandbox)
            poll_until(
                lambda: _acked(tap.calls(), lists["s"]) >= len(stream.sent),
                bool,
                60,
                "the stream's last adds",
                0.25,
            )
            stats = sandbox.stats()
            state = sandbox.state()
        finally:
            worker.stop(60)
    assert complete_at is not None
    sample = _figures(tap.calls(), restart_at, complete_at, sizes, lists, state, stream.sent)
    sample["quota_used"] = _quota(stats) - _quota(stats_before)
    sample["refused_606_615"] = refused(stats) - refused(stats_before)
    return sample


def _is_status(path: str) -> bool:
    return path.startswith("/bulk/v1/leads/batch/") and not path.endswith(
        ("/failures.json", "/warnings.json")
    )


def _quota(stats: dict[str, object]) -> float:
    used = stats["quota_used"]
    assert isinstance(used, int)
    return float(used)


def _list_ids(sandbox: SandboxProcess) -> dict[str, int]:
    found = sandbox.state()["lists"]
    assert isinstance(found, list)
    return {item["name"]: int(item["id"]) for item in found}


def _adds(calls: Sequence[Call], list_id: int) -> list[Call]:
    return [c for c in calls if c.kind == "add_to_list" and c.list_id == list_id]


def _acked(calls: Sequence[Call], list_id: int) -> int:
    return sum(len(c.ids) for c in _adds(calls, list_id))


def latencies(
    calls: Sequence[Call], s_list: int, email_of: dict[int, str], sent: dict[str, int]
) -> list[float]:
    """The stream's latencies, event ts to acknowledged add, sorted."""
    acked_at = {
        email_of[i]: c.ended_s for c in _adds(calls, s_list) for i in c.ids if i in email_of
    }
    return sorted(acked_at[e] - ts / 1000 for e, ts in sent.items() if e in acked_at)


def _figures(
    calls: list[Call],
    restart_at: float,
    complete_at: float,
    sizes: Sizes,
    lists: dict[str, int],
    state: dict[str, object],
    sent: dict[str, int],
) -> Sample:
    during = [c for c in calls if restart_at <= c.started_s <= complete_at]
    bulk = [c for c in during if c.path.startswith("/bulk/")]
    leads = state["leads"]
    assert isinstance(leads, list)
    email_of = {int(lead["id"]): str(lead["email"]) for lead in leads}
    stream_persons = set(sent)
    x_rest = [
        c
        for c in during
        if (c.kind == "add_to_list" and c.list_id == lists["x"])
        or (c.kind == "sync_leads" and any(email_of.get(i) not in stream_persons for i in c.ids))
    ]
    submits = [c for c in bulk if c.path == IMPORT_PATH and c.code == "ok"]
    rest_calls = math.ceil(sizes.members / BATCH) * 2
    model_s = sizes.members / sizes.rows_per_s
    bound_s = 1.2 * model_s + POLL_MAX_S
    members = state["members"]
    assert isinstance(members, dict)
    in_x = {email_of.get(i) for i in members.get(str(lists["x"]), [])}
    wanted = {email(i) for i in range(0, sizes.profiles, 2)}
    waits = latencies(calls, lists["s"], email_of, sent)
    cuts = statistics.quantiles(waits, n=100, method="inclusive") if len(waits) > 1 else []
    complete_s = complete_at - restart_at
    first_submit = min((c.started_s for c in submits), default=float("nan"))
    return {
        "complete_ratio": complete_s / bound_s,
        "complete_s": complete_s,
        "bound_s": bound_s,
        "import_s": complete_at - first_submit,
        "submit_s": first_submit - restart_at,
        "call_ratio": (len(bulk) + len(x_rest)) / rest_calls,
        "calls": len(bulk) + len(x_rest),
        "status_polls": sum(1 for c in bulk if _is_status(c.path)),
        "rest_lane_calls": rest_calls,
        "rest_lane_s": rest_calls / (sizes.limits.calls_per_window / sizes.limits.window_s),
        "missing_members": len(wanted - in_x),
        "stream_p99_s": cuts[98] if cuts else float("nan"),
        "stream_p50_s": cuts[49] if cuts else float("nan"),
        "stream_changes": len(waits),
    }
