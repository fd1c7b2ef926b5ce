"""Security checked: the Marketo client secret and access tokens never leave the worker
through its output, metrics or Kafka output topics, and emails never appear in clear in logs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterable
from pathlib import Path

import orjson
import pytest
import yaml

from tests.integration.harness import (
    WorkerProcess,
    event,
    metric,
    metrics_text,
    new_input_topic,
    produce,
    read_topic,
    wait_for_lists,
    write_config,
)
from tests.kafka_support import wait_for
from worker.sandbox.process import DEFAULT_CLIENT_ID, SandboxProcess

pytestmark = pytest.mark.integration
AUDIENCES = [{"id": "all", "name": "All", "rule": "exists(country)", "list": {"name": "All"}}]
# distinctive per run, so a hit in any output can only be a leak of this very value
SECRET = f"zq-secret-{uuid.uuid4().hex}"
# the sandbox mints tokens as "<uuid4>:sb": any such string in an output is a token leak
TOKEN_SHAPE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:sb")
PERSON = {"country": "FR", "firstName": "A", "lastName": "B"}


def person(profile: str, ts: int, email: str, **attributes: object) -> tuple[str, bytes]:
    """A valid event for someone in the audience, with `email` as identity."""
    return event(profile, ts, identities={"email": email}, attributes={**PERSON, **attributes})


def leaks(text: str, needles: Iterable[str]) -> list[str]:
    """The needles found in `text` (case-insensitive), plus anything shaped like a token."""
    lowered = text.lower()
    found = [needle for needle in needles if needle.lower() in lowered]
    return found + TOKEN_SHAPE.findall(text)


def token_refreshes(worker: WorkerProcess) -> int:
    """How many times the worker fetched a token."""
    return sum(1 for e in worker.logs() if e.get("event") == "marketo.token_refreshed")


def _scenario_config(path: Path, bootstrap: str, url: str, topic: str) -> Path:
    write_config(path, bootstrap, url, topic, AUDIENCES)
    config = yaml.safe_load(path.read_text())
    config["mapping"].append({"from": "score", "to": "leadScore"})  # "lots" is refused: 1003
    path.write_text(yaml.safe_dump(config))
    return path


def _renewed(sandbox: SandboxProcess, seen: set[str], first: str) -> bool:
    token = sandbox.token()  # the sandbox hands out its current token: the worker's one too
    seen.add(token)
    return token != first


def test_no_secret_token_or_email_leaks_through_a_full_run(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Token refreshes, a rejection, a dead letter and SIGTERM: no output carries a secret."""
    topic = new_input_topic(kafka_bootstrap, partitions=1)
    first_wave = [person(f"p-{i}", 10 + i, f"leak-a{i}@example.com") for i in range(5)]
    rejected = person("p-bad", 1, "leak-bad@example.com", score="lots")
    poison = ("p-poison", b'{"profile_id": "p-poison", "email": "leak-poison@example.com", oops')
    second_wave = [person(f"q-{i}", 100 + i, f"leak-b{i}@example.com") for i in range(5)]
    emails = [f"leak-{w}{i}@example.com" for w in "ab" for i in range(5)]
    emails += ["leak-bad@example.com", "leak-poison@example.com"]
    tokens: set[str] = set()
    args = ("--no-limits", "--token-ttl-s", "2")
    with SandboxProcess(*args, client_secret=SECRET) as sandbox:
        config = _scenario_config(tmp_path / "c.yaml", kafka_bootstrap, sandbox.url, topic)
        worker = WorkerProcess(config, tmp_path / "w.log", client_secret=SECRET)
        try:
            produce(kafka_bootstrap, topic, [rejected, poison, *first_wave])
            wait_for_lists(sandbox, {"All": set(emails[:5])}, 90)
            first = sandbox.token()
            tokens.add(first)
            wait_for(lambda: _renewed(sandbox, tokens, first), 30, "the first token to expire")
            produce(kafka_bootstrap, topic, second_wave)
            wait_for_lists(sandbox, {"All": set(emails[:10])}, 90)
            wait_for(lambda: token_refreshes(worker) >= 2, 30, "a token refresh by the worker")
            wait_for(
                lambda: (
                    metric(worker, "marketo_worker_rejections_total") == 1
                    and metric(worker, "marketo_worker_dead_letters_total") == 1
                ),
                30,
                "the rejection and the dead letter to be counted",
            )
            scraped = metrics_text(worker)
        finally:
            assert worker.stop() == 0
    output = worker.log.read_text(errors="replace")
    assert "worker.stopped" in output  # the scan covers the whole life, shutdown included
    assert leaks(output, [SECRET, *tokens, *emails]) == []
    assert leaks(scraped, [SECRET, *tokens, *emails]) == []
    for name in (f"{topic}.dlq", f"{topic}.rejections"):
        (record,) = read_topic(kafka_bootstrap, name, 1)
        headers = orjson.dumps([(k, v.decode(errors="replace")) for k, v in record.headers() or []])
        published = (record.value() or b"").decode(errors="replace") + headers.decode()
        assert leaks(published, [SECRET, *tokens]) == [], name


def _bad_config(path: Path) -> Path:
    """A config with the secret in the file (refused) and an unknown key."""
    config = {
        "marketo": {"base_url": "http://127.0.0.1:9", "client_secret": SECRET, "colour": "red"},
        "audiences": AUDIENCES,
    }
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize("command", [["validate"], ["validate", "--online"], ["run"]])
def test_config_errors_never_echo_the_secret(tmp_path: Path, command: list[str]) -> None:
    """A bad config, with the secret in the file and the environment, fails without showing it."""
    env = {
        **os.environ,
        "MARKETO_CLIENT_ID": DEFAULT_CLIENT_ID,
        "MARKETO_CLIENT_SECRET": SECRET,
        "WORKER_MARKETO__CLIENT_SECRET": SECRET,
    }
    config = _bad_config(tmp_path / "bad.yaml")
    done = subprocess.run(
        [sys.executable, "-m", "worker", *command, str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 2
    assert "marketo.client_secret: credentials do not belong in the config file" in output
    assert SECRET not in output


def test_refused_marketo_credentials_stop_the_worker_without_echoing_them(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A wrong client secret ends `run` non-zero, naming the credentials but not their value."""
    topic = new_input_topic(kafka_bootstrap, partitions=1)
    wrong = f"zq-wrong-{uuid.uuid4().hex}"
    with SandboxProcess("--no-limits", client_secret=SECRET) as sandbox:
        config = write_config(tmp_path / "c.yaml", kafka_bootstrap, sandbox.url, topic, AUDIENCES)
        worker = WorkerProcess(config, tmp_path / "w.log", client_secret=wrong)
        try:
            code = worker.proc.wait(60)
        finally:
            worker.stop()
    output = worker.log.read_text(errors="replace")
    assert code != 0
    assert "client credentials" in output
    assert leaks(output, [SECRET, wrong]) == []
