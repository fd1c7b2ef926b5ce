"""A real Prometheus (Debian's package) against deploy/prometheus: the alert rules pass promtool's
checks and unit tests, and Prometheus scrapes a running worker and finds its series."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.harness import WorkerProcess, event, new_input_topic, produce, write_config
from tests.kafka_support import wait_for
from worker.kafka.localbroker import free_port
from worker.sandbox.process import SandboxProcess

pytestmark = pytest.mark.integration
PROMETHEUS_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
JOB = "marketo-audience-worker"  # alerts.yaml's MarketoWorkerDown names this job
AUDIENCES = [{"id": "fr", "name": "FR", "rule": 'country == "FR"', "list": {"name": "FR"}}]


def tool(name: str) -> str:
    """The path of a Prometheus binary, or skip: CI installs Debian's `prometheus` package."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not on PATH (apt-get install prometheus provides it)")
    return path


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run promtool in deploy/prometheus, where the rule files are named relative to."""
    return subprocess.run(
        [tool("promtool"), *args],
        cwd=PROMETHEUS_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_alert_rules_pass_promtool_check() -> None:
    """`promtool check rules` accepts alerts.yaml (syntax, PromQL, templates)."""
    result = promtool("check", "rules", "alerts.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_unit_tests_pass() -> None:
    """`promtool test rules` passes: each alert fires when it should and not in a near miss."""
    result = promtool("test", "rules", "alerts_test.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus-compose.yml"])
def test_scrape_configs_pass_promtool_check(config: str) -> None:
    """The demo's and compose's Prometheus configs are valid and load the alert rules."""
    result = promtool("check", "config", config)
    assert result.returncode == 0, result.stdout + result.stderr


def query(prom_port: int, path: str, **params: str) -> Any:
    """GET a Prometheus HTTP API path; its `data`, or None while Prometheus is not answering."""
    url = f"http://127.0.0.1:{prom_port}{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.loads(response.read())
    except (urllib.error.URLError, ConnectionError):
        return None
    return body["data"] if body.get("status") == "success" else None


@contextmanager
def prometheus(tmp_path: Path, target: str) -> Iterator[int]:
    """Run Prometheus scraping `target` every second with the alert rules; yield its port."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(PROMETHEUS_DIR / "alerts.yaml")],
        "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": [target]}]}],
    }
    config_file = tmp_path / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            tool("prometheus"),
            f"--config.file={config_file}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()


def worker_port(worker: WorkerProcess) -> int | None:
    """The metrics port the worker logged in `worker.started` (it binds port 0)."""
    return worker.metrics_port()


def events_series(prom_port: int, port: int) -> list[Any]:
    """The events_total series Prometheus holds for the worker on `port`."""
    data = query(prom_port, "/api/v1/query", query="marketo_worker_events_total")
    instance = f"127.0.0.1:{port}"
    return [
        s
        for s in (data or {}).get("result", [])
        if s["metric"].get("instance") == instance and s["metric"].get("job") == JOB
    ]


def rule_health(prom_port: int) -> dict[str, str]:
    """Each loaded alert's last evaluation: "ok", "unknown" (not evaluated yet) or its error."""
    data = query(prom_port, "/api/v1/rules", type="alert")
    return {
        rule["name"]: rule["health"] if rule["health"] != "err" else rule.get("lastError", "err")
        for group in (data or {}).get("groups", [])
        for rule in group["rules"]
    }


def alert_names() -> set[str]:
    """The alerts alerts.yaml declares."""
    groups = yaml.safe_load((PROMETHEUS_DIR / "alerts.yaml").read_text())["groups"]
    return {rule["alert"] for group in groups for rule in group["rules"]}


def events_total(prom_port: int, worker_port: int) -> float:
    """The sum of the worker's events_total series, as Prometheus has scraped them."""
    return sum(float(series["value"][1]) for series in events_series(prom_port, worker_port))


def test_prometheus_scrapes_a_running_worker(kafka_bootstrap: str, tmp_path: Path) -> None:
    """Prometheus scraping a live worker returns its events_total series, and every alert rule
    evaluates without error on the worker's real series."""
    tool("prometheus")  # skip before starting anything
    topic = new_input_topic(kafka_bootstrap, partitions=2)
    with SandboxProcess("--no-limits") as sandbox:
        config = write_config(tmp_path / "c.yaml", kafka_bootstrap, sandbox.url, topic, AUDIENCES)
        worker = WorkerProcess(config, tmp_path / "w.log")
        try:
            wait_for(lambda: worker_port(worker) is not None, 60, "worker.started")
            port = worker_port(worker)
            assert port is not None
            ann = {"email": "ann@example.com"}
            produce(kafka_bootstrap, topic, [event("p-1", 1, identities=ann, attributes={})])
            with prometheus(tmp_path, f"127.0.0.1:{port}") as prom_port:
                # every outcome's series exists from the start (at 0): wait for the event
                wait_for(lambda: events_total(prom_port, port) >= 1, 90, "the worker's series")
                assert events_total(prom_port, port) == 1
                health: dict[str, str] = {}

                def evaluated() -> bool:
                    nonlocal health
                    health = rule_health(prom_port)
                    return set(health) == alert_names() and "unknown" not in health.values()

                wait_for(evaluated, 60, "every alert rule to be evaluated")
                assert {name: h for name, h in health.items() if h != "ok"} == {}
        finally:
            assert worker.stop() == 0
