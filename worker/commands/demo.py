"""`make demo`: a local broker, the Marketo sandbox, the worker, a generator and Prometheus.

Everything runs on 127.0.0.1 as child processes of this one, each in its own session, so a
terminal's Ctrl-C reaches only the demo; it then stops them by pid in order (generator, worker,
Prometheus, sandbox, broker: SIGTERM, a bounded wait, SIGKILL) and exits 0. A live summary of
recent figures prints every few seconds; Ctrl-C, SIGTERM, --duration-s or a closed stdout
(`make demo | tee` interrupted) ends it.
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
from contextlib import ExitStack
from pathlib import Path
from types import FrameType
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from worker.config_file import load_settings
from worker.errors import ConfigError, LocalBrokerError
from worker.kafka.localbroker import BrokerLayout, LocalBroker, free_port
from worker.kafka.topics import create_topic_if_missing
from worker.sandbox.process import SandboxProcess, SandboxStartError
from worker.settings import Settings
from worker.telemetry.window import RecentSamples, Samples, total

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "local" / "config.yaml"
CLIENT_ID, CLIENT_SECRET = "demo-client", "demo-secret"
REFRESH_S = 3.0  # how often the summary prints
SPAN_S = 30.0  # the figures are over this many recent seconds
STOP_TIMEOUT_S = 40.0  # above the worker's flush.shutdown_deadline_s (30 s): it drains first
LATENCY = "marketo_worker_end_to_end_latency_seconds"


class Stop:
    """Whether the demo should stop, and why: a signal, the duration, or a closed stdout."""

    def __init__(self) -> None:
        self.reason = ""

    def __bool__(self) -> bool:
        return bool(self.reason)

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.reason = self.reason or signal.Signals(signum).name


class Console:
    """Prints to stdout; once stdout is gone (the `tee` it fed was killed) asks the demo to stop."""

    def __init__(self, stop: Stop) -> None:
        self.stop = stop
        self.closed = False

    def say(self, text: str) -> None:
        if self.closed:
            return
        try:
            print(text, flush=True)
        except BrokenPipeError:
            self.closed = True
            self.stop.reason = self.stop.reason or "stdout closed"
            # the interpreter flushes stdout at exit: point it at /dev/null so that stays quiet
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


class Children:
    """What the demo started, each stopped in reverse order of start; pids listed in `pids`."""

    def __init__(self, stack: ExitStack, pid_file: Path, console: Console) -> None:
        self.stack = stack
        self.pid_file = pid_file
        self.console = console

    def started(
        self, name: str, proc: subprocess.Popen[bytes], stop: Callable[[], object], log: Path
    ) -> None:
        """Record a started child and how to stop it (by pid, with a bounded wait)."""
        with self.pid_file.open("a") as pids:
            pids.write(f"{name} {proc.pid}\n")
        self.console.say(f"started {name} (pid {proc.pid}, log {log})")

        def stopped() -> None:
            if proc.poll() is not None:  # it did not wait for its turn: its log says why
                self.console.say(f"{name} had exited already (pid {proc.pid}, exit {proc.poll()})")
                return
            stop()
            self.console.say(f"stopped {name} (pid {proc.pid}, exit {proc.returncode})")

        self.stack.callback(stopped)

    def start(self, name: str, cmd: list[str], env: dict[str, str], log: Path) -> None:
        with log.open("ab") as out:
            proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # the terminal's Ctrl-C is the demo's alone
            )
        self.started(name, proc, lambda: terminate(proc), log)


def terminate(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, wait up to STOP_TIMEOUT_S, then SIGKILL."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def scrape(port: int) -> Samples:
    """The worker's metrics, by sample name ({} while it does not serve them)."""
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


def budget_label(settings: Settings) -> str:
    """The budget the worker really runs with (the config file and WORKER_* variables)."""
    budget = settings.marketo.budget
    return f"budget {budget.calls_per_window} per {budget.window_s:g} s"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def summary(
    recent: RecentSamples,
    samples: Samples,
    sandbox: tuple[dict[str, Any], dict[str, Any]] | None,
    settings: Settings,
) -> str:
    """One screen of what is going on now: figures over the last SPAN_S seconds."""
    if sandbox is None:
        return "the Marketo sandbox does not answer (see sandbox-state.json and its log)"
    state, stats = sandbox
    names = {str(item["id"]): str(item["name"]) for item in state["lists"]}
    members = {names.get(k, k): len(v) for k, v in state["members"].items()}
    wanted = [a.list_ref.name for a in settings.audiences if a.list_ref.name is not None]
    calls = (
        f"Marketo calls in the last window {stats['window_calls']} ({budget_label(settings)}), "
        f"quota used today {stats['quota_used']}"
    )
    members_lines = [f"  {name:<22} {count:6d} members" for name, count in sorted(members.items())]
    if not samples:
        found = len(set(wanted) & set(names.values()))
        head = (
            f"worker starting: checking Marketo and creating lists ({found} of {len(wanted)} "
            "found); events wait in Kafka"
        )
        return "\n".join([head, calls, *members_lines])
    if total(samples, "marketo_worker_ready") < 1:
        head = "worker starting: waiting for its partitions and their state; events wait in Kafka"
        return "\n".join([head, calls, *members_lines])
    rate = recent.rate("marketo_worker_events_total")
    p50, p99 = recent.quantile(LATENCY, 0.5), recent.quantile(LATENCY, 0.99)
    lines = [
        f"events/s {'-' if rate is None else f'{rate:.0f}'} (last {SPAN_S:.0f} s)   "
        f"buffered {total(samples, 'marketo_worker_buffered_changes'):.0f}   "
        f"dead letters {total(samples, 'marketo_worker_dead_letters_total'):.0f}   "
        f"rejections {total(samples, 'marketo_worker_rejections_total'):.0f}",
        f"{calls}, latency p50 {_seconds(p50)}, p99 {_seconds(p99)} (last {SPAN_S:.0f} s)",
        *members_lines,
    ]
    return "\n".join(lines)


def sandbox_view(sandbox: SandboxProcess) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The sandbox's state and stats, or None when it does not answer."""
    try:
        return sandbox.state(), sandbox.stats()
    except OSError:
        return None


def child_env(bootstrap: str, sandbox_url: str, metrics_port: int) -> dict[str, str]:
    return {
        **os.environ,
        "MARKETO_CLIENT_ID": CLIENT_ID,
        "MARKETO_CLIENT_SECRET": CLIENT_SECRET,
        "WORKER_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "WORKER_MARKETO__BASE_URL": sandbox_url,
        "WORKER_TELEMETRY__METRICS_PORT": str(metrics_port),
        "WORKER_TELEMETRY__LOG_FORMAT": "json",
        # the sandbox is local and quick: no need to wait 31 s for a previous owner
        "WORKER_FLUSH__HANDOVER_S": "2",
    }


def run(duration_s: float | None, rate: int, profiles: int, work: Path) -> int:
    """Start everything, show the summary until told to stop, stop everything; exit code."""
    stop = Stop()
    signal.signal(signal.SIGINT, stop.on_signal)
    signal.signal(signal.SIGTERM, stop.on_signal)
    console = Console(stop)
    console.say(f"work folder: {work} (every process's log; delete it when done)")
    code = 0
    try:
        with ExitStack() as stack:
            children = Children(stack, work / "pids", console)
            try:
                start_all(children, stop, console, work, rate, profiles, duration_s)
            except (ConfigError, LocalBrokerError, SandboxStartError) as exc:
                if not stop:  # a failure, not the consequence of a Ctrl-C during start-up
                    console.say(f"error: {exc}")
                    code = 1
            console.say(f"stopping ({stop.reason or 'start-up failed'}) ...")
    finally:
        console.say("demo stopped; nothing left running")
        console.say(f"work folder: {work}")
    return code


def start_all(
    children: Children,
    stop: Stop,
    console: Console,
    work: Path,
    rate: int,
    profiles: int,
    duration_s: float | None,
) -> None:
    """Start the children in order, giving up as soon as a stop is asked for; then watch."""
    broker = LocalBroker(BrokerLayout(work / "kafka", free_port(), free_port()))
    console.say(f"starting a local Kafka broker in {work / 'kafka'} ...")
    bootstrap = broker.start(cancelled=lambda: bool(stop))
    assert broker.process is not None
    children.started("broker", broker.process, broker.stop, broker.layout.log_file)
    console.say(f"Kafka ready at {bootstrap}")
    create_topic_if_missing({"bootstrap.servers": bootstrap}, "profile-updates", 4)
    sandbox = SandboxProcess(
        "--state-file",
        str(work / "sandbox-state.json"),
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
    )
    children.stack.enter_context(sandbox)
    assert sandbox.popen is not None
    children.started("sandbox", sandbox.popen, sandbox.stop, work)  # stop: idempotent
    console.say(f"Marketo sandbox at {sandbox.url} (state: {sandbox.url}/_sandbox/state)")
    metrics_port = free_port()
    env = child_env(bootstrap, sandbox.url, metrics_port)
    settings = load_settings(CONFIG, env)  # what the worker will run with
    py = sys.executable
    start_prometheus(children, console, metrics_port, work, env)
    if stop:
        return
    children.start("worker", [py, "-m", "worker", "run", str(CONFIG)], env, work / "worker.log")
    generator = [py, "-m", "worker", "generate", str(CONFIG), "--rate", str(rate)]
    generator += ["--profiles", str(profiles)]
    children.start("generator", generator, env, work / "generator.log")
    console.say(f"worker metrics: http://127.0.0.1:{metrics_port}/metrics")
    console.say("demo running (Ctrl-C stops it)")
    watch(stop, console, duration_s, metrics_port, sandbox, settings)


def start_prometheus(
    children: Children, console: Console, metrics_port: int, work: Path, env: dict[str, str]
) -> None:
    """Prometheus scraping the worker, when Debian's package is installed."""
    if shutil.which("prometheus") is None:
        console.say("prometheus not installed (apt-get install prometheus): skipping it")
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
    console.say(f"Prometheus: http://127.0.0.1:{port}/graph?g0.expr=marketo_worker_events_total")


def watch(
    stop: Stop,
    console: Console,
    duration_s: float | None,
    port: int,
    sandbox: SandboxProcess,
    settings: Settings,
) -> None:
    """Print the summary every REFRESH_S seconds until a stop or the duration."""
    started = time.monotonic()
    recent = RecentSamples(SPAN_S)
    while not stop:
        next_s = time.monotonic() + REFRESH_S
        while not stop and time.monotonic() < next_s:
            time.sleep(0.1)  # a display period; short steps so that a stop is seen at once
        now = time.monotonic()
        if duration_s is not None and now - started >= duration_s:
            stop.reason = stop.reason or f"--duration-s {duration_s:g}"
        if stop:
            return
        samples = scrape(port)
        recent.add(now, samples)
        text = summary(recent, samples, sandbox_view(sandbox), settings)
        console.say(f"\n--- {now - started:5.0f} s ---\n{text}")


def main(argv: list[str] | None = None) -> int:
    """Parse `[--duration-s S] [--rate N] [--profiles P] [--work-dir DIR]`; run the demo."""
    parser = argparse.ArgumentParser(prog="python -m worker.commands.demo", description=__doc__)
    parser.add_argument("--duration-s", type=float, help="stop after this long (default: Ctrl-C)")
    parser.add_argument("--rate", type=int, default=100, help="generated events per second")
    parser.add_argument("--profiles", type=int, default=5_000, help="distinct profiles")
    parser.add_argument(
        "--work-dir",
        type=Path,
        help="where logs and data go (default: a new marketo-demo-* temp dir)",
    )
    args = parser.parse_args(argv)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="marketo-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    return run(args.duration_s, args.rate, args.profiles, work)


if __name__ == "__main__":
    raise SystemExit(main())
