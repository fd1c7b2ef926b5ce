"""A start-up that fails or is stopped closes what it opened: the Marketo client and the port.

Kafka's part (`ensure_topics`) and the Marketo client are replaced by fakes; the port is real.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
import yaml

from worker import app
from worker.config_file import load_settings
from worker.core.usage import DailyUsage
from worker.errors import ConfigError, RequestRejected
from worker.kafka.localbroker import free_port
from worker.settings import Settings

CREDENTIALS = {"MARKETO_CLIENT_ID": "the-client", "MARKETO_CLIENT_SECRET": "s3cr3t-value"}


class FakeClient:
    """The Marketo client as start-up meets it first: the usage call, then close."""

    def __init__(self, stop: asyncio.Event) -> None:
        self.stop = stop
        self.closed = False

    async def usage(self) -> DailyUsage:
        """Overridden by each test's behaviour."""
        raise NotImplementedError

    def bulk(self) -> None:
        """No bulk client: start-up fails or stops before it is used."""

    async def close(self) -> None:
        """Remember the close."""
        self.closed = True


class RefusingClient(FakeClient):
    async def usage(self) -> DailyUsage:
        """Marketo refuses the credentials."""
        raise RequestRejected("http_401", "refused")


class StoppedClient(FakeClient):
    async def usage(self) -> DailyUsage:
        """SIGTERM comes while the call waits for a budget slot that never comes."""
        self.stop.set()
        await asyncio.Event().wait()
        return DailyUsage(0, 0)


def settings_on(tmp_path: Path, port: int) -> Settings:
    config = {
        "kafka": {"bootstrap_servers": "127.0.0.1:9", "topic": "in"},
        "marketo": {"base_url": "https://123-ABC-456.mktorest.com"},
        "mapping": [{"from": n, "to": n} for n in ("firstName", "lastName")],
        "audiences": [{"id": "fr", "name": "F", "rule": "exists(x)", "list": {"name": "F"}}],
        "telemetry": {"metrics_port": port},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return load_settings(path, CREDENTIALS)


def port_is_free(port: int) -> bool:
    try:
        socket.create_server(("127.0.0.1", port)).close()
    except OSError:
        return False
    return True


def fake_edges(monkeypatch: pytest.MonkeyPatch, client_type: type[FakeClient]) -> FakeClient:
    """Replace Kafka's topic check and the Marketo client; return the client `run` will use."""
    stop = asyncio.Event()
    client = client_type(stop)
    monkeypatch.setattr(app, "pace_collector", lambda: None)
    monkeypatch.setattr(app, "handle_stop_signals", lambda: stop)
    monkeypatch.setattr(app, "ensure_topics", lambda *_: 1)
    monkeypatch.setattr(app, "connect", lambda *_, **__: client)
    return client


async def test_a_refused_start_up_closes_the_client_and_the_port(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Marketo refusing the credentials is a ConfigError; the client and the port are closed."""
    port = free_port()
    client = fake_edges(monkeypatch, RefusingClient)
    with pytest.raises(ConfigError, match="MARKETO_CLIENT_"):
        await app.run(settings_on(tmp_path, port))
    assert client.closed
    assert port_is_free(port)


async def test_a_stop_during_start_up_returns_0_and_closes_everything(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """SIGTERM while start-up waits ends `run` with 0, the client and the port closed."""
    port = free_port()
    client = fake_edges(monkeypatch, StoppedClient)
    async with asyncio.timeout(30):  # a deadline, so that a start-up deaf to the stop fails
        assert await app.run(settings_on(tmp_path, port)) == 0
    assert client.closed
    assert port_is_free(port)
