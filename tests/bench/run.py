"""`python -m tests.bench.run`: run the benchmark scenarios, print a table, write the JSON results.

One broker for the whole run (or $KAFKA_BOOTSTRAP_SERVERS / --bootstrap); each scenario starts its
own sandbox and worker processes. `--quick` uses small sizes and one run (the smoke test).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.bench import (
    bench_activation,
    bench_activation_bulk,
    bench_drain,
    bench_ingest,
    bench_latency,
    bench_memory,
    bench_resync_bulk,
    bench_sandbox,
    bench_scale_out,
)
from tests.bench.context import Bench
from tests.bench.results import Metric, Sample, summarise, table
from tests.kafka_support import broker_from_environment


@dataclass(frozen=True, slots=True)
class Scenario:
    """A scenario module's public face."""

    metrics: Sequence[Metric]
    measure: Callable[[Bench, int], list[Sample]]


SCENARIOS = {
    module.NAME: Scenario(module.METRICS, module.measure)
    for module in (
        bench_ingest,
        bench_drain,
        bench_latency,
        bench_scale_out,
        bench_memory,
        bench_sandbox,
        bench_activation,
        bench_activation_bulk,
        bench_resync_bulk,
    )
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tests.bench.run", description=__doc__)
    p.add_argument("--scenario", action="append", choices=sorted(SCENARIOS), help="repeatable")
    p.add_argument("--runs", type=int, default=3, help="runs per scenario (median reported)")
    p.add_argument("--quick", action="store_true", help="small sizes, one run (smoke test)")
    p.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    p.add_argument("--output", type=Path, default=Path("bench-results.json"))
    p.add_argument("--profile-dir", type=Path, help="run the ingest worker under pyinstrument")
    p.add_argument("--work-dir", type=Path, help="keep configs and worker logs here")
    return p


@contextmanager
def _broker(bootstrap: str | None, scratch: Path) -> Iterator[str]:
    if bootstrap:
        yield bootstrap
        return
    with broker_from_environment(scratch / "kafka") as started:
        yield started


@contextmanager
def _scratch(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        yield Path(scratch)


def _machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the chosen scenarios and return the report."""
    names = args.scenario or list(SCENARIOS)
    runs = 1 if args.quick else args.runs
    report: dict[str, Any] = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "quick": args.quick,
        "runs": runs,
        "machine": _machine(),
        "scenarios": {},
    }
    with _scratch(args.work_dir) as scratch, _broker(args.bootstrap, scratch) as bootstrap:
        if args.profile_dir:
            args.profile_dir.mkdir(parents=True, exist_ok=True)
        bench = Bench(bootstrap, scratch, args.quick, args.profile_dir)
        for name in names:
            scenario = SCENARIOS[name]
            started = time.monotonic()
            print(f"[bench] {name}: {runs} run(s)…", file=sys.stderr, flush=True)
            try:
                result = summarise(scenario.metrics, scenario.measure(bench, runs))
            except Exception as exc:  # noqa: BLE001 - one broken scenario must not lose the rest
                result = {"metrics": {}, "pass": False, "error": f"{type(exc).__name__}: {exc}"}
                print(f"[bench] {name} failed: {result['error']}", file=sys.stderr, flush=True)
            result["seconds"] = round(time.monotonic() - started, 1)
            report["scenarios"][name] = result
            report["pass"] = all(s["pass"] for s in report["scenarios"].values())
            args.output.write_text(json.dumps(report, indent=2) + "\n")  # progress so far
    return report


def main(argv: list[str] | None = None) -> int:
    """Entry point; exit code 0 even when a target is missed (the table says so)."""
    args = _parser().parse_args(argv)
    report = run(args)
    print(table(report))
    print(f"\nresults written to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
