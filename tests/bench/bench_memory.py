"""Scenario 5, memory and restore: a worker builds state for N profiles and stops; a fresh one
restores it from the changelog. Resident memory per 1,000,000 profiles is the restored worker's
RSS minus an idle worker's, scaled; the restore rate is distinct profiles over restore wall time.
The state keeps every attribute (`state.attributes: all`, the default): measured for the ingest
events (13 attributes, about 400 bytes) and for wide ones (40 attributes, about 1.2 KB)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import orjson

from tests.bench.context import Bench, poll_until
from tests.bench.fleet import (
    UNLIMITED_BUDGET,
    BenchWorker,
    committed,
    is_ready,
    total,
    write_worker_config,
)
from tests.bench.results import Metric, Sample
from tests.bench.workload import (
    INGEST_RULES,
    audiences,
    ingest_event,
    ingest_stream,
    now_ms,
    produce_all,
)
from tests.kafka_support import create_topic
from worker.sandbox.process import SandboxProcess

NAME = "memory"
PARTITIONS = 4
WIDE = "_40_attributes"  # the suffix of the wide events' figures
METRICS = [
    Metric(
        "rss_mb_per_1m_profiles",
        "MiB",
        "<=",
        450,
        "13 attributes, all kept: (restored RSS - idle RSS) / profiles",
    ),
    Metric("restore_profiles_per_s", "profiles/s", ">=", 200_000),
    Metric(f"rss_mb_per_1m_profiles{WIDE}", "MiB", note="40 attributes (about 1.2 KB), all kept"),
    Metric(f"restore_profiles_per_s{WIDE}", "profiles/s"),
    Metric("restored_records_per_s", "records/s", note="changelog records, duplicates included"),
    Metric("idle_rss_mb", "MiB"),
    Metric("restored_rss_mb", "MiB"),
    Metric("assigned_to_restored_s", "s", note="includes flush.handover_s (request timeout + 1)"),
    Metric("profiles", "profiles"),
]


def measure(bench: Bench, runs: int) -> list[Sample]:
    """Each run: build the state with one worker, then measure a restoring one; for the ingest
    events, then for the wide ones."""
    profiles = 5_000 if bench.quick else 200_000
    topic = create_topic(bench.bootstrap, PARTITIONS, prefix="memory")
    produce_all(bench.bootstrap, topic, ingest_stream(profiles, profiles, now_ms()))
    wide = create_topic(bench.bootstrap, PARTITIONS, prefix="memory-wide")
    ts0 = now_ms()
    produce_all(bench.bootstrap, wide, (wide_event(i, ts0 + i) for i in range(profiles)))
    idle = _idle_rss(bench)
    samples = []
    for _ in range(runs):
        sample = _one_run(bench, topic, profiles, idle)
        wide_sample = _one_run(bench, wide, profiles, idle)
        for name in ("rss_mb_per_1m_profiles", "restore_profiles_per_s"):
            sample[name + WIDE] = wide_sample[name]
        samples.append(sample)
    return samples


def wide_event(index: int, ts_ms: int) -> tuple[bytes, bytes]:
    """An ingest event with 27 more attributes (40 in all, about 1.2 KB): text and numbers."""
    key, value = ingest_event(index, 0, ts_ms)
    event = orjson.loads(value)
    traits = event["attributes"]
    for n in range(27):
        traits[f"trait_{n:02d}"] = (index * n) % 1000 if n % 3 == 0 else f"v{(index + n) % 97}-" * 6
    return key, orjson.dumps(event)


def _start(bench: Bench, config: Path) -> BenchWorker:
    return BenchWorker(config, bench.path("memory", ".log"))


def _config(bench: Bench, url: str, topic: str) -> Path:
    return write_worker_config(
        bench.path("memory", ".yaml"),
        bench.bootstrap,
        url,
        topic,
        audiences(INGEST_RULES),
        budget=UNLIMITED_BUDGET,
        request_timeout_s=bench.request_timeout_s,
    )


def _idle_rss(bench: Bench) -> float:
    """RSS of a ready worker with the same audiences on an empty topic."""
    topic = create_topic(bench.bootstrap, PARTITIONS, prefix="idle")
    with SandboxProcess("--no-limits") as sandbox:
        worker = _start(bench, _config(bench, sandbox.url, topic))
        try:
            poll_until(lambda: is_ready(worker), bool, 120, "an idle worker", 0.2)
            return worker.rss_mb()
        finally:
            worker.stop(60)


def _one_run(bench: Bench, topic: str, profiles: int, idle_mb: float) -> Sample:
    with SandboxProcess("--no-limits") as sandbox:
        config = _config(bench, sandbox.url, topic)
        builder = _start(bench, config)
        try:
            poll_until(lambda: committed(builder), lambda c: c >= profiles, 900, "state", 0.5)
        finally:
            builder.stop(120)
        restorer = _start(bench, config)  # same group and state topic: it restores
        try:
            poll_until(lambda: is_ready(restorer), bool, 600, "the restore", 0.2)
            restored = total(restorer.metrics(), "marketo_worker_state_profiles")
            records = total(restorer.metrics(), "marketo_worker_state_restored_profiles_total")
            rss = restorer.rss_mb()
            assigned = min(restorer.log_times("partitions.assigned"))
            # restore wall time: from the first partition's restore start (its log time minus
            # its `seconds`) to the last one's end; the handover wait before it is not restore
            done = [e for e in restorer.logs() if e.get("event") == "state.restored"]
            ends = [datetime.fromisoformat(e["timestamp"]).timestamp() for e in done]
            began = min(end - float(e["seconds"]) for end, e in zip(ends, done, strict=True))
            ended = max(ends)
        finally:
            restorer.stop(60)
    seconds = max(ended - began, 1e-3)
    return {
        "rss_mb_per_1m_profiles": (rss - idle_mb) / restored * 1_000_000,
        "restore_profiles_per_s": restored / seconds,
        "restored_records_per_s": records / seconds,
        "idle_rss_mb": idle_mb,
        "restored_rss_mb": rss,
        "assigned_to_restored_s": ended - assigned,
        "profiles": restored,
    }
