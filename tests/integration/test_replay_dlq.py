"""Guarantee checked (replay-dlq): after a configuration fix, dead letters that now
decode go back to the input unchanged (same key, value and partition); the rest are reported and
left; the command's own group remembers where it stopped, so nothing is replayed twice."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
import yaml
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from tests.integration.harness import (
    WorkerProcess,
    event,
    metric,
    new_input_topic,
    produce,
    wait_for_lists,
    write_config,
)
from tests.kafka_support import wait_for
from worker.sandbox.process import SandboxProcess

pytestmark = pytest.mark.integration
AUDIENCES = [{"id": "all", "name": "All", "rule": "exists(country)", "list": {"name": "All"}}]
PARTITIONS = 4
BIG_KEY = "p-big"
BIG = orjson.dumps(  # 70 kB: over the default 64 KiB limit, under the fixed config's 100 kB
    {
        "profile_id": BIG_KEY,
        "ts": 5,
        "op": "upsert",
        "identities": {"email": "big@example.com"},
        "attributes": {"country": "FR", "firstName": "B", "lastName": "G", "blob": "x" * 70_000},
    }
)
# librdkafka's default partitioner is CRC-32 of the key: the original goes elsewhere on purpose,
# so that a replay by key alone would land in another partition than the original.
BIG_PARTITION = (zlib.crc32(BIG_KEY.encode()) % PARTITIONS + 1) % PARTITIONS
STILL_BAD = {
    "bad_json": ("p-x", b"{not json"),
    "schema": ("p-y", orjson.dumps({"profile_id": "p-y", "ts": 1, "op": "explode"})),
}


@dataclass(frozen=True)
class DeadLetters:
    """An input topic whose worker dead-lettered one oversize and two broken records."""

    bootstrap: str
    topic: str
    config: Path


def fixed_config(dead: DeadLetters, tmp_path: Path) -> Path:
    """The same topics with a larger event limit, and a fresh group (so a fresh replay group)."""
    config = yaml.safe_load(dead.config.read_text())
    config["kafka"]["max_event_bytes"] = 100_000
    config["kafka"]["group_id"] = f"worker-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "fixed.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def replay(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `replay-dlq CONFIG ARGS` in a child process (no Marketo credentials needed)."""
    code = (
        "import sys; from worker.commands.replay_dlq import main; "
        "raise SystemExit(main(sys.argv[1:]))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETO_")}
    return subprocess.run(
        [sys.executable, "-c", code, str(config), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def handled_by(result: subprocess.CompletedProcess[str]) -> int:
    """How many dead letters a run replayed or reported, from its summary line."""
    found = re.match(r"replayed (\d+), still failing (\d+)", result.stdout)
    assert found is not None, result.stdout + result.stderr[-3000:]
    return int(found[1]) + int(found[2])


def copies_of_big(bootstrap: str, topic: str) -> list[int]:
    """The partition of every record on the input topic equal to the oversize one."""
    return sorted(partition for partition, _ in marked_copies_of_big(bootstrap, topic))


def marked_copies_of_big(bootstrap: str, topic: str) -> list[tuple[int, str | None]]:
    """Each copy of the oversize record on the input: its partition and `replayed.from` header."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "unused", "enable.partition.eof": True}
    )
    found: list[tuple[int, str | None]] = []
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=15) for tp in tps}
        left = {p for p, (low, high) in ends.items() if low < high}
        consumer.assign([TopicPartition(topic, p, ends[p][0]) for p in left])
        while left:  # until every partition reported its end
            for message in consumer.consume(500, 0.2):
                error, partition = message.error(), message.partition()
                if error is not None and error.code() == KafkaError._PARTITION_EOF:
                    left.discard(partition or 0)
                elif message.key() == BIG_KEY.encode() and message.value() == BIG:
                    headers = dict(message.headers() or [])
                    mark = headers.get("replayed.from")
                    text = mark.decode() if isinstance(mark, bytes) else mark
                    found.append((partition or 0, text))
    finally:
        consumer.close()
    return found


@pytest.fixture(scope="module")
def dead(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> DeadLetters:
    """A worker ran over the records and dead-lettered the three bad ones."""
    tmp = tmp_path_factory.mktemp("replay")
    topic = new_input_topic(kafka_bootstrap, partitions=PARTITIONS)
    valid = [
        event(
            f"p-{i}",
            1_000 + i,
            identities={"email": f"v{i}@example.com"},
            attributes={"country": "FR", "firstName": "A", "lastName": "B"},
        )
        for i in range(5)
    ]
    with SandboxProcess("--no-limits") as sandbox:
        config = write_config(tmp / "c.yaml", kafka_bootstrap, sandbox.url, topic, AUDIENCES)
        worker = WorkerProcess(config, tmp / "w.log")
        try:
            producer = Producer({"bootstrap.servers": kafka_bootstrap})
            producer.produce(topic, BIG, BIG_KEY.encode(), partition=BIG_PARTITION)
            assert producer.flush(30) == 0
            produce(kafka_bootstrap, topic, [*STILL_BAD.values(), *valid])
            wait_for_lists(sandbox, {"All": {f"v{i}@example.com" for i in range(5)}}, 90)
            wait_for(
                lambda: metric(worker, "marketo_worker_dead_letters_total") == 3,
                30,
                "three dead letters",
            )
        finally:
            assert worker.stop() == 0
    return DeadLetters(kafka_bootstrap, topic, config)


def test_record_valid_under_the_new_config_goes_back_to_its_partition(
    dead: DeadLetters, tmp_path: Path
) -> None:
    """The oversize event is re-published unchanged to the input, in its original partition."""
    before = copies_of_big(dead.bootstrap, dead.topic)
    result = replay(fixed_config(dead, tmp_path))
    assert result.stdout.startswith("replayed 1, still failing 2"), result.stderr[-3000:]
    assert sorted(copies_of_big(dead.bootstrap, dead.topic)) == sorted([*before, BIG_PARTITION])


def test_records_still_invalid_are_reported_by_kind_and_fail_the_command(
    dead: DeadLetters, tmp_path: Path
) -> None:
    """The two broken records are counted by kind, with their position, and the exit code is 1."""
    result = replay(fixed_config(dead, tmp_path))
    assert result.returncode == 1, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert "  bad_json: 1" in lines
    assert "  schema: 1" in lines
    assert sum(1 for line in lines if " offset " in line) == 2


def test_failing_records_are_reported_at_their_source_position(
    dead: DeadLetters, tmp_path: Path
) -> None:
    """Each failing record is shown at its input topic, partition and offset, not the DLQ's."""
    result = replay(fixed_config(dead, tmp_path))
    where = re.compile(rf"^  {re.escape(dead.topic)} partition \d+ offset \d+: (bad_json|schema):")
    assert sum(1 for line in result.stdout.splitlines() if where.match(line)) == 2, result.stdout


def test_replayed_record_carries_the_dead_letter_it_came_from(
    dead: DeadLetters, tmp_path: Path
) -> None:
    """Every re-published copy has a `replayed.from: <dlq>:<partition>:<offset>` header."""
    assert replay(fixed_config(dead, tmp_path)).stdout.startswith("replayed 1")
    marks = [mark for _, mark in marked_copies_of_big(dead.bootstrap, dead.topic)]
    assert marks.count(None) == 1  # the original the worker dead-lettered
    replayed = {mark for mark in marks if mark is not None}
    assert len(replayed) == 1  # every run replayed the same dead letter
    assert re.fullmatch(rf"{re.escape(dead.topic)}\.dlq:\d+:\d+", replayed.pop())


def test_second_replay_replays_nothing(dead: DeadLetters, tmp_path: Path) -> None:
    """The replay group committed past every dead letter: a second run finds none, exit 0."""
    config = fixed_config(dead, tmp_path)
    assert replay(config).returncode == 1
    before = copies_of_big(dead.bootstrap, dead.topic)
    result = replay(config)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("replayed 0, still failing 0")
    assert copies_of_big(dead.bootstrap, dead.topic) == before


def test_dry_run_publishes_and_commits_nothing(dead: DeadLetters, tmp_path: Path) -> None:
    """`--dry-run` says what it would replay; the input is unchanged and a real run still can."""
    config = fixed_config(dead, tmp_path)
    before = copies_of_big(dead.bootstrap, dead.topic)
    result = replay(config, "--dry-run")
    assert result.stdout.startswith("would replay 1, still failing 2"), result.stderr[-3000:]
    assert copies_of_big(dead.bootstrap, dead.topic) == before
    assert replay(config).stdout.startswith("replayed 1, still failing 2")


def test_max_stops_after_n_records_and_the_next_run_goes_on(
    dead: DeadLetters, tmp_path: Path
) -> None:
    """`--max 1` handles one dead letter; the next run handles the two left."""
    config = fixed_config(dead, tmp_path)
    handled = [handled_by(replay(config, "--max", "1")), handled_by(replay(config))]
    assert handled == [1, 2]


def test_from_beginning_reads_again_what_a_run_already_passed(
    dead: DeadLetters, tmp_path: Path
) -> None:
    """Records a run left failing are read again with --from-beginning, not skipped for good."""
    config = fixed_config(dead, tmp_path)
    assert handled_by(replay(config)) == 3
    assert handled_by(replay(config)) == 0
    assert handled_by(replay(config, "--from-beginning")) == 3
