"""`SandboxProcess`: run the sandbox as a subprocess for tests, benchmarks and the demo.

Standard library only (urllib), so callers need no HTTP client of their own.
"""

import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from types import TracebackType
from typing import IO, Self

DEFAULT_CLIENT_ID = "sandbox-client"
DEFAULT_CLIENT_SECRET = "sandbox-secret"  # noqa: S105 - a local test credential
_READY_PREFIX = "listening on "


class SandboxStartError(RuntimeError):
    """The sandbox process died or did not announce its address in time."""


class SandboxProcess:
    """`with SandboxProcess("--no-limits") as sb:` starts the sandbox and stops it on exit."""

    def __init__(
        self,
        *args: str,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        start_timeout_s: float = 15.0,
        stop_timeout_s: float = 10.0,
    ) -> None:
        self.args = args
        self.client_id = client_id
        self.client_secret = client_secret
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.url = ""
        self.popen: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    def __enter__(self) -> Self:
        self._stderr = tempfile.TemporaryFile()
        env = {**os.environ, "MARKETO_CLIENT_SECRET": self.client_secret}
        command = [sys.executable, "-m", "worker.sandbox", "--port", "0"]
        command += ["--client-id", self.client_id, *self.args]
        self.popen = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
            # a terminal's Ctrl-C reaches only its parent, which stops it by pid when it is done
            # with it (otherwise it dies before the worker that still needs it)
            start_new_session=True,
        )
        try:
            self.url = self._read_ready_line()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _read_ready_line(self) -> str:
        assert self.popen is not None
        assert self.popen.stdout is not None
        fd = self.popen.stdout.fileno()
        deadline = time.monotonic() + self.start_timeout_s
        buffer = b""
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in buffer:
                remaining_s = deadline - time.monotonic()
                if remaining_s <= 0:
                    raise SandboxStartError(self._failure("did not start in time"))
                if not selector.select(remaining_s):
                    continue
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise SandboxStartError(self._failure("exited before listening"))
                buffer += chunk
        line = buffer.split(b"\n", 1)[0].decode()
        if not line.startswith(_READY_PREFIX):
            raise SandboxStartError(self._failure(f"printed {line!r} first"))
        return line.removeprefix(_READY_PREFIX).strip()

    def _failure(self, what: str) -> str:
        output = ""
        if self._stderr is not None:
            self._stderr.seek(0)
            output = self._stderr.read().decode(errors="replace")
        code = self.popen.poll() if self.popen is not None else None
        return f"sandbox {what} (exit code {code}); stderr:\n{output}"

    def stop(self) -> int | None:
        """SIGTERM, wait up to `stop_timeout_s`, then kill; returns the exit code."""
        popen = self.popen
        if popen is None:
            return None
        if popen.poll() is None:
            popen.send_signal(signal.SIGTERM)
            try:
                popen.wait(self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait(self.stop_timeout_s)
        if popen.stdout is not None:
            popen.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        return popen.returncode

    def _request(self, method: str, path: str, body: object = None) -> object:
        data = None if body is None else json.dumps(body).encode()
        # The URL is our own child's http:// address, never user input.
        request = urllib.request.Request(self.url + path, data=data, method=method)  # noqa: S310
        if data is not None:
            request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return json.loads(response.read())

    def state(self) -> dict[str, object]:
        """`GET /_sandbox/state`: leads, lists, members (by list id), folders."""
        return _as_dict(self._request("GET", "/_sandbox/state"))

    def stats(self) -> dict[str, object]:
        """`GET /_sandbox/stats`: calls per endpoint and code, peaks, quota used."""
        return _as_dict(self._request("GET", "/_sandbox/stats"))

    def set_faults(self, **faults: float | bool) -> dict[str, object]:
        """`POST /_sandbox/faults`, e.g. `set_faults(p_608=0.1, storm_606_s=5)`."""
        return _as_dict(self._request("POST", "/_sandbox/faults", faults))

    def token(self) -> str:
        """Get an access token from the identity endpoint."""
        query = urllib.parse.urlencode(
            {
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self.client_secret,
            }
        )
        reply = _as_dict(self._request("GET", f"/identity/oauth/token?{query}"))
        return str(reply["access_token"])


def _as_dict(value: object) -> dict[str, object]:
    if not isinstance(value, dict):
        raise TypeError(f"expected a JSON object, got {type(value).__name__}")
    return value
