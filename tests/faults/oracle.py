"""The fault suite's oracle: events with a known final membership, and a report per scenario.

A scenario produces these events, injects its faults, and compares the sandbox's lists with
`expected` exactly once the input has stopped (docs/guarantees.md, 1).
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tests.integration.harness import Audience, event
from tests.sandbox_views import sandbox_stats
from worker.sandbox.process import SandboxProcess

AUDIENCES: list[Audience] = [
    {
        "id": f"seg-{n}",
        "name": f"Segment {n}",
        "rule": f"bucket == {n} and score >= 50",
        "list": {"name": f"Segment {n}"},
    }
    for n in range(4)
]
RESULTS = Path("fault-results.json")


@dataclass
class Workload:
    """Events for `profiles` profiles, `per_profile` events each, and the final lists."""

    events: list[tuple[str, bytes]]
    expected: dict[str, set[str]]


def workload(profiles: int, per_profile: int, seed: int, poison_rate: float = 0.0) -> Workload:
    """Random upserts and patches with increasing ts per profile, interleaved across profiles."""
    rng = random.Random(seed)
    final: dict[int, tuple[int, int]] = {}
    rounds: list[list[tuple[str, bytes]]] = [[] for _ in range(per_profile)]
    for i in range(profiles):
        for step in range(per_profile):
            bucket, score = rng.randrange(4), rng.randrange(100)
            attrs = {"bucket": bucket, "score": score, "firstName": "F", "lastName": "L"}
            rounds[step].append(
                event(
                    f"p-{i}",
                    1_000_000 + step * 10_000 + i,
                    identities={"email": f"u{i}@example.com"},
                    attributes=attrs,
                )
            )
            final[i] = (bucket, score)
    events = [record for chunk in rounds for record in _shuffled(chunk, rng)]
    if poison_rate:
        events = _with_poison(events, poison_rate, rng)
    expected: dict[str, set[str]] = {a["name"]: set() for a in AUDIENCES}
    for i, (bucket, score) in final.items():
        if score >= 50:
            expected[f"Segment {bucket}"].add(f"u{i}@example.com")
    return Workload(events, expected)


def _shuffled(chunk: list[tuple[str, bytes]], rng: random.Random) -> list[tuple[str, bytes]]:
    rng.shuffle(chunk)
    return chunk


def _with_poison(
    events: list[tuple[str, bytes]], rate: float, rng: random.Random
) -> list[tuple[str, bytes]]:
    poison = [
        (f"p-{rng.randrange(10**6)}", b"{not json"),
        ("p-k", b'{"profile_id":"other","ts":1,"op":"upsert"}'),
    ]
    out: list[tuple[str, bytes]] = []
    for record in events:
        out.append(record)
        if rng.random() < rate:
            out.append(rng.choice(poison))
    return out


@dataclass
class Report:
    """What a scenario measured; written to fault-results.json and printed."""

    scenario: str
    events: int
    faults: list[str] = field(default_factory=list)
    lost: int = 0
    spurious: int = 0
    calls: dict[str, int] = field(default_factory=dict)
    minimal_membership_calls: int = 0
    convergence_s: float = 0.0

    @property
    def extra_membership_calls(self) -> int:
        """Membership calls beyond the fewest that could have built the lists from scratch."""
        made = self.calls.get("addToList", 0) + self.calls.get("removeFromList", 0)
        return max(0, made - self.minimal_membership_calls)

    def compare(self, expected: dict[str, set[str]], seen: dict[str, set[str | None]]) -> None:
        self.lost = sum(len(members - seen.get(name, set())) for name, members in expected.items())
        self.spurious = sum(
            len(seen.get(name, set()) - members) for name, members in expected.items()
        )

    def count_calls(self, sandbox: SandboxProcess, expected: dict[str, set[str]]) -> None:
        calls = sandbox_stats(sandbox)["calls"]
        self.calls = {endpoint: sum(codes.values()) for endpoint, codes in calls.items()}
        self.minimal_membership_calls = sum(-(-len(m) // 300) for m in expected.values())

    def save(self) -> None:
        data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        data[self.scenario] = {
            **asdict(self),
            "extra_membership_calls": self.extra_membership_calls,
        }
        RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True))
        print(
            f"\n{self.scenario}: events={self.events} faults={len(self.faults)} lost={self.lost} "
            f"spurious={self.spurious} calls={sum(self.calls.values())} "
            f"extra_membership_calls={self.extra_membership_calls} "
            f"convergence={self.convergence_s:.1f}s"
        )


class Clock:
    """Seconds since the input stopped: the convergence time."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.start
