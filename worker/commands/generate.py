"""The generate command: realistic profile events for demos and benchmarks.

`ProfileEvents` decides what each event says from an injected `random.Random` and the `now_ms`
it is given, so a seed replays the same stream; `run` paces, produces and reports progress.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Final, TypeVar

import orjson

from worker.commands.command import Command, config_parser
from worker.commands.exit_codes import ExitCode
from worker.kafka.events_producer import EventsProducer
from worker.settings import Settings

# Values chosen so that every rule of deploy/local/config.yaml matches some profiles and not
# others, and so that patches move people in and out (country, ltv, tags, plan, last_seen, city).
_FIRST_NAMES: Final = ("Ann", "Bruno", "Chloé", "David", "Emma", "Farid", "Greta", "Hugo")
_LAST_NAMES: Final = ("Lee", "Martin", "Bernard", "Dubois", "Schmidt", "Garcia", "Rossi", "Kim")
_COUNTRIES: Final = ("FR", "FR", "FR", "DE", "US", "US", "ES", "GB", "IT")
_PLANS: Final = ("free", "free", "pro", "pro", "team")
_CITIES: Final = ("Lyon", "lyon", "Paris", "Marseille", "Berlin", "Madrid", "London", "Boston")
_TAGS: Final = ("vip", "beta", "newsletter", "early-adopter")
# Read by no demo rule: they give events a realistic size (about 400 bytes on average).
_LOCALES: Final = ("fr-FR", "en-US", "de-DE", "es-ES", "en-GB", "it-IT")
_COMPANIES: Final = ("Acme Corp", "Globex", "Initech", "Umbrella", "Hooli", "Stark Industries")
_TITLES: Final = ("Marketing Manager", "Data Engineer", "CTO", "Sales Director", "Analyst")
_TIERS: Final = ("bronze", "silver", "gold", "platinum")
_CHANNELS: Final = ("web", "email", "mobile-app", "paid-search", "social")
_CAMPAIGNS: Final = ("spring-launch-2026", "webinar-2026-q4", "pro-upgrade", "winback-90d")
_PAGES: Final = ("pricing", "docs/getting-started", "blog/audiences", "webinars/2026", "signup")
# every combination built once: one random pick per event instead of three
_VISITS: Final = tuple(
    {"page": f"https://www.example.com/{page}", "channel": channel, "campaign": campaign}
    for page in _PAGES
    for channel in _CHANNELS
    for campaign in _CAMPAIGNS
)
_PATCHED: Final = ("country", "ltv", "plan", "tags", "last_seen", "city", "unsubscribed_at")
_DAY_MS: Final = 86_400_000
_SEEN_WITHIN_DAYS: Final = 120  # active-pro reads < 30 days, churn-risk >= 60
_DELETE_SHARE: Final = 0.05
_UPSERT_SHARE: Final = 0.30  # the rest (65 %) are patches
T = TypeVar("T")
_UNPACED_CHUNK = 1_000  # events between two looks at the clock and the signals when unpaced


class ProfileEvents:
    """Random but plausible profile events over `profiles` people: ids p-0 .. p-(profiles-1)."""

    def __init__(
        self, rng: random.Random, profiles: int, upload_audiences: Sequence[str] = ()
    ) -> None:
        self._random = rng.random  # bound once: the hot path calls it about 15 times per event
        self.profiles = profiles
        self.upload_audiences = tuple(upload_audiences)
        self._dates: dict[int, str] = {}  # day number since the epoch -> "YYYY-MM-DD"

    def next(self, now_ms: int) -> tuple[bytes, bytes]:
        """One event at `now_ms`: its record key (the profile id) and JSON value."""
        index = int(self._random() * self.profiles)
        profile_id = f"p-{index}"
        kind = self._random()
        if kind < _DELETE_SHARE:
            event: dict[str, object] = {"profile_id": profile_id, "ts": now_ms, "op": "delete"}
        elif kind < _DELETE_SHARE + _UPSERT_SHARE:
            event = self._upsert(profile_id, index, now_ms)
        else:
            event = self._patch(profile_id, index, now_ms)
        return profile_id.encode(), orjson.dumps(event)

    def _upsert(self, profile_id: str, index: int, now_ms: int) -> dict[str, object]:
        r = self._random
        attributes: dict[str, object] = {
            "firstName": _FIRST_NAMES[index % len(_FIRST_NAMES)],
            "lastName": _LAST_NAMES[index // len(_FIRST_NAMES) % len(_LAST_NAMES)],
            "country": self._pick(_COUNTRIES),
            "ltv": round(r() * 5000, 2),
            "plan": self._pick(_PLANS),
            "tags": [tag for tag in _TAGS if r() < 0.2],
            "last_seen": self._last_seen(now_ms),
            "address": {"city": self._pick(_CITIES)},
            "phone": f"+33 6 {index % 100:02d} {index // 100 % 100:02d} {index // 10_000:04d}",
            "locale": self._pick(_LOCALES),
            "company": _COMPANIES[index % len(_COMPANIES)],
            "jobTitle": _TITLES[index % len(_TITLES)],
            "loyalty": {"tier": self._pick(_TIERS), "points": int(r() * 10_000)},
            "created_at": self._last_seen(now_ms - 400 * _DAY_MS),
        }
        if r() < 0.1:
            attributes["unsubscribed_at"] = self._last_seen(now_ms)
        return {
            "profile_id": profile_id,
            "ts": now_ms,
            "op": "upsert",
            "identities": {"email": f"person{index}@example.com", "ecid": _ecid(index)},
            "attributes": attributes,
            "consent": {"marketing": "y" if r() < 0.92 else "n"},
            "audiences": self._statuses(0.3),
        }

    def _patch(self, profile_id: str, index: int, now_ms: int) -> dict[str, object]:
        r = self._random
        # what prompted the update: read by no rule, but real streams carry such context
        attributes: dict[str, object] = {"last_visit": self._pick(_VISITS)}
        for _ in range(1 + int(r() * 3)):
            name = self._pick(_PATCHED)
            attributes.update(self._patched(name, now_ms))
        event: dict[str, object] = {
            "profile_id": profile_id,
            "ts": now_ms,
            "op": "patch",
            # every event names the email: a profile first seen through a patch can still match
            "identities": {"email": f"person{index}@example.com", "ecid": _ecid(index)},
            "attributes": attributes,
        }
        if r() < 0.1:  # consent changes are rare, and mostly back to "y"
            event["consent"] = {"marketing": "y" if r() < 0.7 else "n"}
        statuses = self._statuses(0.15)
        if statuses:
            event["audiences"] = statuses
        return event

    def _patched(self, name: str, now_ms: int) -> dict[str, object]:
        r = self._random
        if name == "country":
            return {"country": self._pick(_COUNTRIES)}
        if name == "ltv":  # sometimes erased: a patch's null deletes the attribute
            return {"ltv": None if r() < 0.1 else round(r() * 5000, 2)}
        if name == "plan":
            return {"plan": self._pick(_PLANS)}
        if name == "tags":
            return {"tags": [tag for tag in _TAGS if r() < 0.2]}
        if name == "last_seen":
            return {"last_seen": self._last_seen(now_ms)}
        if name == "city":
            return {"address": {"city": self._pick(_CITIES)}}
        unsubscribed = self._last_seen(now_ms) if r() < 0.3 else None
        return {"unsubscribed_at": unsubscribed}

    def _statuses(self, share: float) -> dict[str, str]:
        r = self._random
        return {
            audience: "realized" if r() < 0.6 else "exited"
            for audience in self.upload_audiences
            if r() < share
        }

    def _pick(self, values: Sequence[T]) -> T:
        return values[int(self._random() * len(values))]

    def _last_seen(self, now_ms: int) -> str:
        """A random RFC 3339 instant (whole seconds) within _SEEN_WITHIN_DAYS before now_ms."""
        seen_s = (now_ms - int(self._random() * _SEEN_WITHIN_DAYS * _DAY_MS)) // 1000
        day, second = divmod(seen_s, 86_400)
        date = self._dates.get(day)
        if date is None:  # strftime per event would cost a quarter of the event's time
            date = self._dates[day] = time.strftime("%Y-%m-%d", time.gmtime(day * 86_400))
        hour, second = divmod(second, 3600)
        minute, second = divmod(second, 60)
        return f"{date}T{hour:02d}:{minute:02d}:{second:02d}Z"


def _ecid(index: int) -> str:
    # 38 digits, like an Experience Cloud id; derived from the index so it is stable per profile
    return f"{(index * 2_654_435_761) % 10**38:038d}"


class TokenBucket:
    """Paces events at `rate_per_s`, with bursts of at most `burst` events."""

    def __init__(self, rate_per_s: float, burst: float, now: float) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.tokens = 0.0
        self.updated = now

    def take(self, now: float, most: int) -> int:
        """Take up to `most` whole tokens that are available at `now`; return how many."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate_per_s)
        self.updated = now
        taken = min(most, int(self.tokens))
        self.tokens -= taken
        return taken

    def wait_s(self) -> float:
        """How long until the next whole token."""
        return max(0.0, (1.0 - self.tokens) / self.rate_per_s)


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT/SIGTERM (the loop ends at its next look); handlers restored after."""
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda _signum, _frame: stop.set())
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _Progress:
    """One line per second on stderr: events so far and the rate over the last second."""

    def __init__(self, now: float) -> None:
        self.started = self.last = now
        self.last_count = 0

    def tick(self, count: int, now: float) -> None:
        if now - self.last < 1.0:
            return
        rate = (count - self.last_count) / (now - self.last)
        print(f"generated {count} events, {rate:,.0f}/s", file=sys.stderr, flush=True)
        self.last, self.last_count = now, count


def run(args: argparse.Namespace, settings: Settings) -> ExitCode:
    """Publish until the count, the duration or a signal; print what was done."""
    producer = EventsProducer(settings.kafka.client_config(), settings.kafka.topic)
    producer.check_topic(timeout_s=15)  # a ConfigError: the runner's exit 2
    uploads = [a.id for a in settings.audiences if a.origin == "upload"]
    events = ProfileEvents(random.Random(args.seed), args.profiles, uploads)
    started = time.monotonic()
    with _stop_on_signals() as stop:
        count = _generate(events, producer, args.rate, (args.count, args.duration_s), stop)
    while producer.flush(0.5) > 0:
        pass  # each record ends delivered or failed within librdkafka's message.timeout.ms
    elapsed_s = max(time.monotonic() - started, 1e-3)
    print(f"generated {count} events in {elapsed_s:.1f} s ({count / elapsed_s:,.0f}/s)")
    if producer.failed:
        print(
            f"{producer.failed} events were not published: {producer.first_error}", file=sys.stderr
        )
        return ExitCode.NOT_PUBLISHED
    return ExitCode.OK


def _generate(
    events: ProfileEvents,
    producer: EventsProducer,
    rate: float,
    limits: tuple[int | None, float | None],
    stop: threading.Event,
) -> int:
    """Produce until `limits` (count, duration_s) or a signal; return how many were produced."""
    limit, duration_s = limits
    now = time.monotonic()
    deadline = now + duration_s if duration_s is not None else float("inf")
    # a burst of 50 ms worth of events keeps pacing smooth without a sleep per event
    bucket = TokenBucket(rate, max(1.0, rate / 20), now) if rate > 0 else None
    progress, count = _Progress(now), 0
    while not stop.is_set() and now < deadline and count != limit:
        most = _UNPACED_CHUNK if limit is None else min(_UNPACED_CHUNK, limit - count)
        batch = most if bucket is None else bucket.take(now, most)
        if batch == 0 and bucket is not None:
            time.sleep(min(bucket.wait_s(), deadline - now))  # pacing: waits for the next token
        for _ in range(batch):
            key, value = events.next(time.time_ns() // 1_000_000)
            producer.produce(key, value)
        count += batch
        now = time.monotonic()
        progress.tick(count, now)
    return count


def arguments(argv: list[str]) -> argparse.Namespace:
    """Parse `generate CONFIG --rate N [--profiles P] [--count C] [--seed S] [--duration-s D]`."""
    parser = config_parser(
        "generate",
        description="Publish realistic profile events to the config's input topic.",
        epilog="exit codes: 0 done; 2 configuration error or Kafka unreachable; 3 Kafka refused "
        "some events",
    )
    parser.add_argument(
        "--rate", type=float, required=True, help="events/s (0: as fast as possible)"
    )
    parser.add_argument("--profiles", type=int, default=10_000, help="distinct profiles")
    parser.add_argument("--count", type=int, help="stop after this many events")
    parser.add_argument("--duration-s", type=float, help="stop after this many seconds")
    parser.add_argument("--seed", type=int, help="seed for a repeatable stream")
    args = parser.parse_args(argv)
    # None means "no limit"; an explicit 0 is refused like any other count below 1
    count_bad = args.count is not None and args.count < 1
    if args.rate < 0 or args.profiles < 1 or count_bad or (args.duration_s or 0) < 0:
        parser.error("--rate and --duration-s must be >= 0; --profiles and --count >= 1")
    return args


COMMAND = Command(arguments, run)
main = COMMAND.main
