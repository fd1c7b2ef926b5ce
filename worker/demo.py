"""`make demo`: a local broker, the Marketo sandbox, the worker, a generator and Prometheus.

Everything runs on 127.0.0.1 as child processes of this one; a live summary prints every few
seconds; Ctrl-C (or --duration-s) stops them all, by pid, in reverse order.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from prometheus_client.parser import text_string_to_metric_families

from worker.kafka.localbroker import BrokerLayout, LocalBroker, free_port
from worker.kafka.topics import create_topic_if_missing
from worker.sandbox.process import SandboxProcess

CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "local" / "config.yaml"
CLIENT_ID, CLIENT_SECRET = "demo-client", "demo-secret"
Samples = dict[str, list[tuple[dict[str, str], float]]]


class Children:
    """The processes the demo started; stopped in reverse order by pid."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, cmd: list[str], env: dict[str, str], log: Path) -> None:
        with log.open("ab") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        self.procs.append((name, proc))
        print(f"started {name} (pid {proc.pid}, log {log})", flush=True)

    def stop(self) -> None:
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(40)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
            print(f"stopped {name} (pid {proc.pid}, exit {proc.returncode})", flush=True)
        self.procs.clear()


def scrape(port: int) -> Samples:
    """The worker's metrics, by sample name."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return {}
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def total(samples: Samples, name: str) -> float:
    return sum(value for _, value in samples.get(name, []))


def quantile(samples: Samples, name: str, q: float) -> float | None:
    """A histogram quantile from cumulative buckets (the upper bound of the bucket)."""
    buckets = sorted(
        (float(labels["le"]), value) for labels, value in samples.get(f"{name}_bucket", [])
    )
    count = buckets[-1][1] if buckets else 0
    if not count:
        return None
    return next(bound for bound, value in buckets if value >= q * count)


def summary(samples: Samples, sandbox: SandboxProcess, events_per_s: float) -> str:
    """One screen of what is going on."""
    state: dict[str, Any] = sandbox.state()
    stats: dict[str, Any] = sandbox.stats()
    names = {str(item["id"]): item["name"] for item in state["lists"]}
    members = {names.get(k, k): len(v) for k, v in state["members"].items()}
    p50 = quantile(samples, "marketo_worker_end_to_end_latency_seconds", 0.5) or 0.0
    p99 = quantile(samples, "marketo_worker_end_to_end_latency_seconds", 0.99) or 0.0
    buffered = total(samples, "marketo_worker_buffered_changes")
    dead = total(samples, "marketo_worker_dead_letters_total")
    rejected = total(samples, "marketo_worker_rejections_total")
    lines = [
        f"events/s {events_per_s:8.0f}   buffered {buffered:7.0f}   dead letters {dead:5.0f}"
        f"   rejections {rejected:5.0f}",
        f"Marketo calls in the last window {stats['window_calls']} (budget 50 per 20 s), "
        f"quota used today {stats['quota_used']}, latency p50 {p50:.2f} s, p99 {p99:.2f} s",
        *(f"  {name:<22} {count:6d} members" for name, count in sorted(members.items())),
    ]
    return "\n".join(lines)


def prepare_sandbox_state(path: Path) -> None:
    """The config names one list by id (1064, "Churn risk"): make it exist, as in Marketo."""
    now_s = time.time()
    churn = {
        "id": 1064,
        "name": "Churn risk",
        "description": "made by the demo",
        "folderId": 1001,
        "createdAt": now_s,
        "updatedAt": now_s,
    }
    path.write_bytes(orjson.dumps({"lists": [churn], "members": {"1064": []}, "nextListId": 1065}))


def run(duration_s: float | None, rate: int, profiles: int, work: Path) -> int:
    children = Children()
    broker = LocalBroker(BrokerLayout(work / "kafka", free_port(), free_port()))
    stopping: list[bool] = []
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    print(f"starting a local Kafka broker in {work / 'kafka'} ...", flush=True)
    bootstrap = broker.start()
    print(f"Kafka ready at {bootstrap}", flush=True)
    state_file = work / "sandbox-state.json"
    prepare_sandbox_state(state_file)
    sandbox = SandboxProcess(
        "--state-file", str(state_file), client_id=CLIENT_ID, client_secret=CLIENT_SECRET
    )
    try:
        create_topic_if_missing({"bootstrap.servers": bootstrap}, "profile-updates", 4)
        with sandbox:
            print(
                f"Marketo sandbox at {sandbox.url} (state: {sandbox.url}/_sandbox/state)",
                flush=True,
            )
            metrics_port = free_port()
            env = {
                **os.environ,
                "MARKETO_CLIENT_ID": CLIENT_ID,
                "MARKETO_CLIENT_SECRET": CLIENT_SECRET,
                "WORKER_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
                "WORKER_MARKETO__BASE_URL": sandbox.url,
                "WORKER_TELEMETRY__METRICS_PORT": str(metrics_port),
                "WORKER_TELEMETRY__LOG_FORMAT": "json",
                # the sandbox is local and quick: no need to wait 31 s for a previous owner
                "WORKER_FLUSH__HANDOVER_S": "2",
            }
            py = sys.executable
            children.start(
                "worker", [py, "-m", "worker", "run", str(CONFIG)], env, work / "worker.log"
            )
            children.start(
                "generator",
                [
                    py,
                    "-m",
                    "worker.generator",
                    str(CONFIG),
                    "--rate",
                    str(rate),
                    "--profiles",
                    str(profiles),
                ],
                env,
                work / "generator.log",
            )
            start_prometheus(children, metrics_port, work, env)
            print(
                f"worker metrics: http://127.0.0.1:{metrics_port}/metrics (Ctrl-C stops all)",
                flush=True,
            )
            watch(lambda: bool(stopping), duration_s, metrics_port, sandbox)
            children.stop()
    finally:
        children.stop()
        broker.stop()
        print("demo stopped; nothing left running", flush=True)
    return 0


def start_prometheus(
    children: Children, metrics_port: int, work: Path, env: dict[str, str]
) -> None:
    """Prometheus scraping the worker, when Debian's package is installed."""
    if shutil.which("prometheus") is None:
        print("prometheus not installed (apt-get install prometheus): skipping it", flush=True)
        return
    port = free_port()
    config = work / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 5s}\n"
        "scrape_configs:\n  - job_name: marketo-audience-worker\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{metrics_port}']}}]\n"
    )
    cmd = [
        "prometheus",
        f"--config.file={config}",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--storage.tsdb.path={work / 'prometheus'}",
    ]
    children.start("prometheus", cmd, env, work / "prometheus.log")
    print(
        f"Prometheus: http://127.0.0.1:{port}/graph?g0.expr=marketo_worker_events_total", flush=True
    )


def watch(
    stopped: Callable[[], bool], duration_s: float | None, port: int, sandbox: SandboxProcess
) -> None:
    """Print the summary every 3 s until Ctrl-C or the duration."""
    started = last_t = time.monotonic()
    last_events = 0.0
    while not stopped() and (duration_s is None or time.monotonic() - started < duration_s):
        time.sleep(3)  # a display refresh period, not a synchronisation
        samples = scrape(port)
        now, events = time.monotonic(), total(samples, "marketo_worker_events_total")
        rate = (events - last_events) / (now - last_t)
        last_t, last_events = now, events
        print(f"\n--- {now - started:5.0f} s ---\n{summary(samples, sandbox, rate)}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """`python -m worker.demo [--duration-s S] [--rate N] [--profiles P]`."""
    parser = argparse.ArgumentParser(prog="python -m worker.demo", description=__doc__)
    parser.add_argument("--duration-s", type=float, help="stop after this long (default: Ctrl-C)")
    parser.add_argument("--rate", type=int, default=100, help="generated events per second")
    parser.add_argument("--profiles", type=int, default=5_000, help="distinct profiles")
    parser.add_argument(
        "--work-dir", type=Path, help="where logs and data go (default: a temp dir)"
    )
    args = parser.parse_args(argv)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="marketo-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    return run(args.duration_s, args.rate, args.profiles, work)


if __name__ == "__main__":
    raise SystemExit(main())
