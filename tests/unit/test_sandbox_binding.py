"""The sandbox (it accepts any client holding its test credentials) listens on loopback only,
unless --host says otherwise."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from worker.sandbox import cli
from worker.sandbox.process import SandboxProcess

PROC_TCP = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
LISTEN = "0A"
LOOPBACK_HEX = "0100007F"  # 127.0.0.1 as /proc/net/tcp writes it (little-endian)


def listening_addresses(port: int) -> set[str]:
    """The local addresses (hex, as in /proc/net/tcp*) with a socket listening on `port`."""
    found = set()
    for table in (t for t in PROC_TCP if t.exists()):  # tcp6 is absent without IPv6
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].split(":")
            if fields[3] == LISTEN and int(port_hex, 16) == port:
                found.add(address)
    return found


def test_command_line_host_defaults_to_loopback() -> None:
    """Without --host the sandbox's parser picks 127.0.0.1."""
    assert cli._parser().parse_args([]).host == "127.0.0.1"


def test_sandbox_started_without_host_announces_loopback() -> None:
    """A sandbox started without --host prints `listening on http://127.0.0.1:PORT`."""
    with SandboxProcess() as sandbox:
        parts = urlsplit(sandbox.url)
        assert (parts.scheme, parts.hostname) == ("http", "127.0.0.1")
        assert parts.port


@pytest.mark.skipif(not PROC_TCP[0].exists(), reason="reads Linux's /proc/net/tcp")
def test_sandbox_started_without_host_listens_on_loopback_only() -> None:
    """The kernel's socket table shows the sandbox's port bound to 127.0.0.1 and nothing else."""
    with SandboxProcess() as sandbox:
        port = urlsplit(sandbox.url).port
        assert port is not None
        assert listening_addresses(port) == {LOOPBACK_HEX}
