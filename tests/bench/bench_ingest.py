"""Scenario 1, ingest: a backlog through one worker with the sandbox's limits off, against a bare
consume-and-decode loop over the same topic (the ceiling set by Kafka and decoding alone)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from tests.bench.context import Bench, poll_until
from tests.bench.fleet import UNLIMITED_BUDGET, BenchWorker, total, write_worker_config
from tests.bench.results import Metric, Sample
from tests.bench.workload import INGEST_RULES, audiences, ingest_stream, now_ms, produce_all
from tests.kafka_support import create_topic
from tests.sandbox_views import sandbox_stats
from worker.core.events import decode
from worker.sandbox.process import SandboxProcess

NAME = "ingest"
PARTITIONS = 4
METRICS = [
    Metric("events_per_s", "events/s", ">=", 50_000, "first fetch to last commit"),
    Metric("processed_per_s", "events/s", note="first fetch to every event applied"),
    Metric("bare_decode_per_s", "events/s", note="consume + decode loop, no worker"),
    Metric("ratio_to_bare", "ratio", note="events_per_s / bare_decode_per_s"),
    Metric("marketo_calls", "calls"),
    Metric("rss_end_mb", "MiB"),
    Metric("cpu_us_per_event", "µs", note="worker CPU (all threads), first fetch to last commit"),
]


def _sizes(bench: Bench) -> tuple[int, int]:
    return (10_000, 2_000) if bench.quick else (1_000_000, 200_000)


def measure(bench: Bench, runs: int) -> list[Sample]:
    """Produce the backlog once; each run drains it with a fresh group, state and sandbox."""
    events, profiles = _sizes(bench)
    topic = create_topic(bench.bootstrap, PARTITIONS, prefix="ingest")
    produce_all(bench.bootstrap, topic, ingest_stream(profiles, events, now_ms()))
    samples = []
    for _ in range(runs):
        sample = _one_run(bench, topic, events, None)
        sample["bare_decode_per_s"] = bare_decode_rate(bench.bootstrap, topic, events)
        sample["ratio_to_bare"] = sample["events_per_s"] / sample["bare_decode_per_s"]
        samples.append(sample)
    if bench.profile_dir is not None:  # one more run under the profiler, not counted
        _one_run(bench, topic, events, bench.profile_dir / "ingest-pyinstrument.txt")
    return samples


def _one_run(bench: Bench, topic: str, events: int, profile: Path | None) -> Sample:
    with SandboxProcess("--no-limits") as sandbox:
        config = write_worker_config(
            bench.path("ingest", ".yaml"),
            bench.bootstrap,
            sandbox.url,
            topic,
            audiences(INGEST_RULES),
            budget=UNLIMITED_BUDGET,
            request_timeout_s=bench.request_timeout_s,
        )
        worker = BenchWorker(config, bench.path("ingest", ".log"), profile)
        try:
            processed_at, cpu_at_start = 0.0, 0.0

            def probe() -> float:
                nonlocal processed_at, cpu_at_start
                samples = worker.metrics()
                if not cpu_at_start and total(samples, "marketo_worker_events_total") > 0:
                    cpu_at_start = worker.cpu_s()  # the first batch: start-up and restore done
                applied = total(samples, "marketo_worker_events_total")
                if not processed_at and applied >= events:
                    processed_at = time.time()
                return total(samples, "marketo_worker_committed_offset")

            _, done_at = poll_until(probe, lambda c: c >= events, 1800, "the last commit", 0.2)
            first_fetch = max(worker.log_times("state.restored"))
            rss = worker.rss_mb()
            cpu = worker.cpu_s() - cpu_at_start
            calls = sandbox_stats(sandbox)["total_calls"]
        finally:
            worker.stop(120)
    return {
        "events_per_s": events / (done_at - first_fetch),
        "processed_per_s": events / ((processed_at or done_at) - first_fetch),
        "marketo_calls": calls,
        "rss_end_mb": rss,
        "cpu_us_per_event": cpu / events * 1e6,
    }


def bare_decode_rate(bootstrap: str, topic: str, events: int) -> float:
    """Events/s of consume(500) + decode over the whole topic, from first to last record."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bare-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    seen, started = 0, 0.0
    deadline = time.monotonic() + 600
    try:
        while seen < events and time.monotonic() < deadline:
            for message in consumer.consume(500, 1.0):
                if message.error() is not None:
                    continue
                if not started:
                    started = time.perf_counter()
                decode(message.key(), message.value(), max_bytes=65_536)
                seen += 1
        elapsed = time.perf_counter() - started
    finally:
        consumer.close()
    return seen / elapsed if seen == events else float("nan")
