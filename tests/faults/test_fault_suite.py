"""Guarantee 1 (docs/guarantees.md): under crashes, broker restarts, rebalance storms, Marketo
faults and poison input, every list converges to exactly the oracle's membership.

Each scenario writes its figures (events, faults, lost, spurious, calls, convergence time) to
fault-results.json. Run with `make test-faults` (marker `faults`; part of `.ci/run`).
"""

from __future__ import annotations

import random
from functools import partial
from pathlib import Path

import pytest

from tests.faults.oracle import AUDIENCES, Clock, Report, workload
from tests.integration.harness import (
    WorkerProcess,
    committed,
    group_of,
    list_members,
    metric,
    metrics_text,
    new_input_topic,
    produce,
    read_topic,
    wait_for_lists,
    write_config,
)
from tests.kafka_support import new_local_broker, wait_for
from worker.sandbox.process import SandboxProcess

pytestmark = [pytest.mark.integration, pytest.mark.faults]
CONVERGE_S = 300


def start_workers(config: Path, tmp: Path, count: int, tag: str = "w") -> list[WorkerProcess]:
    workers = [WorkerProcess(config, tmp / f"{tag}{n}.log") for n in range(count)]
    wait_for(
        lambda: all(metric(w, "marketo_worker_rebalances_total") > 0 for w in workers),
        90,
        "every worker to join the group",
    )
    return workers


def added_records(worker: WorkerProcess) -> float:
    """Records this worker had Marketo add to lists (its marketo_records_total samples)."""
    lines = metrics_text(worker).splitlines()
    prefix = 'marketo_worker_marketo_records_total{endpoint="add_to_list"'
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(prefix))


def has_joined(worker: WorkerProcess) -> bool:
    """Tell whether a worker took part in a rebalance (it joined the group)."""
    return metric(worker, "marketo_worker_rebalances_total") > 0


def chunks(events: list[tuple[str, bytes]], parts: int) -> list[list[tuple[str, bytes]]]:
    size = -(-len(events) // parts)
    return [events[i : i + size] for i in range(0, len(events), size)]


def finish(
    report: Report,
    sandbox: SandboxProcess,
    expected: dict[str, set[str]],
    workers: list[WorkerProcess],
) -> None:
    """Wait for convergence, stop every worker gracefully, and record the figures."""
    clock = Clock()
    try:
        seen = wait_for_lists(sandbox, expected, CONVERGE_S)
        report.convergence_s = clock.elapsed()
        report.compare(expected, seen)
        report.count_calls(sandbox, expected)
    finally:
        codes = [w.stop() for w in workers]
        report.save()
    assert codes == [0] * len(workers), [w.log for w in workers]
    assert (report.lost, report.spurious) == (0, 0)


def test_three_workers_survive_five_sigkills(kafka_bootstrap: str, tmp_path: Path) -> None:
    """3 workers, 50,000 events, a worker killed with SIGKILL 5 times: lists exact."""
    load = workload(profiles=10_000, per_profile=5, seed=1)
    report = Report("sigkill-x5", len(load.events))
    rng = random.Random(7)
    topic = new_input_topic(kafka_bootstrap, partitions=6)
    with SandboxProcess("--no-limits") as sandbox:
        config = write_config(tmp_path / "c.yaml", kafka_bootstrap, sandbox.url, topic, AUDIENCES)
        workers = start_workers(config, tmp_path, 3)
        for n, part in enumerate(chunks(load.events, 5)):
            produce(kafka_bootstrap, topic, part)
            victim = rng.randrange(len(workers))
            workers[victim].kill()
            report.faults.append(f"SIGKILL worker {victim}")
            workers[victim] = WorkerProcess(config, tmp_path / f"restart{n}.log")
        finish(report, sandbox, load.expected, workers)


def test_broker_restart_mid_run(tmp_path: Path) -> None:
    """The broker is stopped and started again on the same data mid-run: lists exact."""
    load = workload(profiles=4_000, per_profile=3, seed=2)
    report = Report("broker-restart", len(load.events))
    broker = new_local_broker(tmp_path / "broker")
    bootstrap = broker.start()
    try:
        topic = new_input_topic(bootstrap, partitions=4)
        with SandboxProcess("--no-limits") as sandbox:
            config = write_config(tmp_path / "c.yaml", bootstrap, sandbox.url, topic, AUDIENCES)
            workers = start_workers(config, tmp_path, 1)
            first, second = chunks(load.events, 2)
            produce(bootstrap, topic, first)
            wait_for(lambda: len(list_members(sandbox)) > 0, 90, "first lists")
            broker.stop()
            report.faults.append("broker stopped (SIGTERM) and restarted")
            broker.start()
            produce(bootstrap, topic, second)
            finish(report, sandbox, load.expected, workers)
    finally:
        broker.stop()


def test_rebalance_storm(kafka_bootstrap: str, tmp_path: Path) -> None:
    """Workers join and leave every few seconds while events flow: lists exact."""
    load = workload(profiles=6_000, per_profile=3, seed=3)
    report = Report("rebalance-storm", len(load.events))
    topic = new_input_topic(kafka_bootstrap, partitions=6)
    with SandboxProcess("--no-limits") as sandbox:
        config = write_config(tmp_path / "c.yaml", kafka_bootstrap, sandbox.url, topic, AUDIENCES)
        steady = start_workers(config, tmp_path, 1, "steady")
        for n, part in enumerate(chunks(load.events, 6)):
            guest = WorkerProcess(config, tmp_path / f"guest{n}.log")
            produce(kafka_bootstrap, topic, part)
            wait_for(partial(has_joined, guest), 60, "join")
            assert guest.stop() == 0
            report.faults.append(f"worker joined and left (cycle {n})")
        finish(report, sandbox, load.expected, steady)


def test_marketo_faults_combined(kafka_bootstrap: str, tmp_path: Path) -> None:
    """10% 5xx, a 606 storm, 615s, timeouts, token revocations and a spent quota: lists exact."""
    load = workload(profiles=3_000, per_profile=3, seed=4)
    report = Report("marketo-faults", len(load.events))
    topic = new_input_topic(kafka_bootstrap, partitions=4)
    flags = [
        "--concurrency",
        "2",
        "--token-ttl-s",
        "3",
        "--quota-day-s",
        "5",
        "--latency-jitter-ms",
        "400",
        "--p-http-500",
        "0.1",
    ]
    injections: list[dict[str, float | bool]] = [
        {"storm_606_s": 2},
        {"revoke_tokens": True},
        {"latency_ms": 3500},  # beyond the client's 3 s timeout
        {"latency_ms": 0, "exhaust_quota": True},
        {"revoke_tokens": True},
    ]
    with SandboxProcess(*flags) as sandbox:
        config = write_config(tmp_path / "c.yaml", kafka_bootstrap, sandbox.url, topic, AUDIENCES)
        workers = start_workers(config, tmp_path, 2)
        for part, faults in zip(chunks(load.events, len(injections)), injections, strict=True):
            produce(kafka_bootstrap, topic, part)
            sandbox.set_faults(**faults)
            report.faults.append(str(faults))
        finish(report, sandbox, load.expected, workers)


def test_one_percent_poison(kafka_bootstrap: str, tmp_path: Path) -> None:
    """1% poison events mixed in: every one dead-lettered, lists exact."""
    load = workload(profiles=5_000, per_profile=2, seed=5, poison_rate=0.01)
    poison = sum(1 for _, value in load.events if not value.startswith(b'{"profile_id":"p-'))
    report = Report("poison-1pct", len(load.events))
    report.faults.append(f"{poison} poison events")
    topic = new_input_topic(kafka_bootstrap, partitions=4)
    with SandboxProcess("--no-limits") as sandbox:
        config = write_config(tmp_path / "c.yaml", kafka_bootstrap, sandbox.url, topic, AUDIENCES)
        workers = start_workers(config, tmp_path, 2)
        produce(kafka_bootstrap, topic, load.events)
        finish(report, sandbox, load.expected, workers)
    assert len(read_topic(kafka_bootstrap, f"{topic}.dlq", poison)) == poison


def test_sigterm_during_backlog_flushes_commits_and_restarts_without_resending(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """SIGTERM mid-backlog: a clean exit within the deadline, offsets committed for what was
    flushed, and the restarted worker sends nothing for those memberships again."""
    load = workload(profiles=6_000, per_profile=1, seed=6)
    report = Report("sigterm-backlog", len(load.events))
    topic = new_input_topic(kafka_bootstrap, partitions=4)
    with SandboxProcess("--latency-ms", "100") as sandbox:
        config = write_config(
            tmp_path / "c.yaml",
            kafka_bootstrap,
            sandbox.url,
            topic,
            AUDIENCES,
            budget={"calls_per_window": 10, "window_s": 1, "concurrency": 2},
            flush={"max_batch": 100, "shutdown_deadline_s": 20, "max_buffered_changes": 400},
        )
        (worker,) = start_workers(config, tmp_path, 1)
        produce(kafka_bootstrap, topic, load.events)
        wait_for(
            lambda: sum(len(m) for m in list_members(sandbox).values()) > 300,
            90,
            "a backlog in progress",
        )
        assert worker.stop(timeout_s=40) == 0
        report.faults.append("SIGTERM with a backlog")
        in_marketo = sum(len(m) for m in list_members(sandbox).values())
        offsets = committed(kafka_bootstrap, group_of(config), topic, 4)
        assert sum(o for o in offsets.values() if o > 0) > 0
        assert in_marketo < sum(len(m) for m in load.expected.values()), "no backlog was left"
        restarted = WorkerProcess(config, tmp_path / "restarted.log")
        wait_for(lambda: metric(restarted, "marketo_worker_rebalances_total") > 0, 90, "restart")
        seen = wait_for_lists(sandbox, load.expected, CONVERGE_S)
        sent_again = added_records(restarted)
        report.compare(load.expected, seen)
        report.count_calls(sandbox, load.expected)
        assert restarted.stop() == 0
        report.save()
    wanted = sum(len(m) for m in load.expected.values())
    # each person enters one list once: the restarted worker adds only those still missing
    assert sent_again == wanted - in_marketo, (sent_again, wanted, in_marketo)
