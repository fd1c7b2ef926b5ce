"""A consumer group member run as its own process, so a test can SIGKILL it.

Usage: python consumer_process.py BOOTSTRAP TOPIC GROUP OUTFILE
Writes `A partition` on assignment, `M partition offset key` per message, then commits
synchronously and writes `C partition next_offset` per partition the broker accepted.
Records are written before the commit, so whatever is committed was recorded (at least once).
"""

from __future__ import annotations

import signal
import sys
import time
from typing import IO

from confluent_kafka import Consumer, Message, TopicPartition

MAX_LIFETIME_S = 180.0  # bound: a forgotten process ends by itself


def record_batch(out: IO[str], messages: list[Message]) -> dict[int, int]:
    """Write one line per message; return the next offset to commit per partition."""
    next_offsets: dict[int, int] = {}
    for msg in messages:
        partition, offset = msg.partition(), msg.offset()
        # both are set on every fetched record; only error events lack them
        assert partition is not None
        assert offset is not None
        key = (msg.key() or b"").decode()
        out.write(f"M {partition} {offset} {key}\n")
        next_offsets[partition] = offset + 1
    out.flush()
    return next_offsets


def main(bootstrap: str, topic: str, group: str, path: str) -> None:
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "group.protocol": "consumer",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    with open(path, "a", buffering=1) as out:

        def on_assign(_: Consumer, partitions: list[TopicPartition]) -> None:
            out.writelines(f"A {tp.partition}\n" for tp in partitions)

        consumer.subscribe([topic], on_assign=on_assign)
        started = time.monotonic()
        while not stopping and time.monotonic() - started < MAX_LIFETIME_S:
            messages = [m for m in consumer.consume(200, timeout=0.5) if m.error() is None]
            if not messages:
                continue
            offsets = record_batch(out, messages)
            tps = [TopicPartition(topic, p, o) for p, o in offsets.items()]
            for tp in consumer.commit(offsets=tps, asynchronous=False) or []:
                if tp.error is None:
                    out.write(f"C {tp.partition} {tp.offset}\n")
        consumer.close()


if __name__ == "__main__":
    main(*sys.argv[1:5])
