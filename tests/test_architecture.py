"""The house layout holds: the core decides without I/O, and edges stay at the edges."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

WORKER = Path(__file__).resolve().parents[1] / "worker"
IO_LIBRARIES = {"confluent_kafka", "aiohttp", "prometheus_client", "structlog", "asyncio", "socket"}
ALLOWED_IN_CORE = {"worker.core", "worker.errors", "msgspec"}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted((WORKER / "core").glob("*.py")), ids=lambda p: p.name)
def test_core_imports_no_io_library(path: Path) -> None:
    """worker/core/ never imports Kafka, HTTP, metrics, logging or asyncio (STYLE rule 1)."""
    top_levels = {name.split(".")[0] for name in imports_of(path)}
    assert not top_levels & IO_LIBRARIES, f"{path.name} imports {top_levels & IO_LIBRARIES}"


@pytest.mark.parametrize("path", sorted((WORKER / "core").glob("*.py")), ids=lambda p: p.name)
def test_core_imports_only_core_and_errors_from_the_worker(path: Path) -> None:
    """The core depends on nothing else of the worker but itself and errors."""
    own = {name for name in imports_of(path) if name.startswith("worker")}
    assert all(any(name.startswith(ok) for ok in ALLOWED_IN_CORE) for name in own), own


def test_only_the_kafka_edge_imports_confluent_kafka() -> None:
    """confluent_kafka appears in worker/kafka/ only."""
    offenders = [
        str(path.relative_to(WORKER))
        for path in WORKER.rglob("*.py")
        if "kafka" not in path.relative_to(WORKER).parts[:1]
        and any(name.startswith("confluent_kafka") for name in imports_of(path))
    ]
    assert "confluent_kafka" in imports_of(WORKER / "kafka" / "consumer.py")  # the scan sees it
    assert offenders == []


def test_the_sandbox_imports_nothing_of_the_worker_runtime() -> None:
    """worker/sandbox/ is its own sub-package: it imports only itself."""
    worker_imports = {
        name
        for path in (WORKER / "sandbox").rglob("*.py")
        for name in imports_of(path)
        if name.startswith("worker")
    }
    assert "worker.sandbox.store" in worker_imports  # the scan sees the sandbox's own imports
    assert {name for name in worker_imports if not name.startswith("worker.sandbox")} == set()


@pytest.mark.parametrize("name", ["loop.py", "flusher.py"])
def test_loop_and_flusher_use_ports_not_edges(name: str) -> None:
    """loop.py and flusher.py reach Kafka and Marketo only through Protocols (STYLE)."""
    imported = imports_of(WORKER / name)
    assert any(n.startswith("worker.core") for n in imported)  # the scan sees worker imports
    assert {n for n in imported if n.startswith(("worker.kafka", "worker.marketo"))} == set()
