"""Scenario 3, latency: new persons entering lists at a steady 200 changes/s (under budget);
from each event's `ts` to the moment Marketo acknowledged the list add, read at the wire.

Why the wire and not the worker's histogram: its buckets (1, 1.5, 2 s) are too coarse for
`linger + 0.3 s`, and it also counts lead-sync acknowledgements.
"""

from __future__ import annotations

import statistics
import time

from tests.bench.bench_drain import Limits
from tests.bench.context import Bench, poll_until
from tests.bench.fleet import BenchWorker, is_ready, wait_for_full_share, write_worker_config
from tests.bench.results import Metric, Sample
from tests.bench.wiretap import Wiretap
from tests.bench.workload import email, fast_producer, list_audiences, list_event, now_ms
from tests.kafka_support import create_topic
from worker.sandbox.process import SandboxProcess

NAME = "latency"
LINGER_S = 1.0  # the default flush.max_linger_s
RATE_PER_S = 200
LISTS = 2
# Marketo's own limits (quick: 40 calls per 2 s, so that start-up calls are quick too).
# About 3 calls/s are needed: 1 lead sync and 2 list adds per linger.
FULL_LIMITS = Limits(100, 20.0)
QUICK_LIMITS = Limits(40, 2.0)
METRICS = [
    Metric("p50_s", "s", "<=", LINGER_S + 0.3, "event ts to list add acked, linger 1 s"),
    Metric("p99_s", "s", "<=", LINGER_S + 1.0),
    Metric("max_s", "s"),
    Metric("changes", "changes"),
]


def measure(bench: Bench, runs: int) -> list[Sample]:
    """Each run: a fresh topic, sandbox and worker; `duration` seconds of paced events."""
    duration_s = 2.0 if bench.quick else 30.0
    return [_one_run(bench, duration_s) for _ in range(runs)]


def _produce_paced(bootstrap: str, topic: str, duration_s: float) -> dict[str, int]:
    """200 new persons a second, in 10 ms steps, each stamped when produced; email -> ts."""
    producer = fast_producer(bootstrap)
    sent: dict[str, int] = {}
    step_s = 0.01
    per_step = RATE_PER_S * step_s
    start = time.monotonic()
    index = 0
    while (elapsed := time.monotonic() - start) < duration_s:
        while index < int(elapsed / step_s + 1) * per_step:
            ts = now_ms()
            key, value = list_event(index, [f"l{index % LISTS}"], ts)
            producer.produce(topic, value, key)
            sent[email(index)] = ts
            index += 1
        producer.poll(0)
        time.sleep(max(0.0, start + (elapsed // step_s + 1) * step_s - time.monotonic()))
    producer.flush(30)
    return sent


def _one_run(bench: Bench, duration_s: float) -> Sample:
    topic = create_topic(bench.bootstrap, 4, prefix="latency")
    limits = QUICK_LIMITS if bench.quick else FULL_LIMITS
    with SandboxProcess(*limits.sandbox_flags()) as sandbox, Wiretap(sandbox.url) as tap:
        config = write_worker_config(
            bench.path("latency", ".yaml"),
            bench.bootstrap,
            tap.url,
            topic,
            list_audiences(LISTS),
            budget=limits.budget(),
            flush={"max_linger_s": LINGER_S},
        )
        worker = BenchWorker(config, bench.path("latency", ".log"))
        try:
            poll_until(lambda: is_ready(worker), bool, 120, "the worker to be ready", 0.2)
            wait_for_full_share([worker], limits.window_s, bench.request_timeout_s)
            sent = _produce_paced(bench.bootstrap, topic, duration_s)

            def acked() -> int:
                return sum(len(c.ids) for c in tap.calls() if c.kind == "add_to_list")

            poll_until(acked, lambda n: n >= len(sent), 120, "every add acknowledged", 0.2)
            leads = sandbox.state()["leads"]
        finally:
            worker.stop(60)
    assert isinstance(leads, list)
    email_of = {lead["id"]: lead["email"] for lead in leads}
    acked_at = {
        email_of[lead]: call.ended_s
        for call in tap.calls()
        if call.kind == "add_to_list"
        for lead in call.ids
    }
    latencies = sorted(acked_at[e] - ts / 1000 for e, ts in sent.items() if e in acked_at)
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"p50_s": cuts[49], "p99_s": cuts[98], "max_s": latencies[-1], "changes": len(sent)}
