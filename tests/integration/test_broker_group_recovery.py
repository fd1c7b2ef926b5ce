"""Guarantee checked: the real broker keeps a consumer group's committed offsets across a
member's SIGKILL; the group resumes from them, every message is seen, none is skipped."""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, Message, Producer

from tests.kafka_support import create_topic, wait_for

pytestmark = pytest.mark.integration
SCRIPT = Path(__file__).with_name("consumer_process.py")
TOTAL = 10_000


def produce(bootstrap: str, topic: str, keys: range) -> dict[tuple[int, int], str]:
    """Produce keyed messages; return (partition, offset) -> key as the broker acknowledged."""
    acked: dict[tuple[int, int], str] = {}

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        assert err is None, err
        partition, offset, key = msg.partition(), msg.offset(), msg.key()
        # a delivered record has all three
        assert partition is not None
        assert offset is not None
        assert key is not None
        acked[(partition, offset)] = key.decode()

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in keys:
        producer.produce(topic, key=f"k{i}", value=b"x" * 100, on_delivery=on_delivery)
        producer.poll(0)
    assert producer.flush(30) == 0
    return acked


def read_lines(path: Path) -> list[list[str]]:
    """Parse a consumer's output; a torn last line (the process was killed) is ignored."""
    if not path.exists():
        return []
    text = path.read_text()
    lines = text.splitlines() if text.endswith("\n") else text.splitlines()[:-1]
    return [line.split() for line in lines]


class Member:
    """One consumer process of the group and the file it writes."""

    def __init__(self, bootstrap: str, topic: str, group: str, path: Path) -> None:
        self.path = path
        args = [sys.executable, str(SCRIPT), bootstrap, topic, group, str(path)]
        self.proc = subprocess.Popen(args)

    def seen(self) -> list[tuple[int, int]]:
        return [(int(p), int(o)) for kind, p, o, *_ in self._lines("M")]

    def committed(self) -> dict[int, int]:
        return {int(p): int(o) for _, p, o in self._lines("C")}

    def assigned(self) -> bool:
        return bool(self._lines("A"))

    def _lines(self, kind: str) -> list[list[str]]:
        return [line for line in read_lines(self.path) if line and line[0] == kind]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)


def test_group_resumes_from_committed_offsets_after_sigkill(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A member killed with SIGKILL loses nothing: every message is seen, none skipped, and the
    only re-deliveries are offsets the killed member had not committed."""
    topic = create_topic(kafka_bootstrap, partitions=4)
    group = f"g-{uuid.uuid4().hex[:8]}"
    a = Member(kafka_bootstrap, topic, group, tmp_path / "a1.log")
    b = Member(kafka_bootstrap, topic, group, tmp_path / "b.log")
    members = [a, b]
    try:
        wait_for(lambda: a.assigned() and b.assigned(), 60, "both members to get partitions")
        produced = produce(kafka_bootstrap, topic, range(5_000))
        wait_for(lambda: len(a.seen()) + len(b.seen()) >= 5_000, 60, "the first half")
        before_kill = len(a.seen())
        produced |= produce(kafka_bootstrap, topic, range(5_000, 7_500))
        wait_for(lambda: len(a.seen()) > before_kill, 60, "member A to consume more")
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(10)
        killed_commits, killed_seen = a.committed(), a.seen()
        produced |= produce(kafka_bootstrap, topic, range(7_500, TOTAL))
        restarted = Member(kafka_bootstrap, topic, group, tmp_path / "a2.log")
        members.append(restarted)
        everything = set(produced)
        wait_for(
            lambda: everything <= set(b.seen()) | set(restarted.seen()) | set(killed_seen),
            120,
            "every produced message to be seen",
        )
    finally:
        for member in members:
            member.stop()

    seen = Counter(killed_seen + b.seen() + restarted.seen())
    assert len(produced) == TOTAL
    assert set(produced) <= set(seen), "a produced message was skipped"
    redelivered = {tp for tp, n in seen.items() if n > 1}
    uncommitted_by_killed = {(p, o) for p, o in killed_seen if o >= killed_commits.get(p, 0)}
    assert redelivered <= uncommitted_by_killed, "the group re-read offsets it had committed"
