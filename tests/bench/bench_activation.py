"""Scenario 7, activation: a restart adds an audience that matches profiles already in the state,
while a stream of changes for another audience goes on.

First a worker with audiences `k` and `s` syncs every profile (a quarter of them, the multiples of
4, carry "x" in `lists`; half of those, the multiples of 8, also "k", so Marketo knows them) and
stops cleanly. Then a worker starts on the same state with audience `x` added: its list is to
hold every multiple of 4 with no new event for them, half already known to Marketo, half new
persons. Meanwhile, from the moment it is ready, 50 new persons a second enter `s`.

The restart happens once the sandbox reports its rolling window empty (`window_calls` 0 in
`/_sandbox/stats`): an audience is added long after the data it matches arrived, so the first
worker's calls have left Marketo's window by then. Restarted at once, the second worker would
share a window it cannot see with calls it did not make (a 606 then; the budget counts them, but
no worker can), which measures the gap between two processes rather than the activation.

Figures: the time from the restart to the last add that completes list `x`, against the time the
budget allows for the fewest calls (`earliest_last_start` from bench_drain, the counted calls
before the restart still in the window); the Marketo calls against that fewest count (a lead
sync per 300 new persons, a list add per 300 members of `x`, and the stream's own: its list adds
and the lead syncs that synced only its persons); the stream's latency, event `ts` to the
acknowledged add of `s`, read at the wire. One partition: a worker starts with one partition's
share of the budget and grows it a window later (worker/core/budget.py), which would otherwise
weigh on the time from the restart. A list `x` that does not fill (no activation) is reported as
a timeout, with what was measured meanwhile.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from tests.bench.bench_drain import BATCH, DATA_CALLS, Limits, earliest_last_start, refused
from tests.bench.context import Bench, poll_until
from tests.bench.fleet import BenchWorker, committed, is_ready, write_worker_config
from tests.bench.results import Metric, Sample
from tests.bench.wiretap import Call, Wiretap
from tests.bench.workload import (
    email,
    fast_producer,
    list_audience,
    list_event,
    now_ms,
    produce_all,
)
from tests.kafka_support import create_topic
from worker.sandbox.process import SandboxProcess

NAME = "activation"
LINGER_S = 1.0  # the default flush.max_linger_s
STREAM_PER_S = 50
STREAM_FIRST = 10_000_000  # the stream's persons: indexes from here on, never in the state
METRICS = [
    Metric("complete_ratio", "x budget", "<=", 1.1, "restart to list x complete / budget time"),
    Metric("complete_s", "s", note="restart to the last add of list x acknowledged"),
    Metric("budget_s", "s", note="earliest last call the rolling window allows"),
    Metric("call_ratio", "x minimal", "<=", 1.02, "data calls / minimal (activation + stream)"),
    Metric("calls", "calls", note="lead syncs and list calls from the restart to list x complete"),
    Metric("stream_p99_s", "s", "<=", LINGER_S + 2.0, "event ts to add of s acked, meanwhile"),
    Metric("stream_p50_s", "s"),
    Metric("stream_changes", "changes"),
    Metric("refused_606_615", "answers", "<=", 0),
]


def _lists(index: int) -> list[str]:
    """Profile `index`'s lists: x for a multiple of 4, and k too for a multiple of 8."""
    if index % 8 == 0:
        return ["x", "k"]
    return ["x"] if index % 4 == 0 else []


@dataclass(frozen=True, slots=True)
class Sizes:
    """Profiles in the state, the limits, and how long list x may take at most."""

    profiles: int
    limits: Limits
    timeout_s: float

    @property
    def members(self) -> int:
        """Profiles audience x matches (the multiples of 4)."""
        return len(range(0, self.profiles, 4))

    @property
    def new_persons(self) -> int:
        """Members of x that Marketo does not know yet (not multiples of 8)."""
        return self.members - len(range(0, self.profiles, 8))


def _sizes(bench: Bench) -> Sizes:
    if bench.quick:
        return Sizes(8_000, Limits(20, 1.0), 45.0)
    return Sizes(200_000, Limits(100, 20.0), 600.0)


def measure(bench: Bench, runs: int) -> list[Sample]:
    """Each run: a fresh topic, sandbox and state, synced by a first worker, then the restart."""
    return [_one_run(bench, _sizes(bench)) for _ in range(runs)]


class Stream:
    """New persons entering `s`, `STREAM_PER_S` a second, each stamped when produced."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.sent: dict[str, int] = {}  # email -> ts
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(bootstrap, topic), daemon=True)

    def __enter__(self) -> Stream:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self, bootstrap: str, topic: str) -> None:
        producer = fast_producer(bootstrap)
        start, index = time.monotonic(), STREAM_FIRST
        while not self._stop.is_set():
            due = int((time.monotonic() - start) * STREAM_PER_S) + 1
            while index - STREAM_FIRST < due:
                ts = now_ms()
                key, value = list_event(index, ["s"], ts)
                producer.produce(topic, value, key)
                self.sent[email(index)] = ts
                index += 1
            producer.poll(0)
            self._stop.wait(0.01)  # pacing: the producer's own clock, not a synchronisation
        producer.flush(30)


def _one_run(bench: Bench, sizes: Sizes) -> Sample:
    topic = create_topic(bench.bootstrap, 1, prefix="activation")
    limits = sizes.limits
    with SandboxProcess(*limits.sandbox_flags()) as sandbox, Wiretap(sandbox.url) as tap:
        first = write_worker_config(
            bench.path("activation", ".yaml"),
            bench.bootstrap,
            tap.url,
            topic,
            [list_audience("k"), list_audience("s")],
            budget=limits.budget(),
            # the REST lane: the bulk lane (flush.bulk_threshold) has its own scenario to come
            flush={"max_linger_s": LINGER_S, "bulk_threshold": None},
            request_timeout_s=bench.request_timeout_s,
        )
        _sync_first(bench, first, topic, sizes, tap)
        poll_until(
            lambda: sandbox.stats()["window_calls"],
            lambda calls: calls == 0,
            limits.window_s + bench.request_timeout_s + 30,
            "the first worker's calls to leave the window",
            0.25,
        )
        refused_before = refused(sandbox.stats())
        config = yaml.safe_load(first.read_text())
        config["audiences"].append(list_audience("x"))
        second = bench.path("activation", ".yaml")
        second.write_text(yaml.safe_dump(config))
        restart_at = time.time()
        worker = BenchWorker(second, bench.path("activation", ".log"))
        try:
            poll_until(lambda: is_ready(worker), bool, 300, "the restarted worker", 0.2)
            lists = _list_ids(sandbox)  # list x was created at start-up, before ready
            with Stream(bench.bootstrap, topic) as stream:
                filled, complete = _wait_for_list_x(tap, lists["x"], sizes, restart_at)
            poll_until(
                lambda: _stream_acked(tap, lists["s"], len(stream.sent)),
                bool,
                60,
                "the stream's last adds",
                0.25,
            )
            stats = sandbox.stats()
            leads = sandbox.state()["leads"]
        finally:
            worker.stop(60)
    assert isinstance(leads, list)
    email_of = {lead["id"]: lead["email"] for lead in leads}
    sample = _figures(tap.calls(), restart_at, sizes, lists, email_of, stream.sent)
    sample["refused_606_615"] = refused(stats) - refused_before
    if not complete:
        raise TimeoutError(
            f"list x held {filled:,} of {sizes.members:,} members {sizes.timeout_s:.0f} s after"
            " the restart: the audience added to the configuration was not activated. Meanwhile: "
            + ", ".join(f"{k} {v:.4g}" for k, v in sample.items() if v == v)
        )
    return sample


def _sync_first(bench: Bench, config: Any, topic: str, sizes: Sizes, tap: Wiretap) -> None:
    """Produce the profiles, let a worker with the first audiences sync them, stop it cleanly."""
    ts0 = now_ms() - 10 * 60_000  # older than the stream's events
    records = (list_event(i, _lists(i), ts0 + i) for i in range(sizes.profiles))
    worker = BenchWorker(config, bench.path("activation-first", ".log"))
    try:
        produce_all(bench.bootstrap, topic, records)
        known = len(range(0, sizes.profiles, 8))

        def added() -> int:
            return sum(len(c.ids) for c in tap.calls() if c.kind == "add_to_list")

        poll_until(lambda: committed(worker), lambda c: c >= sizes.profiles, 900, "the sync", 0.5)
        poll_until(added, lambda n: n >= known, 900, "list k", 0.5)
    finally:
        assert worker.stop(120) == 0, f"the first worker did not stop cleanly; see {worker.log}"


def _list_ids(sandbox: SandboxProcess) -> dict[str, int]:
    """The sandbox's lists, name -> id."""
    found = sandbox.state()["lists"]
    assert isinstance(found, list)
    return {item["name"]: int(item["id"]) for item in found}


def _adds(calls: Sequence[Call], list_id: int) -> list[Call]:
    return [c for c in calls if c.kind == "add_to_list" and c.list_id == list_id]


def _wait_for_list_x(
    tap: Wiretap, x_list: int, sizes: Sizes, restart_at: float
) -> tuple[int, bool]:
    """Wait until list x holds every member, or the timeout; return its members and whether
    it completed."""
    deadline = restart_at + sizes.timeout_s
    while (filled := len({i for c in _adds(tap.calls(), x_list) for i in c.ids})) < sizes.members:
        if time.time() > deadline:
            return filled, False
        time.sleep(0.25)  # the sampling period of an external process, not a synchronisation
    return filled, True


def _stream_acked(tap: Wiretap, s_list: int, sent: int) -> bool:
    """Tell whether list s has as many members added as the stream sent."""
    return sum(len(c.ids) for c in _adds(tap.calls(), s_list)) >= sent


def _figures(
    calls: list[Call],
    restart_at: float,
    sizes: Sizes,
    lists: dict[str, int],
    email_of: dict[int, str],
    sent: dict[str, int],
) -> Sample:
    after = [c for c in calls if c.started_s >= restart_at]
    x_adds = _adds(after, lists["x"])
    complete_at = max((c.ended_s for c in x_adds), default=float("nan"))
    during = [c for c in after if c.kind in DATA_CALLS and c.code == "ok"]
    if complete_at == complete_at:
        during = [c for c in during if c.started_s <= complete_at]
    stream_persons = set(sent)
    s_adds = _adds(during, lists["s"])
    s_syncs = [
        c
        for c in during
        if c.kind == "sync_leads" and all(email_of.get(i) in stream_persons for i in c.ids)
    ]
    minimal = (
        math.ceil(sizes.new_persons / BATCH)
        + math.ceil(sizes.members / BATCH)
        + len(s_adds)
        + len(s_syncs)
    )
    earlier = [c.started_s for c in calls if c.counted and c.started_s < restart_at]
    startup = [c.started_s for c in after if c.counted and c.kind not in DATA_CALLS]
    budget_s = earliest_last_start(earlier + startup, restart_at, minimal, sizes.limits)
    budget_s -= restart_at
    acked_at = {
        email_of[lead]: c.ended_s
        for c in _adds(calls, lists["s"])
        for lead in c.ids
        if lead in email_of
    }
    latencies = sorted(acked_at[e] - ts / 1000 for e, ts in sent.items() if e in acked_at)
    cuts = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else []
    complete_s = complete_at - restart_at
    return {
        "complete_ratio": complete_s / budget_s if budget_s > 0 else float("nan"),
        "complete_s": complete_s,
        "budget_s": budget_s,
        "call_ratio": len(during) / minimal,
        "calls": len(during),
        "stream_p99_s": cuts[98] if cuts else float("nan"),
        "stream_p50_s": cuts[49] if cuts else float("nan"),
        "stream_changes": len(latencies),
    }
