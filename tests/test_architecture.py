"""The house layout holds: the core decides without I/O, and edges stay at the edges."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

WORKER = Path(__file__).resolve().parents[1] / "worker"
# What worker/core may import; anything else (Kafka, HTTP, metrics, logging, asyncio, sockets,
# files, clocks, the shell) is refused until it is added here on purpose. Pure stdlib modules:
CORE_STDLIB = frozenset(
    {
        "__future__",
        "ast",
        "collections",
        "csv",
        "dataclasses",
        "datetime",
        "difflib",
        "enum",
        "functools",
        "hashlib",
        "itertools",
        "math",
        "operator",
        "re",
        "typing",
        "warnings",
        "zlib",
        "zoneinfo",
    }
)
CORE_THIRD_PARTY = frozenset({"msgspec"})  # decoding and encoding bytes, no I/O
CORE_WORKER = frozenset({"worker.core", "worker.errors"})  # the core itself, and its exceptions
# The sandbox stands apart from the worker; it shares only the names of Marketo's facts.
SANDBOX_WORKER = frozenset({"worker.sandbox", "worker.core.marketo_api"})


def imports_in(source: str) -> set[str]:
    """Every module `source` imports; a relative import keeps its leading dots."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
    return names


def imports_of(path: Path) -> set[str]:
    return imports_in(path.read_text())


def _within(name: str, packages: frozenset[str]) -> bool:
    return any(name == package or name.startswith(package + ".") for package in packages)


def refused_in_core(source: str) -> set[str]:
    """The imports of `source` that the core's allowlist does not name."""
    return {
        name
        for name in imports_in(source)
        if name.split(".")[0] not in CORE_STDLIB | CORE_THIRD_PARTY
        and not _within(name, CORE_WORKER)
    }


CORE_MODULES = sorted((WORKER / "core").rglob("*.py"))


def test_the_core_is_found_with_its_subpackages() -> None:
    """The parametrised checks below see every core module, those of core/rules/ included."""
    names = {str(path.relative_to(WORKER / "core")) for path in CORE_MODULES}
    assert {"events.py", "rules/compiler.py", "marketo_api.py"} <= names


@pytest.mark.parametrize("path", CORE_MODULES, ids=lambda p: str(p.relative_to(WORKER)))
def test_the_core_imports_only_what_its_allowlist_names(path: Path) -> None:
    """worker/core/ imports pure stdlib modules, msgspec, itself and worker.errors, nothing else."""
    assert refused_in_core(path.read_text()) == set()


@pytest.mark.parametrize(
    ("source", "refused"),
    [
        ("import asyncio", {"asyncio"}),
        ("import socket, re", {"socket"}),
        ("from pathlib import Path", {"pathlib"}),
        ("import structlog", {"structlog"}),
        ("from pydantic import BaseModel", {"pydantic"}),
        ("from worker.kafka.producer import Producer", {"worker.kafka.producer"}),
        ("from worker import loop", {"worker"}),
        ("import worker.core_extras", {"worker.core_extras"}),
        ("from . import ids", {"."}),
        ("from worker.errors import RuleError\nimport json", {"json"}),
    ],
)
def test_the_allowlist_refuses_an_import_it_does_not_name(source: str, refused: set[str]) -> None:
    """A forbidden import in a core module's source is caught, by its module's name."""
    assert refused_in_core(source) == refused


def test_the_allowlist_accepts_what_it_names() -> None:
    """Allowed stdlib, msgspec, core and errors imports are not refused."""
    source = (
        "from __future__ import annotations\nimport re\nfrom collections.abc import Mapping\n"
        "import msgspec\nfrom worker.core import snapshot\n"
        "from worker.core.rules.values import eq\nfrom worker.errors import RuleError\n"
    )
    assert refused_in_core(source) == set()


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


def test_the_sandbox_imports_nothing_of_the_worker_but_marketo_facts() -> None:
    """worker/sandbox/ imports itself and core/marketo_api.py (Marketo's limits), nothing else."""
    worker_imports = {
        name
        for path in (WORKER / "sandbox").rglob("*.py")
        for name in imports_of(path)
        if name.startswith("worker")
    }
    assert "worker.sandbox.store" in worker_imports  # the scan sees the sandbox's own imports
    assert {name for name in worker_imports if not _within(name, SANDBOX_WORKER)} == set()


def test_the_shared_marketo_facts_import_nothing_of_the_worker() -> None:
    """core/marketo_api.py is a leaf, so sharing it ties the sandbox to no worker code."""
    own = {n for n in imports_of(WORKER / "core" / "marketo_api.py") if n.startswith("worker")}
    assert own == set()


@pytest.mark.parametrize("name", ["loop.py", "flusher.py", "bulk_lane.py"])
def test_loop_and_flusher_use_ports_not_edges(name: str) -> None:
    """loop.py and flusher.py reach Kafka and Marketo only through Protocols."""
    imported = imports_of(WORKER / name)
    assert any(n.startswith("worker.core") for n in imported)  # the scan sees worker imports
    assert {n for n in imported if n.startswith(("worker.kafka", "worker.marketo"))} == set()
