"""The event generator: seeded and repeatable, schema-valid, the promised mix, audiences move."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path

import orjson
import pytest
from jsonschema import Draft202012Validator

from worker.commands.generate import ProfileEvents, TokenBucket, main
from worker.config_file import load_settings
from worker.core.events import RFC3339_PATTERN, EventOp, ProfileUpdate, decode

ROOT = Path(__file__).resolve().parents[2]
EVENT_SCHEMA = Draft202012Validator(
    json.loads((ROOT / "schemas" / "profile-update.schema.json").read_text(encoding="utf-8"))
)
DEMO_CONFIG = ROOT / "deploy" / "local" / "config.yaml"
NOW_MS = 1_795_000_000_000
PROFILES = 500
UPLOADS = ("webinar-2026",)
READ_BY_DEMO = ("firstName", "lastName", "country", "ltv", "plan", "tags", "last_seen", "address")


def stream(seed: int, count: int, profiles: int = PROFILES) -> list[tuple[bytes, bytes]]:
    events = ProfileEvents(random.Random(seed), profiles, UPLOADS)
    return [events.next(NOW_MS + i) for i in range(count)]


def decoded(seed: int, count: int) -> list[ProfileUpdate]:
    return [decode(key, value, max_bytes=65_536) for key, value in stream(seed, count)]


def test_same_seed_gives_the_same_events() -> None:
    """Two generators seeded alike and given the same times produce identical records."""
    assert stream(7, 300) == stream(7, 300)


def test_different_seeds_give_different_events() -> None:
    """The seed is what varies the stream."""
    assert stream(7, 300) != stream(8, 300)


def test_every_event_decodes_with_its_key() -> None:
    """The worker's own decoder accepts every generated record (key equals profile_id)."""
    updates = decoded(1, 2_000)
    assert len(updates) == 2_000


def test_every_event_matches_the_published_schema() -> None:
    """Each value validates against schemas/profile-update.schema.json."""
    errors = [
        error.message
        for _, value in stream(2, 2_000)
        for error in EVENT_SCHEMA.iter_errors(orjson.loads(value))
    ]
    assert errors == []


def test_ts_is_the_time_given() -> None:
    """An event's ts is the now_ms it was generated at."""
    assert [update.ts_ms for update in decoded(3, 50)] == [NOW_MS + i for i in range(50)]


def test_ops_follow_the_mix() -> None:
    """About 30 % upserts, 65 % patches and 5 % deletes."""
    ops = Counter(update.op for update in decoded(4, 20_000))
    assert 0.27 < ops[EventOp.UPSERT] / 20_000 < 0.33
    assert 0.62 < ops[EventOp.PATCH] / 20_000 < 0.68
    assert 0.035 < ops[EventOp.DELETE] / 20_000 < 0.065


def test_ids_and_emails_stay_within_the_profile_range() -> None:
    """Profile ids are p-0 .. p-(P-1), and each profile's email is person<N>@example.com."""
    for update in decoded(5, 5_000):
        index = int(update.profile_id.removeprefix("p-"))
        assert 0 <= index < PROFILES
        if update.op is not EventOp.DELETE:
            assert update.email == f"person{index}@example.com"


def test_the_whole_profile_range_is_used() -> None:
    """Over enough events, nearly every profile is touched (ids are spread, not clustered)."""
    ids = {update.profile_id for update in decoded(6, 5_000)}
    assert len(ids) > 0.95 * PROFILES


def test_upload_statuses_name_only_upload_audiences_both_ways() -> None:
    """Upload audiences get realized and exited statuses; no other audience is named."""
    statuses = Counter(
        (audience, status)
        for update in decoded(9, 3_000)
        for audience, status in update.audiences.items()
    )
    assert set(statuses) == {("webinar-2026", "realized"), ("webinar-2026", "exited")}


def test_consent_is_mostly_yes_and_sometimes_no() -> None:
    """Most consents given are "y", and some are "n" (profiles leave every list)."""
    consents = Counter(u.consent["marketing"] for u in decoded(10, 5_000) if u.consent)
    assert consents["n"] > 0
    assert consents["y"] > 5 * consents["n"]


def test_upserts_carry_the_attributes_the_demo_rules_read() -> None:
    """Upserts carry every attribute the demo reads, last_seen in RFC 3339, and a labelled phone."""
    upserts = [u for u in decoded(11, 500) if u.op is EventOp.UPSERT]
    for update in upserts:
        assert set(READ_BY_DEMO) <= set(update.attributes)
        assert "phone" in update.attributes  # labelled C2: the worker must never export it
        assert re.match(RFC3339_PATTERN, str(update.attributes["last_seen"]))


@pytest.mark.parametrize(
    "audience", ["high-value-fr", "vip", "active-pro", "lyon-newsletter", "churn-risk"]
)
def test_demo_rules_match_some_upserts_and_not_others(audience: str) -> None:
    """Each rule of deploy/local/config.yaml holds for some generated profiles and not others."""
    settings = load_settings(DEMO_CONFIG, env={}, require_credentials=False)
    (rule,) = [a.compiled_rule for a in settings.audiences if a.id == audience]
    assert rule is not None
    upserts = [u for u in decoded(12, 2_000) if u.op is EventOp.UPSERT]
    verdicts = {rule.matches(u.attributes, u.ts_ms) for u in upserts}
    assert verdicts == {True, False}


def test_patches_change_few_attributes_and_sometimes_erase() -> None:
    """Patches change one to three attributes besides last_visit, and some erase one with null."""
    patches = [u for u in decoded(13, 5_000) if u.op is EventOp.PATCH]
    assert all(2 <= len(p.attributes) <= 4 for p in patches)
    assert any(None in p.attributes.values() for p in patches)


def test_bucket_releases_tokens_at_the_rate() -> None:
    """At 100/s, half a second releases 50 events."""
    bucket = TokenBucket(rate_per_s=100, burst=1_000, now=0.0)
    assert bucket.take(0.5, most=1_000) == 50


def test_bucket_caps_bursts() -> None:
    """An idle bucket saves at most `burst` events."""
    bucket = TokenBucket(rate_per_s=100, burst=10, now=0.0)
    assert bucket.take(60.0, most=1_000) == 10


def test_bucket_takes_no_more_than_asked() -> None:
    """Tokens not taken stay for the next call."""
    bucket = TokenBucket(rate_per_s=100, burst=1_000, now=0.0)
    assert (bucket.take(1.0, most=30), bucket.take(1.0, most=1_000)) == (30, 70)


def test_bucket_says_how_long_until_the_next_token() -> None:
    """Right after emptying, the next token is 1/rate seconds away."""
    bucket = TokenBucket(rate_per_s=100, burst=1_000, now=0.0)
    bucket.take(1.0, most=1_000)
    assert bucket.wait_s() == pytest.approx(0.01)


def test_count_zero_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--count 0` is refused by the argument check (exit 2), before any config or Kafka."""
    with pytest.raises(SystemExit) as exited:
        main([str(tmp_path / "absent.yaml"), "--rate", "0", "--count", "0"])
    assert exited.value.code == 2
    assert "--count >= 1" in capsys.readouterr().err
