"""The metrics port: `/metrics` (Prometheus), `/healthz` (the loop is alive), `/readyz`.

Ready means partitions are assigned, their state is restored, none is stood down (left to a
replica with newer audience definitions, worker.core.activation) and a Marketo token was
obtained.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from worker.errors import ConfigError

Probe = Callable[[], tuple[bool, str]]


async def start_http(
    registry: CollectorRegistry, host: str, port: int, alive: Probe, ready: Probe
) -> tuple[web.AppRunner, int]:
    """Serve the three endpoints; return the runner (to clean up) and the bound port.

    The port is bound first: a port in use is a ConfigError naming it, with nothing opened.
    """
    sock = bind(host, port)  # bound here so that port 0 tells its choice

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    def probe(check: Probe) -> Callable[[web.Request], object]:
        async def handler(_: web.Request) -> web.Response:
            ok, detail = check()
            return web.Response(status=200 if ok else 503, text=detail + "\n")

        return handler

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", probe(alive))  # type: ignore[arg-type]
    app.router.add_get("/readyz", probe(ready))  # type: ignore[arg-type]
    runner = web.AppRunner(app, access_log=None)
    try:
        await runner.setup()
        await web.SockSite(runner, sock).start()
    except BaseException:
        await runner.cleanup()
        sock.close()
        raise
    return runner, int(sock.getsockname()[1])


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port; a ConfigError naming the keys when that is refused."""
    try:
        return socket.create_server((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"telemetry.metrics_port: {host}:{port} is in use") from None
        raise ConfigError(
            f"telemetry.metrics_host/metrics_port: cannot listen on {host}:{port}: {exc.strerror}"
        ) from None
