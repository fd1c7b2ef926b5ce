"""`marketo-worker resync CONFIG`: repair drift between static lists and audiences, both ways.

Desired membership comes from the worker's state topic, read but never written (the worker owns
it). Spends the WHOLE group budget (share 1.0): run it while the worker is quiet, or lower
WORKER_MARKETO__BUDGET__CALLS_PER_WINDOW for it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import TextIO, TypeVar

import msgspec
import structlog

from worker.commands.command import Command, config_parser
from worker.commands.exit_codes import ExitCode
from worker.core import drift, snapshot
from worker.core.ids import AudienceId, LeadId, ListId
from worker.core.marketo_api import LEAD_NOT_FOUND, MAX_BATCH, NOT_IN_LIST
from worker.core.profile import ProfileState
from worker.errors import ConfigError, MarketoError
from worker.flusher import LeadFields, ListWriter, RecordResult
from worker.kafka.changelog import read_partition
from worker.kafka.replay import partition_count
from worker.marketo.client import MarketoClient, connect
from worker.marketo.limiter import limiter_for
from worker.settings import Audience, Settings
from worker.startup.checks import startup_checks
from worker.startup.provisioning import find_lists, resolve_lists
from worker.telemetry.logging import email_hash

log = structlog.get_logger("worker.resync")
T = TypeVar("T")
EMAIL = ("id", "email")  # the member fields read: the lead id and the match key
SHOWN = 10  # differences listed per direction and list by --dry-run
Tally = Counter[str]  # what a repair did to one list: added, removed, refused, unmatched


def arguments(argv: list[str]) -> argparse.Namespace:
    """Parse `resync CONFIG [--audience ID] [--dry-run]`."""
    parser = config_parser(
        "resync",
        description="Compare static lists with the audiences in the worker's state; repair drift.",
        epilog="exit codes: 0 repaired (or, with --dry-run, the differences printed); 1 Marketo "
        "refused something or stopped the run (running again is safe); 2 configuration error, "
        "unknown --audience or Kafka unreachable",
    )
    parser.add_argument("--audience", help="only this audience id (default: all)")
    parser.add_argument("--dry-run", action="store_true", help="report the drift; change nothing")
    return parser.parse_args(argv)


def run(args: argparse.Namespace, settings: Settings) -> ExitCode:
    """Resync the chosen audiences (a ConfigError is the runner's exit 2)."""
    chosen = [a for a in settings.audiences if args.audience in (None, a.id)]
    if not chosen:
        known = ", ".join(a.id for a in settings.audiences)
        print(f"--audience: unknown audience {args.audience!r} (known: {known})", file=sys.stderr)
        return ExitCode.USAGE
    try:
        return asyncio.run(resync(settings, chosen, dry_run=args.dry_run, out=sys.stdout))
    except MarketoError as exc:  # every repair is idempotent: running again is safe
        print(f"resync stopped: {exc}", file=sys.stderr)
        return ExitCode.INCOMPLETE


def _always(_args: argparse.Namespace) -> bool:
    return True


async def resync(
    settings: Settings, audiences: Sequence[Audience], *, dry_run: bool, out: TextIO
) -> ExitCode:
    """Read state and lists, then print the drift (dry run) or repair it and print the outcome."""
    wanted = await asyncio.to_thread(read_desired, settings, audiences)
    # an operator action: the whole group budget at once (module docstring)
    limiter = limiter_for(settings.marketo, initial_share=1.0)
    m = settings.marketo
    client = connect(m, limiter)
    try:
        limiter.observe_usage(await client.usage_today())
        chosen = frozenset(a.id for a in audiences)
        # errors name the key in the whole file (`audiences[1].list.id`), not among the chosen
        lists = (
            await find_lists(client, settings.audiences, only=chosen)
            if dry_run  # a dry run only looks: a missing list by name is None
            else dict(await resolve_lists(client, settings.audiences, m.list_folder, only=chosen))
        )
        drifts = await _survey(client, lists, wanted)
        if dry_run:
            print_plan(drifts, lists, out)
            return ExitCode.OK
        fields = LeadFields(
            m.lookup_field,
            await startup_checks(settings, client),
            match_only=m.person_creation == "match_only",
        )
        resolved = {audience: list_id for audience, list_id in lists.items() if list_id is not None}
        tallies = await Repair(client, fields, wanted.states).run(resolved, drifts)
    finally:
        await client.close()
    print_outcome(drifts, tallies, out)
    refused = any(t["refused"] for t in tallies.values())
    return ExitCode.INCOMPLETE if refused else ExitCode.OK


def read_desired(settings: Settings, audiences: Sequence[Audience]) -> drift.Desired:
    """Read every state partition to its high watermark; keep who wants these audiences."""
    config = settings.kafka.client_config()
    topic = settings.kafka.state_topic
    partitions = partition_count(config, topic)
    if partitions is None:
        raise ConfigError(f"kafka.state_topic: {topic!r} does not exist (has the worker run?)")
    states = (s for p in range(partitions) for s in _latest_states(config, topic, p))
    return drift.desired_members(states, frozenset(AudienceId(a.id) for a in audiences))


def _latest_states(config: Mapping[str, str], topic: str, partition: int) -> Iterator[ProfileState]:
    codec = snapshot.StateCodec()  # decodes the layouts the partition names; encodes nothing
    image = snapshot.read_image(read_partition(config, topic, partition, lambda: False), codec)
    for data in image.states.values():
        try:
            yield codec.decode(data)
        except msgspec.DecodeError:
            log.warning("state.corrupt_record", partition=partition)


async def _survey(
    client: MarketoClient, lists: Mapping[AudienceId, ListId | None], wanted: drift.Desired
) -> dict[AudienceId, drift.Drift]:
    """Read each list's members and compare them with the wanted persons."""
    members: dict[AudienceId, dict[LeadId, str | None]] = {}
    for audience, list_id in lists.items():
        members[audience] = {}
        if list_id is not None:  # a missing list (dry run) has no members yet
            pages = client.list_members(list_id, EMAIL)
            members[audience] = drift.members_of([row async for page in pages for row in page])
    known = drift.known_lead_ids(members.values())
    return {
        a: drift.with_known_ids(drift.diff(wanted.by_audience[a], m), known)
        for a, m in members.items()
    }


class Repair:
    """Removes, then syncs persons without a lead id, then adds; all in batches of 300.

    Relies on Marketo's idempotence (re-adding is `added`, removing a non-member is
    1015). The worker is not told: its acked set may be stale for repaired persons (harmless).
    """

    def __init__(
        self, writer: ListWriter, fields: LeadFields, states: Mapping[str, ProfileState]
    ) -> None:
        self.writer = writer
        self.fields = fields
        self.states = states
        self.synced: dict[str, LeadId] = {}  # lead ids Marketo gave in this run
        # match_only: persons Marketo does not know are not created, as the worker does not
        # (counted, like the worker's `unmatched`, not refused: a rerun cannot change them)
        self.unmatched: set[str] = set()

    async def run(
        self, lists: Mapping[AudienceId, ListId], drifts: Mapping[AudienceId, drift.Drift]
    ) -> dict[AudienceId, Tally]:
        """Repair every list; return what was done to each."""
        tallies = {audience: Tally() for audience in drifts}
        for audience, gap in drifts.items():
            await self._remove(lists[audience], gap.to_remove, tallies[audience])
        await self._sync({w.email for d in drifts.values() for w in d.to_add if w.lead_id is None})
        stale: dict[AudienceId, list[drift.Wanted]] = {}
        for audience, gap in drifts.items():
            stale[audience] = await self._add(lists[audience], gap.to_add, tallies[audience])
        # a lead id from state or another list may be gone (merged, deleted): sync, add once more
        await self._sync({w.email for wanted in stale.values() for w in wanted})
        for audience, wanted in stale.items():
            fresh = [drift.Wanted(w.email, None) for w in wanted]
            await self._add(lists[audience], fresh, tallies[audience])
        return tallies

    async def _remove(self, list_id: ListId, lead_ids: Sequence[LeadId], tally: Tally) -> None:
        for chunk in _chunks(lead_ids):
            for result in await self.writer.remove_from_list(list_id, chunk):
                # 1015 "not in list" is what we wanted (someone removed it meanwhile)
                if result.status == "removed" or _code(result) == NOT_IN_LIST:
                    tally["removed"] += 1
                else:
                    tally["refused"] += 1
                    log.warning("resync.refused", op="remove", code=_code(result))

    async def _sync(self, emails: set[str]) -> None:
        action = "updateOnly" if self.fields.match_only else "createOrUpdate"
        for chunk in _chunks(sorted(emails - set(self.synced))):
            sendable: list[tuple[str, dict[str, object]]] = []
            for email in chunk:
                record, refusals = self.fields.record(email, self.states.get(email))
                if refusals:  # a mapped value Marketo would refuse: never sent
                    log.warning(
                        "resync.sync_refused", code="invalid_value", email=email_hash(email)
                    )
                else:
                    sendable.append((email, record))
            if not sendable:
                continue
            results = await self.writer.sync_leads(
                [record for _, record in sendable],
                action=action,
                lookup_field=self.fields.lookup_field,
            )
            for (email, _), result in zip(sendable, results, strict=True):
                if result.lead_id is not None and result.status in {"created", "updated"}:
                    self.synced[email] = result.lead_id
                elif self.fields.match_only and _code(result) == LEAD_NOT_FOUND:
                    self.unmatched.add(email)
                else:
                    code = _code(result)
                    log.warning("resync.sync_refused", code=code, email=email_hash(email))

    async def _add(
        self, list_id: ListId, wanted: Sequence[drift.Wanted], tally: Tally
    ) -> list[drift.Wanted]:
        """Add; return the persons whose old lead id Marketo no longer knows (1004)."""
        ready = [(w, w.lead_id or self.synced.get(w.email)) for w in wanted]
        for w, lead_id in ready:
            if lead_id is None:  # not synced
                tally["unmatched" if w.email in self.unmatched else "refused"] += 1
        pairs = [(w, lead_id) for w, lead_id in ready if lead_id is not None]
        stale: list[drift.Wanted] = []
        for chunk in _chunks(pairs):
            results = await self.writer.add_to_list(list_id, [lead_id for _, lead_id in chunk])
            for (w, _), result in zip(chunk, results, strict=True):
                if result.status == "added":
                    tally["added"] += 1
                elif w.lead_id is not None and _code(result) == LEAD_NOT_FOUND:
                    stale.append(w)
                else:
                    tally["refused"] += 1
                    log.warning("resync.refused", op="add", code=_code(result))
        return stale


def _chunks(items: Sequence[T]) -> Iterator[list[T]]:
    for start in range(0, len(items), MAX_BATCH):
        yield list(items[start : start + MAX_BATCH])


def _code(result: RecordResult) -> str:
    return result.reasons[0][0] if result.reasons else ""


def print_plan(
    drifts: Mapping[AudienceId, drift.Drift], lists: Mapping[AudienceId, ListId | None], out: TextIO
) -> None:
    """Print each list's differences (lead ids; hashed emails for new leads) and their cost."""
    header = ("audience", "list", "in Marketo", "desired", "to add", "to remove")
    rows = [
        (a, lists[a] or "missing", d.in_marketo, d.desired, len(d.to_add), len(d.to_remove))
        for a, d in drifts.items()
    ]
    print(_table(header, rows), file=out)
    for audience, gap in drifts.items():
        adds = [str(w.lead_id or f"new #{email_hash(w.email)}") for w in gap.to_add]
        for sign, ids in (("+", adds), ("-", [str(i) for i in gap.to_remove])):
            if ids:
                more = f" and {len(ids) - SHOWN} more" if len(ids) > SHOWN else ""
                print(f"{audience}: {sign} leads {', '.join(ids[:SHOWN])}{more}", file=out)
    calls = drift.repair_calls(drifts.values())
    creates = sum(1 for list_id in lists.values() if list_id is None)
    print(
        f"a repair would spend {calls.total + creates} calls: {calls.syncs} lead syncs, "
        f"{calls.adds} adds, {calls.removes} removes, {creates} list creations",
        file=out,
    )


def print_outcome(
    drifts: Mapping[AudienceId, drift.Drift], tallies: Mapping[AudienceId, Tally], out: TextIO
) -> None:
    """Print, per list: in Marketo, desired, to add, to remove, added, removed, refused."""
    header = ("audience", "in Marketo", "desired", "to add", "to remove", "added", "removed")
    rows = [
        (a, d.in_marketo, d.desired, len(d.to_add), len(d.to_remove), *counts)
        for a, d in drifts.items()
        for counts in ([tallies[a][key] for key in ("added", "removed", "refused")],)
    ]
    print(_table((*header, "refused"), rows), file=out)
    unmatched = sum(t["unmatched"] for t in tallies.values())
    if unmatched:
        print(f"{unmatched} persons unknown to Marketo were not created (match_only)", file=out)


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    width = max(len(str(cell)) for row in (header, *rows) for cell in row[:1])
    return "\n".join(
        f"{row[0]!s:<{width}}" + "".join(f"{cell!s:>12}" for cell in row[1:])
        for row in (header, *rows)
    )


COMMAND = Command(arguments, run, credentials=_always, logs=True)
main = COMMAND.main
