"""Guarantee checked (docs/guarantees.md, activation): an audience added, changed or removed in
the configuration is applied to every stored profile at the next start, with no new event; in a
rollout an old replica stands down on partitions a newer one activated, so nothing flaps."""

from __future__ import annotations

import random
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.bench.wiretap import Call, Wiretap
from tests.integration.harness import (
    Audience,
    WorkerProcess,
    event,
    group_of,
    list_members,
    new_input_topic,
    produce,
    wait_for_lists,
    write_config,
)
from tests.kafka_support import wait_for
from tests.sandbox_views import sandbox_state
from worker.sandbox.process import SandboxProcess

pytestmark = pytest.mark.integration
PROFILES = 600
PARTITIONS = 4

FR: Audience = {"id": "fr", "name": "FR", "rule": 'country == "FR"', "list": {"name": "FR"}}
DE: Audience = {"id": "de", "name": "DE", "rule": 'country == "DE"', "list": {"name": "DE"}}
# read by no rule of the first configuration: the state keeps them all the same
PRO: Audience = {"id": "pro", "name": "Pro", "rule": 'plan == "pro"', "list": {"name": "Pro"}}
FR_LYON: Audience = {**FR, "rule": 'country == "FR" and address.city == "Lyon"'}

Profile = dict[str, str]
Reference = Callable[[Profile], bool]
REFERENCE: dict[str, Reference] = {  # per list name, independently of the worker's rules
    "FR": lambda p: p["country"] == "FR",
    "DE": lambda p: p["country"] == "DE",
    "Pro": lambda p: p["plan"] == "pro",
}
FR_LYON_REFERENCE: Reference = lambda p: p["country"] == "FR" and p["city"] == "Lyon"  # noqa: E731


def profiles() -> dict[str, Profile]:
    """Each profile's email and attributes (one event each)."""
    rng = random.Random(16)
    return {
        f"a{i}@example.com": {
            "country": rng.choice(["FR", "DE", "US"]),
            "plan": rng.choice(["free", "pro"]),
            "city": rng.choice(["Lyon", "Paris", "Berlin"]),
        }
        for i in range(PROFILES)
    }


def events(people: dict[str, Profile]) -> list[tuple[str, bytes]]:
    return [
        event(
            f"p-{i}",
            1_000 + i,
            identities={"email": email},
            attributes={
                "country": person["country"],
                "plan": person["plan"],
                "address": {"city": person["city"], "zip": "00000"},
                "firstName": "A",
                "lastName": "B",
            },
        )
        for i, (email, person) in enumerate(people.items())
    ]


def expected(people: dict[str, Profile], lists: dict[str, Reference]) -> dict[str, set[str]]:
    return {name: {e for e, p in people.items() if member(p)} for name, member in lists.items()}


def logged(worker: WorkerProcess, name: str) -> list[dict[str, Any]]:
    return [e for e in worker.logs() if e.get("event") == name]


def lead_emails(sandbox: SandboxProcess) -> dict[int, str | None]:
    return {lead["id"]: lead.get("email") for lead in sandbox_state(sandbox)["leads"]}


def list_ids(sandbox: SandboxProcess) -> dict[str, int]:
    return {item["name"]: item["id"] for item in sandbox_state(sandbox)["lists"]}


def done(calls: list[Call], kind: str, list_id: int) -> Counter[int]:
    """How many times each lead was reported added (or removed) to the list by these calls."""
    return Counter(i for c in calls if c.kind == kind and c.list_id == list_id for i in c.ids)


class Scenario:
    """A topic of PROFILES profiles, the sandbox behind a recording proxy, configs per phase."""

    def __init__(self, bootstrap: str, tmp_path: Path, sandbox: SandboxProcess, tap: Wiretap):
        self.bootstrap, self.tmp, self.sandbox, self.tap = bootstrap, tmp_path, sandbox, tap
        self.topic = new_input_topic(bootstrap, partitions=PARTITIONS)
        self.people = profiles()
        self.group: str | None = None
        self.workers = 0

    def config(self, name: str, audiences: list[Audience]) -> Path:
        """A config for the scenario's topic, state and group (the first one's group)."""
        kafka = {"group_id": self.group} if self.group else None
        path = write_config(
            self.tmp / f"{name}.yaml",
            self.bootstrap,
            self.tap.url,
            self.topic,
            audiences,
            kafka=kafka,
        )
        self.group = group_of(path)
        return path

    def start(self, config: Path) -> WorkerProcess:
        self.workers += 1
        return WorkerProcess(config, self.tmp / f"w{self.workers}.log")

    def synced(self, audiences: list[Audience]) -> Path:
        """Run a first worker until the lists of `audiences` equal their references; stop it."""
        config = self.config("first", audiences)
        worker = self.start(config)
        try:
            produce(self.bootstrap, self.topic, events(self.people))
            names = {a["name"] for a in audiences}
            want = expected(self.people, {n: r for n, r in REFERENCE.items() if n in names})
            wait_for_lists(self.sandbox, want, 120)
        finally:
            assert worker.stop() == 0
        return config


@pytest.fixture
def scenario(kafka_bootstrap: str, tmp_path: Path) -> Any:
    with SandboxProcess("--no-limits") as sandbox, Wiretap(sandbox.url) as tap:
        yield Scenario(kafka_bootstrap, tmp_path, sandbox, tap)


def test_an_audience_added_at_a_restart_fills_its_list_without_new_events(
    scenario: Scenario,
) -> None:
    """Restarted with one more audience reading an attribute no rule read before, its list
    equals the reference; the others are intact."""
    scenario.synced([FR, DE])
    worker = scenario.start(scenario.config("added", [FR, DE, PRO]))
    try:
        want = expected(scenario.people, {n: REFERENCE[n] for n in ("FR", "DE", "Pro")})
        wait_for_lists(scenario.sandbox, want, 120)
        completed = logged(worker, "activation.completed")
    finally:
        assert worker.stop() == 0
    assert sum(e["adds"] for e in completed) == len(want["Pro"])


def test_a_changed_rule_sends_exactly_its_removals_and_nothing_for_the_unchanged(
    scenario: Scenario,
) -> None:
    """`fr` narrowed by a nested attribute no rule read before (`address.city`): every FR
    member outside Lyon is removed once, no one is added, and no other list gets a call."""
    scenario.synced([FR, DE])
    before = len(scenario.tap.calls())
    worker = scenario.start(scenario.config("changed", [FR_LYON, DE]))
    try:
        want = expected(scenario.people, {"FR": FR_LYON_REFERENCE, "DE": REFERENCE["DE"]})
        wait_for_lists(scenario.sandbox, want, 120)
    finally:
        assert worker.stop() == 0
    calls = scenario.tap.calls()[before:]
    ids, emails = list_ids(scenario.sandbox), lead_emails(scenario.sandbox)
    removed = done(calls, "remove_from_list", ids["FR"])
    leaving = {
        e for e, p in scenario.people.items() if p["country"] == "FR" and p["city"] != "Lyon"
    }
    assert leaving  # the change removes someone
    assert ({emails[i] for i in removed}, set(removed.values())) == (leaving, {1})
    assert [c.kind for c in calls if c.kind in {"add_to_list", "sync_leads"}] == []
    assert [c for c in calls if c.list_id == ids["DE"]] == []


def test_a_removed_audience_keeps_its_list_and_is_logged_with_its_members(
    scenario: Scenario,
) -> None:
    """Dropped from the configuration, `de`'s list keeps every member, gets no call, and the
    log names it with its member count."""
    scenario.synced([FR, DE])
    de_before = list_members(scenario.sandbox)["DE"]
    before = len(scenario.tap.calls())
    worker = scenario.start(scenario.config("removed", [FR]))
    try:
        wait_for(
            lambda: len(logged(worker, "activation.completed")) == PARTITIONS,
            60,
            "an activation of every partition",
        )
        removed = logged(worker, "activation.audience_removed")
    finally:
        assert worker.stop() == 0
    ids = list_ids(scenario.sandbox)
    assert list_members(scenario.sandbox)["DE"] == de_before
    assert [c for c in scenario.tap.calls()[before:] if c.list_id == ids["DE"]] == []
    assert ({e["audience"] for e in removed}, sum(e["members"] for e in removed)) == (
        {"de"},
        len(de_before),
    )


def readyz(worker: WorkerProcess) -> tuple[int, str]:
    url = f"http://127.0.0.1:{worker.metrics_port()}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


def activated(worker: WorkerProcess) -> set[int]:
    return {e["partition"] for e in logged(worker, "activation.completed")}


def owned(worker: WorkerProcess) -> set[int]:
    """The partitions the worker holds now, by its assignment and revocation log lines."""
    held: set[int] = set()
    for e in worker.logs():
        if e.get("event") == "partitions.assigned":
            held |= set(e["partitions"])
        elif e.get("event") == "partitions.revoked":
            held -= set(e["partitions"])
    return held


def settled(worker: WorkerProcess) -> bool:
    """Every partition the worker holds has been activated by it."""
    held = owned(worker)
    return bool(held) and held <= activated(worker)


def test_in_a_rollout_the_old_replica_stands_down_and_no_membership_flaps(
    scenario: Scenario,
) -> None:
    """Old and new replicas side by side in one group: the old one stands down on partitions
    the new one activated (not ready), and each person is added to a list at most once."""
    old_audiences, new_audiences = [FR, DE], [FR_LYON, DE, PRO]
    old_config = scenario.synced(old_audiences)
    new_config = scenario.config("new", new_audiences)
    old = scenario.start(old_config)
    workers = [old]
    try:
        wait_for(lambda: bool(logged(old, "state.restored")), 60, "the old replica restored")
        new = scenario.start(new_config)
        workers.append(new)
        wait_for(lambda: settled(new), 60, "the new replica activating its partitions")
        by_new = activated(new)
        assert new.stop() == 0  # the old replica gets every partition back
        wait_for(
            lambda: {e["partition"] for e in logged(old, "activation.stood_down")} == by_new,
            60,
            "the old replica standing down on the partitions the new one activated",
        )
        status, detail = readyz(old)
        assert (status, "stood down" in detail) == (503, True)
        newer = scenario.start(new_config)  # the rollout goes on: a new replica, the old leaves
        workers.append(newer)
        wait_for(lambda: bool(logged(newer, "state.restored")), 60, "the next new replica")
        assert old.stop() == 0
        lists = {"FR": FR_LYON_REFERENCE, "DE": REFERENCE["DE"], "Pro": REFERENCE["Pro"]}
        wait_for_lists(scenario.sandbox, expected(scenario.people, lists), 120)
        assert newer.stop() == 0
    finally:
        for worker in workers:
            worker.stop()
    calls, ids = scenario.tap.calls(), list_ids(scenario.sandbox)
    ops: dict[tuple[str, int], list[str]] = defaultdict(list)
    for call in calls:
        if call.kind in {"add_to_list", "remove_from_list"}:
            for lead in call.ids:
                ops[(str(call.list_id), lead)].append(call.kind)
    flaps = {
        key: seq
        for key, seq in ops.items()
        if seq.count("add_to_list") > 1 or len(seq) > 2 or seq[0] == "remove_from_list"
    }
    assert flaps == {}
    assert set(done(calls, "add_to_list", ids["FR"]).values()) == {1}
