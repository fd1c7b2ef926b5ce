"""Worker processes for the benchmark: their config, their /metrics, their logs and their memory.

Measures only from the outside (HTTP, logs, /proc): the worker is run exactly as in production.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from tests.integration.harness import WorkerProcess
from worker.sandbox.process import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

Samples = dict[str, float]
UNLIMITED_BUDGET = {
    "calls_per_window": 1_000_000,
    "window_s": 1,
    "concurrency": 10,
    "daily_quota": 100_000_000,
    "daily_reserve": 0,
}


def write_worker_config(
    path: Path,
    bootstrap: str,
    marketo_url: str,
    topic: str,
    audiences: list[dict[str, Any]],
    *,
    budget: Mapping[str, object],
    flush: Mapping[str, object] | None = None,
    group: str | None = None,
    request_timeout_s: float = 5.0,
) -> Path:
    """A config whose state, dead-letter and rejection topics are unique to this run."""
    suffix = uuid.uuid4().hex[:8]
    config = {
        "kafka": {
            "bootstrap_servers": bootstrap,
            "topic": topic,
            "group_id": group or f"bench-{suffix}",
            "dead_letter_topic": f"{topic}.dlq-{suffix}",
            "rejections_topic": f"{topic}.rejections-{suffix}",
            "state_topic": f"{topic}.state-{suffix}",
        },
        "marketo": {
            "base_url": marketo_url,
            "budget": {"quota_probe_s": 5, **budget},
            "request_timeout_s": request_timeout_s,
        },
        "mapping": [
            {"from": "firstName", "to": "firstName"},
            {"from": "lastName", "to": "lastName"},
        ],
        "audiences": audiences,
        "flush": {"shutdown_deadline_s": 30, **(flush or {})},
        "telemetry": {"metrics_port": 0, "log_level": "info"},
    }
    path.write_text(yaml.safe_dump(config))
    return path


class BenchWorker(WorkerProcess):
    """`python -m worker run CONFIG`, optionally under pyinstrument (its report to `profile`)."""

    def __init__(self, config: Path, log: Path, profile: Path | None = None) -> None:
        env = {
            **os.environ,
            "MARKETO_CLIENT_ID": DEFAULT_CLIENT_ID,
            "MARKETO_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
        }
        command = [sys.executable, "-m", "worker", "run", str(config)]
        if profile is not None:
            pyinstrument = [sys.executable, "-m", "pyinstrument", "-r", "text", "-o", str(profile)]
            command = [*pyinstrument, "--show-all", "-m", "worker", "run", str(config)]
        self.log = log
        self.port = 0
        with log.open("ab") as out:
            self.proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)

    def metrics(self) -> Samples:
        """Every sample of /metrics as `name{labels}` -> value (empty before start-up)."""
        if not self.port:
            started = [e for e in self.logs() if e.get("event") == "worker.started"]
            if not started:
                return {}
            self.port = int(started[-1]["metrics_port"])
        url = f"http://127.0.0.1:{self.port}/metrics"
        # a worker busy restoring may not answer for a while: wait for it
        with urllib.request.urlopen(url, timeout=120) as response:
            text = response.read().decode()
        samples: Samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                samples[name] = float(value)
        return samples

    def log_times(self, event: str) -> list[float]:
        """Epoch seconds of every log event named `event`."""
        return [
            datetime.fromisoformat(e["timestamp"]).timestamp()
            for e in self.logs()
            if e.get("event") == event
        ]

    def cpu_s(self) -> float:
        """CPU seconds the worker process has used (user + system, all its threads)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        """Resident memory of the worker process (VmRSS), in MiB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS line")


def wait_for_full_share(workers: list[BenchWorker], window_s: float, timeout_s: float) -> None:
    """Sleep until the workers' budget shares have grown to their assignment.

    A worker starts at 1/partitions of the budget; an increase applies `window_s +
    request_timeout_s + 1` after it is asked for (worker/core/budget.py), so the figures of a
    warm worker start after that.
    """
    last = max(t for w in workers for t in w.log_times("partitions.assigned"))
    settle_at = last + window_s + timeout_s + 1.0 + 0.5
    time.sleep(max(0.0, settle_at - time.time()))  # the budget's documented delay, not a race


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum the samples of metric `name` whose labels include `labels`."""
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    return sum(
        value
        for key, value in samples.items()
        if (key == name or key.startswith(name + "{")) and all(w in key for w in wanted)
    )


def committed(worker: BenchWorker) -> float:
    """Sum over partitions of the next offset to read: the records done, on a fresh topic."""
    return total(worker.metrics(), "marketo_worker_committed_offset")


def is_ready(worker: BenchWorker) -> bool:
    """`/readyz` answers 200: partitions assigned, state restored, Marketo answered."""
    if worker.proc.poll() is not None:
        raise RuntimeError(f"worker exited with {worker.proc.returncode}; see {worker.log}")
    if not worker.metrics():
        return False
    url = f"http://127.0.0.1:{worker.port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, TimeoutError):  # 503, or a loop too busy to answer
        return False
