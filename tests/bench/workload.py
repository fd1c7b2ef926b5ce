"""Benchmark workloads: ~400-byte profile events, the audiences that read them, a fast producer.

Deterministic (no random state): an event is a pure function of (profile index, version, ts).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

import orjson
from confluent_kafka import Producer

COUNTRIES = ("FR", "DE", "US", "ES", "IT", "GB", "NL")
PLANS = ("free", "pro", "team", "enterprise")
LANGS = ("en", "fr", "de", "es", "it")
CHANNELS = ("web", "mobile", "email")
CITIES = ("Lyon", "Paris", "Berlin", "Madrid", "Austin", "Leeds", "Turin")
TAGS = ("vip", "beta", "newsletter", "churn-risk")
# The `note` pads the variable part so an ingest event is about 400 bytes, as the issue asks.
NOTE = "synced nightly"

INGEST_RULES = (
    'country == "FR" and ltv >= 1000 and plan != "free"',
    'country == "DE" and score > 60 and "vip" in tags',
    'plan == "pro" and age < 35 and visits >= 10 and channel == "web"',
    'plan == "enterprise" and ltv >= 5000 and country in ["US", "GB"]',
    '"beta" in tags and score >= 50 and lang == "en" and age >= 25',
    'address.city == "Lyon" and plan in ["pro", "team"] and ltv > 200',
    'channel == "mobile" and visits > 20 and score < 40 and not exists(churned_at)',
    'country == "US" and age >= 40 and age < 60 and ltv >= 500 and plan != "free"',
    'startswith(lang, "e") and score >= 80 and visits >= 5',
    'len(tags) >= 2 and ltv >= 2000 and plan == "team"',
    'country == "ES" and channel == "email" and score > 30',
    '"churn-risk" in tags and ltv >= 1000 and visits < 25 and plan != "free"',
    'age < 25 and channel == "mobile" and lang == "fr"',
    'plan == "free" and visits >= 30 and score >= 70 and not exists(churned_at)',
    'country == "IT" and ltv >= 100 and ltv < 3000 and age > 30',
    'address.city == "Berlin" and plan != "free" and score >= 20 and "vip" not in tags',
    'country in ["NL", "DE", "FR"] and plan == "enterprise" and visits >= 15',
    'lower(channel) == "web" and ltv >= 10000 and score > 10',
    '"newsletter" in tags and lang in ["de", "fr"] and age >= 30 and score < 90',
    'country == "GB" and plan in ["team", "enterprise"] and ltv >= 800 and visits > 3',
)


def audiences(rules: Iterable[str], prefix: str = "a") -> list[dict[str, Any]]:
    """Worker config `audiences` entries, one list per rule, named `{prefix}{n}`."""
    return [
        {
            "id": f"{prefix}{n}",
            "name": f"{prefix}{n}",
            "rule": rule,
            "list": {"name": f"{prefix}{n}"},
        }
        for n, rule in enumerate(rules)
    ]


def list_audience(name: str) -> dict[str, Any]:
    """An audience of the profiles carrying `name` in `lists`, to a list of that name."""
    return {"id": name, "name": name, "rule": f'"{name}" in lists', "list": {"name": name}}


def list_audiences(count: int) -> list[dict[str, Any]]:
    """`count` audiences `l0`…: a profile is a member of `ln` when "ln" is in its `lists`."""
    return audiences([f'"l{n}" in lists' for n in range(count)], prefix="l")


def email(index: int) -> str:
    """The email of profile `index`."""
    return f"p{index}@example.com"


def _base(index: int, ts_ms: int) -> dict[str, Any]:
    return {
        "profile_id": f"p-{index:07d}",
        "ts": ts_ms,
        "op": "upsert",
        "identities": {"email": email(index), "ecid": f"{index * 7919:038d}"},
        "consent": {"marketing": "y"},
    }


def ingest_event(index: int, version: int, ts_ms: int) -> tuple[bytes, bytes]:
    """Profile `index` at its `version`-th update: static traits, slowly drifting behaviour."""
    h = (index * 2654435761) & 0xFFFFFFFF
    event = _base(index, ts_ms)
    tags = [TAGS[(h >> s) % 4] for s in range(h % 3)]
    if version == 3:
        tags.append("churn-risk")
    event["attributes"] = {
        "firstName": "Ann",
        "lastName": f"Lee{index % 997}",
        "country": COUNTRIES[h % 7],
        "plan": PLANS[(h >> 3) % 4],
        "age": 18 + (h >> 5) % 60,
        "lang": LANGS[(h >> 11) % 5],
        "channel": CHANNELS[(h >> 13) % 3],
        "address": {"city": CITIES[(h >> 17) % 7]},
        "ltv": float(((h >> 7) % 200) * 50 * (1 + version)),
        "score": ((h >> 9) % 100 + 7 * version) % 100,
        "visits": (h >> 19) % 20 + 3 * version,
        "tags": tags,
        "note": NOTE,
    }
    return event["profile_id"].encode(), orjson.dumps(event)


def ingest_stream(profiles: int, events: int, ts0_ms: int) -> Iterator[tuple[bytes, bytes]]:
    """`events` updates round-robin over `profiles` (each profile's versions in order)."""
    for n in range(events):
        version, index = divmod(n, profiles)
        yield ingest_event(index, version, ts0_ms + n)


def list_event(index: int, lists: list[str], ts_ms: int) -> tuple[bytes, bytes]:
    """A new person who is a member of exactly `lists` (about 400 bytes, like ingest events)."""
    event = _base(index, ts_ms)
    event["attributes"] = {
        "firstName": "Bo",
        "lastName": f"Ng{index % 997}",
        "lists": lists,
        "country": COUNTRIES[index % 7],
        "plan": PLANS[index % 4],
        "note": "; ".join([NOTE] * 7),
    }
    return event["profile_id"].encode(), orjson.dumps(event)


def backlog_stream(
    persons: int, lists: int, per_person: int, ts0_ms: int
) -> Iterator[tuple[bytes, bytes]]:
    """`persons` new persons, person i entering lists i, i+1, … (mod `lists`)."""
    for index in range(persons):
        names = [f"l{(index + k) % lists}" for k in range(per_person)]
        yield list_event(index, names, ts0_ms + index)


def fast_producer(bootstrap: str) -> Producer:
    """A producer tuned for bulk loading: big batches, a small linger, acks from the leader."""
    return Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 20,
            "batch.size": 1_000_000,
            "queue.buffering.max.messages": 500_000,
            "queue.buffering.max.kbytes": 512_000,
            "acks": 1,
        }
    )


def produce_all(bootstrap: str, topic: str, records: Iterable[tuple[bytes, bytes]]) -> int:
    """Produce every (key, value) and wait for the broker; return how many were sent."""
    producer = fast_producer(bootstrap)
    count = 0
    for key, value in records:
        while True:
            try:
                producer.produce(topic, value, key)
                break
            except BufferError:
                producer.poll(0.05)  # the local queue is full: let deliveries drain it
        count += 1
        if count % 10_000 == 0:
            producer.poll(0)
    if producer.flush(120) != 0:
        raise RuntimeError(f"{topic}: records still undelivered after 120 s")
    return count


def now_ms() -> int:
    """Wall-clock epoch milliseconds (event `ts`)."""
    return int(time.time() * 1000)
