"""Guarantee checked (docs/guarantees.md, 1): after the input stops, every list equals exactly the
membership computed from each profile's newest event — with upserts, patches and deletes."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Required, TypedDict

import pytest

from tests.integration.harness import (
    Audience,
    WorkerProcess,
    event,
    new_input_topic,
    produce,
    wait_for_lists,
    write_config,
)
from worker.sandbox.process import SandboxProcess

pytestmark = pytest.mark.integration
PROFILES = 5_000
COUNTRIES = ["FR", "DE", "US", "ES"]
PLANS = ["free", "pro", "team"]

AUDIENCES: list[Audience] = [
    {
        "id": "fr-high",
        "name": "FR high value",
        "rule": 'country == "FR" and ltv >= 1000',
        "list": {"name": "FR high value"},
    },
    {"id": "vip", "name": "VIP", "rule": '"vip" in tags', "list": {"name": "VIP"}},
    {"id": "pro", "name": "Pro plan", "rule": 'plan == "pro"', "list": {"name": "Pro plan"}},
    {"id": "lyon", "name": "Lyon", "rule": 'address.city == "Lyon"', "list": {"name": "Lyon"}},
    {
        "id": "no-ltv",
        "name": "No LTV",
        "rule": "not exists(ltv) and plan != null",
        "list": {"name": "No LTV"},
    },
    {"id": "webinar", "name": "Webinar", "origin": "upload", "list": {"name": "Webinar"}},
]


class FinalProfile(TypedDict, total=False):
    """A profile as its newest event left it: what the reference membership is computed from."""

    attributes: Required[dict[str, Any]]
    webinar: str | None  # the upload audience's last status
    consent: str  # marketing consent, "y" or "n"
    deleted: bool


def reference(profile: FinalProfile) -> set[str]:
    """The audiences of one final profile, computed independently of the worker's rules."""
    if profile.get("deleted") or profile.get("consent") == "n":
        return set()
    a = profile["attributes"]
    out = set()
    if a.get("country") == "FR" and isinstance(a.get("ltv"), (int, float)) and a["ltv"] >= 1000:
        out.add("FR high value")
    if "vip" in (a.get("tags") or []):
        out.add("VIP")
    if a.get("plan") == "pro":
        out.add("Pro plan")
    if (a.get("address") or {}).get("city") == "Lyon":
        out.add("Lyon")
    if "ltv" not in a and a.get("plan") is not None:
        out.add("No LTV")
    if profile.get("webinar") == "realized":
        out.add("Webinar")
    return out


def random_attributes(rng: random.Random) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "firstName": "F",
        "lastName": "L",
        "country": rng.choice(COUNTRIES),
        "plan": rng.choice(PLANS),
        "tags": rng.sample(["vip", "beta", "churn-risk"], rng.randint(0, 2)),
        "address": {"city": rng.choice(["Lyon", "Paris", "Berlin"])},
    }
    if rng.random() < 0.7:
        attributes["ltv"] = rng.choice([10, 500, 1000, 5000])
    return attributes


def generate(rng: random.Random) -> tuple[list[tuple[str, bytes]], dict[str, FinalProfile]]:
    """Events for PROFILES profiles (several per profile, shuffled ts), and the final profiles."""
    events: list[tuple[str, bytes]] = []
    final: dict[str, FinalProfile] = {}
    for i in range(PROFILES):
        pid = f"p-{i}"
        email = f"person{i}@example.com"
        ts = 1_700_000_000_000
        profile: FinalProfile = {
            "attributes": random_attributes(rng),
            "webinar": None,
            "consent": "y",
        }
        events.append(
            event(
                pid,
                ts,
                identities={"email": email},
                attributes=profile["attributes"],
                consent={"marketing": "y"},
            )
        )
        for step in range(rng.randint(0, 3)):
            ts += 1000
            kind = rng.random()
            if kind < 0.4:
                patch: dict[str, Any] = {"plan": rng.choice(PLANS)}
                if rng.random() < 0.3:
                    patch["ltv"] = None
                profile["attributes"] = {
                    k: v for k, v in {**profile["attributes"], **patch}.items() if v is not None
                }
                events.append(event(pid, ts, op="patch", attributes=patch))
            elif kind < 0.7:
                status = rng.choice(["realized", "exited"])
                profile["webinar"] = status
                events.append(event(pid, ts, op="patch", audiences={"webinar": status}))
            elif kind < 0.85:  # upsert replaces attributes; audiences and consent are merged
                profile = {**profile, "attributes": random_attributes(rng)}
                events.append(
                    event(pid, ts, identities={"email": email}, attributes=profile["attributes"])
                )
            else:
                profile = {"attributes": {}, "deleted": True}
                events.append(event(pid, ts, op="delete"))
                break
            del step
        final[email] = profile
    return events, final


def test_lists_equal_the_reference_membership(kafka_bootstrap: str, tmp_path: Path) -> None:
    """5,000 profiles, 6 audiences, upserts/patches/deletes: every list ends exactly right."""
    rng = random.Random(42)
    events, final = generate(rng)
    expected: dict[str, set[str]] = {a["name"]: set() for a in AUDIENCES}
    for email, profile in final.items():
        for name in reference(profile):
            expected[name].add(email)
    topic = new_input_topic(kafka_bootstrap)
    with SandboxProcess("--no-limits") as sandbox:
        config = write_config(
            tmp_path / "config.yaml", kafka_bootstrap, sandbox.url, topic, AUDIENCES
        )
        worker = WorkerProcess(config, tmp_path / "worker.log")
        try:
            produce(kafka_bootstrap, topic, events)
            wait_for_lists(sandbox, expected, timeout_s=180)
        finally:
            assert worker.stop() == 0, worker.log.read_text()[-3000:]
