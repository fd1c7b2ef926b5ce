"""Start-up gives way to a stop and says what it waits for; a busy metrics port names itself."""

from __future__ import annotations

import asyncio
import socket

import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from worker.errors import ConfigError
from worker.startup.progress import StartUp
from worker.telemetry.http import start_http


async def test_a_stop_cancels_start_up_and_names_its_phase() -> None:
    """`unless_stopped` returns None once stop is set, cancels the work and logs the phase."""
    progress, stop = StartUp(), asyncio.Event()
    cancelled = asyncio.Event()

    async def slow() -> int:
        progress.enter("creating lists 3/20")
        stop.set()
        try:
            await asyncio.Event().wait()  # a budget slot that never comes
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return 1

    with capture_logs() as logs:
        assert await progress.unless_stopped(slow(), stop) is None
    assert cancelled.is_set()
    assert logs == [
        {"event": "worker.stopping", "phase": "creating lists 3/20", "log_level": "info"}
    ]


async def test_start_up_that_ends_returns_its_result() -> None:
    """Without a stop, the work's result comes back, and later budget waits are not logged."""
    progress = StartUp()

    async def quick() -> int:
        return 7

    assert await progress.unless_stopped(quick(), asyncio.Event()) == 7
    with capture_logs() as logs:
        progress.budget_wait(3.0)
    assert logs == []


async def test_a_start_up_error_propagates() -> None:
    """A ConfigError of start-up reaches the caller (exit 2), not swallowed as a stop."""
    progress = StartUp()

    async def failing() -> int:
        raise ConfigError("marketo.list_folder: folder 'X' not found")

    with pytest.raises(ConfigError, match="list_folder"):
        await progress.unless_stopped(failing(), asyncio.Event())


def test_a_budget_wait_during_start_up_is_logged_with_the_phase() -> None:
    """`startup.waiting` says for what, how long and in which phase."""
    progress = StartUp()
    progress.enter("finding lists 2/20")
    with capture_logs() as logs:
        progress.budget_wait(19.96)
    assert logs == [
        {
            "event": "startup.waiting",
            "for": "budget",
            "seconds": 20.0,
            "phase": "finding lists 2/20",
            "log_level": "info",
        }
    ]


def test_a_wait_too_short_to_notice_is_not_logged() -> None:
    """A budget wait under a tenth of a second explains no delay: no `startup.waiting` line."""
    progress = StartUp()
    with capture_logs() as logs:
        progress.budget_wait(0.04)
    assert logs == []


async def test_a_metrics_port_in_use_is_a_config_error_naming_it() -> None:
    """Binding a port another socket listens on raises a ConfigError with key and address."""
    with socket.create_server(("127.0.0.1", 0)) as held:
        port = int(held.getsockname()[1])
        with pytest.raises(
            ConfigError, match=rf"telemetry.metrics_port: 127.0.0.1:{port} is in use"
        ):
            await start_http(
                CollectorRegistry(), "127.0.0.1", port, lambda: (True, ""), lambda: (True, "")
            )
