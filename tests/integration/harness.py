"""Scenario support: a real worker process, its config, events, and the sandbox's lists."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson
import yaml
from confluent_kafka import Consumer, Producer, TopicPartition

from tests.kafka_support import create_topic, wait_for
from tests.sandbox_views import sandbox_state
from worker.sandbox.process import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SandboxProcess

Audience = dict[str, Any]


def write_config(
    path: Path,
    bootstrap: str,
    sandbox_url: str,
    topic: str,
    audiences: list[Audience],
    *,
    budget: Mapping[str, object] | None = None,
    flush: Mapping[str, object] | None = None,
    person_creation: str = "match_and_create",
    kafka: Mapping[str, object] | None = None,
) -> Path:
    """Write a worker config for one scenario: unique topics and group, metrics on a free port."""
    suffix = uuid.uuid4().hex[:8]
    config = {
        "kafka": {
            "bootstrap_servers": bootstrap,
            "topic": topic,
            "group_id": f"worker-{suffix}",
            "dead_letter_topic": f"{topic}.dlq",
            "rejections_topic": f"{topic}.rejections",
            "state_topic": f"{topic}.state",
            # scenario events carry small epoch-ms ts values (1970) for readability
            "min_event_ts": "1970-01-01T00:00:00Z",
            **(kafka or {}),
        },
        "marketo": {
            "base_url": sandbox_url,
            "person_creation": person_creation,
            "budget": {
                "calls_per_window": 1000,
                "window_s": 1,
                "concurrency": 5,
                "daily_quota": 1_000_000,
                "daily_reserve": 0,
                "quota_probe_s": 1,
                **(budget or {}),
            },
            "request_timeout_s": 3,
        },
        "mapping": [
            {"from": "firstName", "to": "firstName"},
            {"from": "lastName", "to": "lastName"},
        ],
        "audiences": audiences,
        "flush": {
            "max_linger_s": 0.2,
            "commit_interval_s": 0.2,
            "shutdown_deadline_s": 10,
            **(flush or {}),
        },
        "telemetry": {"metrics_port": 0, "log_level": "info"},
    }
    path.write_text(yaml.safe_dump(config))
    return path


class WorkerProcess:
    """`marketo-worker run CONFIG` as a child process, killable with any signal."""

    def __init__(self, config: Path, log: Path, client_secret: str = DEFAULT_CLIENT_SECRET) -> None:
        env = {
            **os.environ,
            "MARKETO_CLIENT_ID": DEFAULT_CLIENT_ID,
            "MARKETO_CLIENT_SECRET": client_secret,
        }
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "worker", "run", str(config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def logs(self) -> list[dict[str, Any]]:
        """The worker's JSON log events so far."""
        events = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    events.append(orjson.loads(line))
                except orjson.JSONDecodeError:
                    continue
        return events

    def metrics_port(self) -> int | None:
        """The metrics port the worker logged in `worker.started` (it binds port 0)."""
        started = [e for e in self.logs() if e.get("event") == "worker.started"]
        return int(started[-1]["metrics_port"]) if started else None

    def stop(self, timeout_s: float = 30) -> int:
        """SIGTERM, and wait for the graceful exit."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL: no flush, no commit, no goodbye."""
        self.proc.kill()
        self.proc.wait(10)


def metrics_text(worker: WorkerProcess) -> str:
    """The worker's /metrics page ("" before it has started)."""
    port = worker.metrics_port()
    if port is None:
        return ""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def metric(worker: WorkerProcess, name: str) -> float:
    """Sum a metric's samples from the worker's /metrics endpoint (0 when absent)."""
    text = metrics_text(worker)
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and (line[len(name)] in " {")
    )


def produce(
    bootstrap: str,
    topic: str,
    events: Iterable[tuple[str, bytes]],
    config: Mapping[str, str] | None = None,
) -> int:
    """Produce (key, value) records; return how many the broker acknowledged."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 10, **(config or {})})
    count = 0
    for key, value in events:
        producer.produce(topic, value, key.encode())
        producer.poll(0)
        count += 1
    assert producer.flush(60) == 0
    return count


def event(profile: str, ts: int, op: str = "upsert", **fields: object) -> tuple[str, bytes]:
    """One profile-update record."""
    return profile, orjson.dumps({"profile_id": profile, "ts": ts, "op": op, **fields})


def valid_events(count: int, ts0: int = 1_000) -> list[tuple[str, bytes]]:
    """Events of profiles p-0, p-1, ... in country FR, with emails v0@example.com, ..."""
    return [
        event(
            f"p-{i}",
            ts0 + i,
            identities={"email": f"v{i}@example.com"},
            attributes={"country": "FR", "firstName": "A", "lastName": "B"},
        )
        for i in range(count)
    ]


def list_members(sandbox: SandboxProcess) -> dict[str, set[str | None]]:
    """The sandbox's static lists as list name -> member emails (None for a lead without one)."""
    state = sandbox_state(sandbox)
    emails: dict[int, str | None] = {lead["id"]: lead.get("email") for lead in state["leads"]}
    names = {str(item["id"]): item["name"] for item in state["lists"]}
    return {
        names[list_id]: {emails[lead] for lead in members}
        for list_id, members in state["members"].items()
        if list_id in names
    }


def wait_for_lists(
    sandbox: SandboxProcess, expected: Mapping[str, set[str]], timeout_s: float
) -> dict[str, set[str | None]]:
    """Wait until every expected list has exactly the expected members; return what was seen."""
    seen: dict[str, set[str | None]] = {}

    def converged() -> bool:
        nonlocal seen
        seen = list_members(sandbox)
        return all(seen.get(name, set()) == members for name, members in expected.items())

    try:
        wait_for(converged, timeout_s, "the lists to converge")
    except AssertionError:
        for name, members in expected.items():
            got = seen.get(name, set())
            print(f"{name}: missing {len(members - got)}, spurious {len(got - members)}")
        raise
    return seen


def read_topic(bootstrap: str, topic: str, count: int, timeout_s: float = 30) -> list[Any]:
    """Read `count` records of a topic from the start (all partitions)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"r-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    records: list[Any] = []
    wait_for(lambda: _extend(consumer, records, count), timeout_s, f"{count} records on {topic}")
    consumer.close()
    return records


def _extend(consumer: Consumer, records: list[Any], count: int) -> bool:
    records += [m for m in consumer.consume(500, 0.2) if m.error() is None]
    return len(records) >= count


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    """The group's committed offsets (-1001 where none)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    result = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=15)
    consumer.close()
    return {tp.partition: tp.offset for tp in result}


def new_input_topic(bootstrap: str, partitions: int = 4) -> str:
    """A fresh input topic (the worker creates its own output topics)."""
    return create_topic(bootstrap, partitions, prefix="profiles")


def group_of(config: Path) -> str:
    """The consumer group a config names."""
    return str(yaml.safe_load(config.read_text())["kafka"]["group_id"])


Check = Callable[[], bool]
