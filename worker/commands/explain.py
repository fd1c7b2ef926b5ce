"""`marketo-worker explain CONFIG PROFILE_ID`: what the worker knows of one profile, and why.

Reads the profile's state from the state topic (read only: no group joined, nothing written):
the attributes the rules see, each audience's verdict with the values its rule reads, consent,
the memberships wanted and those Marketo acknowledged, and the lead id. Exit 0 when found, 1
when the profile is not in the state, 2 for a configuration or Kafka problem.
"""

from __future__ import annotations

import argparse
import sys
import time
import zlib
from collections.abc import Iterator, Mapping
from typing import Any

import msgspec
import orjson

from worker.commands.command import Command, config_parser
from worker.commands.exit_codes import ExitCode
from worker.core import snapshot
from worker.core.ids import AudienceId
from worker.core.membership import AudienceRule, Audiences
from worker.core.profile import ProfileState
from worker.errors import ConfigError
from worker.kafka.changelog import RestoreInterrupted, read_partition
from worker.kafka.replay import partition_count
from worker.settings import Settings
from worker.telemetry.logging import email_hash


def arguments(argv: list[str]) -> argparse.Namespace:
    """Parse `explain CONFIG PROFILE_ID [--json] [--timeout-s S]`."""
    parser = config_parser(
        "explain",
        description="Show a profile's state: attributes, each audience's verdict, Marketo's.",
        epilog="exit codes: 0 the profile was found; 1 it is not in the state; 2 configuration "
        "error or Kafka unreachable",
    )
    parser.add_argument("profile_id", help="the profile id (the input record's key)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--timeout-s", type=float, default=60.0, help="give up reading after")
    return parser.parse_args(argv)


def run(args: argparse.Namespace, settings: Settings) -> ExitCode:
    """Find the profile's state and print the report (a Kafka problem is the runner's exit 2)."""
    found = find_state(settings, args.profile_id, time.monotonic() + args.timeout_s)
    if found is None:
        print(f"profile {args.profile_id!r} is not in the state topic", file=sys.stderr)
        return ExitCode.NOT_FOUND
    partition, state = found
    report = explain(settings, args.profile_id, partition, state)
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() if args.json else text(report))
    return ExitCode.OK


def find_state(
    settings: Settings, profile_id: str, deadline: float
) -> tuple[int, ProfileState] | None:
    """The profile's newest state and its partition, or None; ConfigError on Kafka problems."""
    config = settings.kafka.client_config()
    topic = settings.kafka.state_topic
    partitions = partition_count(config, topic)
    if partitions is None:
        raise ConfigError(f"kafka.state_topic: {topic!r} does not exist (has the worker run?)")
    key = profile_id.encode()
    for partition in _candidates(key, partitions):
        codec = snapshot.StateCodec()  # decodes the layouts the partition names
        try:
            batches = read_partition(config, topic, partition, lambda: time.monotonic() > deadline)
            data = snapshot.read_image(batches, codec).states.get(key)
        except RestoreInterrupted:
            raise ConfigError(f"timed out reading partition {partition} of {topic!r}") from None
        except Exception as exc:  # noqa: BLE001 -- librdkafka errors; confluent_kafka stays in kafka/
            raise ConfigError(f"cannot read {topic!r}: {exc}") from None
        if data is not None:
            try:
                return partition, codec.decode(data)
            except msgspec.DecodeError:
                raise ConfigError(f"the state of {profile_id!r} does not decode") from None
    return None


def _candidates(key: bytes, partitions: int) -> Iterator[int]:
    """The state partition is the input record's: first where librdkafka's default
    partitioner (CRC-32 of the key, as the project's producers use) puts the key, then the
    others, for a producer that partitions otherwise."""
    first = zlib.crc32(key) % partitions
    yield first
    yield from (p for p in range(partitions) if p != first)


def explain(
    settings: Settings, profile_id: str, partition: int, state: ProfileState
) -> dict[str, Any]:
    """The profile as the rules see it and each audience's verdict, as a JSON-ready dict."""
    audiences = Audiences(
        [AudienceRule(AudienceId(a.id), a.compiled_rule) for a in settings.audiences],
        settings.governance.consent_path,
    )
    consent = audiences.has_consent(state)
    blocked = (
        "deleted" if state.deleted else "no valid email" if state.email is None else None
    ) or (None if consent else "consent is n")
    verdicts = []
    for item in audiences.items:
        if item.rule is None:
            member, reads = state.uploaded.get(item.id, False), {}
            rule = "<upload>"
        else:
            member = item.rule.matches(state.attributes, state.ts_ms)
            reads = {path: _value(state.attributes, path) for path in sorted(item.rule.paths)}
            rule = item.rule.text
        verdicts.append(
            {
                "audience": item.id,
                "rule": rule,
                "reads": reads,
                "rule_matches": member,
                "member": member and blocked is None,
                "why_not": blocked if member else None,
                "wanted": item.id in state.desired,
                "acknowledged": item.id in state.acked,
            }
        )
    return {
        "profile_id": profile_id,
        "partition": partition,
        "ts_ms": state.ts_ms,
        "offset": state.offset,
        "deleted": state.deleted,
        "email_hash": email_hash(state.email),
        "lead_id": state.lead_id,
        "consent": consent,
        "attributes": state.attributes,
        "audiences": verdicts,
    }


def _value(attributes: Mapping[str, Any], path: str) -> Any:
    value: Any = attributes
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def text(report: Mapping[str, Any]) -> str:
    """The report for a terminal: one line per fact, one block per audience."""
    lines = [
        f"profile {report['profile_id']} (state partition {report['partition']}, "
        f"offset {report['offset']}, ts_ms {report['ts_ms']})",
        f"  deleted: {report['deleted']}  email: {report['email_hash'] or 'none'} (hash)  "
        f"consent: {'yes' if report['consent'] else 'no'}  lead id: {report['lead_id']}",
        f"  attributes: {orjson.dumps(report['attributes']).decode()}",
    ]
    for verdict in report["audiences"]:
        marks = f"wanted={verdict['wanted']} acknowledged={verdict['acknowledged']}"
        lines.append(f"  {verdict['audience']}: member={verdict['member']}  {marks}")
        lines.append(f"    rule: {verdict['rule']}  -> {verdict['rule_matches']}")
        for path, value in verdict["reads"].items():
            lines.append(f"    {path} = {orjson.dumps(value).decode()}")
        if verdict["why_not"]:
            lines.append(f"    not a member: {verdict['why_not']}")
    return "\n".join(lines)


COMMAND = Command(arguments, run)
main = COMMAND.main
