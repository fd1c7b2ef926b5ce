"""`marketo-worker resync CONFIG`: repair drift between static lists and audiences, both ways.

Desired membership comes from the worker's state topic, read but never written (the worker owns
it). Spends the WHOLE group budget (share 1.0): run it while the worker is quiet, or lower
WORKER_MARKETO__BUDGET__CALLS_PER_WINDOW for it.

Adds go as lead syncs and list adds (2 calls per 300 persons) or, for a list with at least
`flush.bulk_threshold` persons to add (not with `match_only`), as bulk imports with the list's id
(worker/bulk_repair.py: a handful of calls per file of up to 10 MB).

A list is read by REST pages (1 call per 300 members) or, above `--bulk-above` members, by a bulk
extract of its ids and emails (a handful of calls: worker/core/extract_plan.py says where the
line is and why). Marketo's list lookup gives no member count, so the audience's desired size
stands for the list's: an audience above the line is extracted at once, and a list paged by REST
that proves larger than the line is extracted instead. An interrupted run (Ctrl-C, SIGTERM) or
one that gives up cancels its extract job.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import signal
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import TextIO, TypeVar

import msgspec
import structlog

from worker.bulk_repair import BulkRepair
from worker.commands.command import Command, config_parser
from worker.commands.exit_codes import ExitCode
from worker.core import drift, snapshot
from worker.core.bulk_csv import read_export
from worker.core.extract_plan import DEADLINE_S, DEFAULT_BULK_ABOVE, REFRESH_S, ExtractPlan
from worker.core.ids import AudienceId, LeadId, ListId
from worker.core.marketo_api import LEAD_NOT_FOUND, MAX_BATCH, NOT_IN_LIST
from worker.core.profile import ProfileState
from worker.errors import ConfigError, ExportLimited, MarketoError
from worker.flusher import LeadFields, ListWriter, RecordResult
from worker.kafka.changelog import read_partition
from worker.kafka.replay import partition_count
from worker.marketo.bulk import BulkClient, ByteRange
from worker.marketo.client import MarketoClient, connect
from worker.marketo.limiter import limiter_for
from worker.marketo.responses import ExportState, ExportStatus
from worker.settings import Audience, Settings
from worker.startup.checks import startup_checks
from worker.startup.provisioning import find_lists, resolve_lists
from worker.telemetry.logging import email_hash

log = structlog.get_logger("worker.resync")
T = TypeVar("T")
EMAIL = ("id", "email")  # the member fields read: the lead id and the match key
SHOWN = 10  # differences listed per direction and list by --dry-run
Tally = Counter[str]  # what a repair did to one list: added, removed, refused, unmatched
Sleep = Callable[[float], Awaitable[None]]
RUNNING = frozenset({ExportState.CREATED, ExportState.QUEUED, ExportState.PROCESSING})


def arguments(argv: list[str]) -> argparse.Namespace:
    """Parse `resync CONFIG [--audience ID] [--dry-run] [--bulk-above N] [--bulk-poll-s S]
    [--bulk-wait-s S]`."""
    parser = config_parser(
        "resync",
        description="Compare static lists with the audiences in the worker's state; repair drift.",
        epilog="exit codes: 0 repaired (or, with --dry-run, the differences printed); 1 Marketo "
        "refused something or stopped the run, a bulk extract included (running again is safe); "
        "2 configuration error, unknown --audience or Kafka unreachable; 130 interrupted "
        "(Ctrl-C or SIGTERM; an extract job in progress is cancelled)",
    )
    parser.add_argument("--audience", help="only this audience id (default: all)")
    parser.add_argument("--dry-run", action="store_true", help="report the drift; change nothing")
    parser.add_argument(
        "--bulk-above",
        type=_count,
        default=DEFAULT_BULK_ABOVE,
        metavar="N",
        help="read a list of more than N members by a bulk extract instead of REST pages "
        f"(default {DEFAULT_BULK_ABOVE:,}: from there the extract's handful of calls beats a "
        "call per 300 members)",
    )
    parser.add_argument(
        "--bulk-poll-s",
        type=_seconds,
        default=REFRESH_S,
        metavar="S",
        help=f"first wait between extract status reads, doubling to 5 minutes (default "
        f"{REFRESH_S:g}: Marketo refreshes a job's status once a minute)",
    )
    parser.add_argument(
        "--bulk-wait-s",
        type=_seconds,
        default=DEADLINE_S,
        metavar="S",
        help=f"give up (and cancel the job) when an extract is not done after S seconds "
        f"(default {DEADLINE_S:g})",
    )
    return parser.parse_args(argv)


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"not a count of members: {text}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"not a positive number of seconds: {text}")
    return value


def run(args: argparse.Namespace, settings: Settings) -> ExitCode:
    """Resync the chosen audiences (a ConfigError is the runner's exit 2)."""
    chosen = [a for a in settings.audiences if args.audience in (None, a.id)]
    if not chosen:
        known = ", ".join(a.id for a in settings.audiences)
        print(f"--audience: unknown audience {args.audience!r} (known: {known})", file=sys.stderr)
        return ExitCode.USAGE
    plan = ExtractPlan(
        bulk_above=args.bulk_above, refresh_s=args.bulk_poll_s, deadline_s=args.bulk_wait_s
    )
    try:
        return asyncio.run(
            resync(settings, chosen, dry_run=args.dry_run, out=sys.stdout, plan=plan)
        )
    except MarketoError as exc:  # every repair is idempotent: running again is safe
        print(f"resync stopped: {exc}", file=sys.stderr)
        return ExitCode.INCOMPLETE
    except (KeyboardInterrupt, asyncio.CancelledError):  # SIGTERM cancels the run's task
        print("resync interrupted (running again is safe)", file=sys.stderr)
        return ExitCode.INTERRUPTED


def _always(_args: argparse.Namespace) -> bool:
    return True


async def resync(
    settings: Settings,
    audiences: Sequence[Audience],
    *,
    dry_run: bool,
    out: TextIO,
    plan: ExtractPlan | None = None,
) -> ExitCode:
    """Read state and lists, then print the drift (dry run) or repair it and print the outcome;
    SIGTERM cancels the run as Ctrl-C does, so an extract job in progress is cancelled."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    if task is not None:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await _resync(settings, audiences, dry_run, out, plan or ExtractPlan())
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


async def _resync(
    settings: Settings,
    audiences: Sequence[Audience],
    dry_run: bool,
    out: TextIO,
    plan: ExtractPlan,
) -> ExitCode:
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
        drifts = await _survey(ListReader(client, plan), lists, wanted)
        if dry_run:
            print_plan(drifts, lists, out)
            return ExitCode.OK
        fields = LeadFields(
            m.lookup_field,
            await startup_checks(settings, client),
            match_only=m.person_creation == "match_only",
        )
        resolved = {audience: list_id for audience, list_id in lists.items() if list_id is not None}
        # an import creates the persons it does not match: never with match_only
        bulk_above = None if fields.match_only else settings.flush.bulk_threshold or None
        repair = Repair(
            client,
            fields,
            wanted.states,
            bulk=BulkRepair(client.bulk(), fields, wanted.states),
            bulk_above=bulk_above,
        )
        tallies = await repair.run(resolved, drifts)
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
    reader: ListReader, lists: Mapping[AudienceId, ListId | None], wanted: drift.Desired
) -> dict[AudienceId, drift.Drift]:
    """Read each list's members and compare them with the wanted persons."""
    members: dict[AudienceId, dict[LeadId, str | None]] = {}
    for audience, list_id in lists.items():
        members[audience] = {}
        if list_id is not None:  # a missing list (dry run) has no members yet
            rows = await reader.members(list_id, desired=len(wanted.by_audience[audience]))
            members[audience] = drift.members_of(rows)
    known = drift.known_lead_ids(members.values())
    return {
        a: drift.with_known_ids(drift.diff(wanted.by_audience[a], m), known)
        for a, m in members.items()
    }


class ListReader:
    """A static list's members (`id`, `email`): REST pages for a small list, a bulk extract
    above the plan's line (module docstring). `sleep` and `clock` are injected for tests."""

    def __init__(
        self,
        client: MarketoClient,
        plan: ExtractPlan,
        *,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.plan = plan
        self.sleep = sleep
        self.clock = clock

    async def members(self, list_id: ListId, *, desired: int) -> list[dict[str, object]]:
        """The list's members as rows of `id` (int) and `email`."""
        if not self.plan.starts_in_bulk(desired):
            rows: list[dict[str, object]] = []
            async for page in self.client.list_members(list_id, EMAIL):
                rows.extend(page)
                if self.plan.switches(len(rows)):
                    break
            else:
                log.info("resync.list_read", list_id=list_id, lane="rest", members=len(rows))
                return rows
            log.info("resync.list_larger_than_audience", list_id=list_id, desired=desired)
        return await self.extract(list_id)

    async def extract(self, list_id: ListId) -> list[dict[str, object]]:
        """Read the list through one bulk extract job, cancelled if the read does not end well
        while the job may still run (interrupted, given up, a call failing)."""
        bulk = self.client.bulk()
        started = self.clock()
        try:
            export_id = await bulk.export_create(EMAIL, static_list_id=list_id)
        except ExportLimited as limited:
            raise _limit_error(limited) from limited
        try:
            status = await self._enqueue(bulk, export_id)
            status = await self._wait(bulk, export_id, status)
        except BaseException:  # the job may still run: nobody else would cancel it
            await _cancel(bulk, export_id)
            raise
        if status.status is ExportState.FAILED:
            raise MarketoError("export_failed", f"extract {export_id}: {status.error_msg}")
        if status.status is ExportState.CANCELLED:  # by another run with these credentials
            raise MarketoError("export_cancelled", f"extract {export_id} was cancelled")
        rows = await self._download(bulk, status)
        log.info(
            "resync.list_read",
            list_id=list_id,
            lane="extract",
            members=len(rows),
            seconds=round(self.clock() - started, 1),
        )
        return rows

    async def _enqueue(self, bulk: BulkClient, export_id: str) -> ExportStatus:
        refusals = 0
        while True:
            try:
                return await bulk.export_enqueue(export_id)
            except ExportLimited as limited:
                wait_s = self.plan.limited_wait_s(refusals)
                if limited.reason != "queue_full" or wait_s is None:
                    raise _limit_error(limited, refusals) from limited
            refusals += 1
            log.info("resync.export_queue_full", export_id=export_id, wait_s=wait_s)
            await self.sleep(wait_s)

    async def _wait(self, bulk: BulkClient, export_id: str, status: ExportStatus) -> ExportStatus:
        """Read the status with backoff until the job ends (completed, failed or cancelled);
        MarketoError when the deadline comes first."""
        enqueued, polls = self.clock(), 0
        while status.status in RUNNING:
            wait_s = self.plan.wait_s(polls)
            elapsed_s = self.clock() - enqueued
            if self.plan.gives_up(elapsed_s, wait_s):
                raise MarketoError(
                    "export_timeout",
                    f"extract {export_id} still {status.status} after {elapsed_s:.0f} s "
                    f"(--bulk-wait-s {self.plan.deadline_s:g}): cancelled",
                )
            await self.sleep(wait_s)
            status = await bulk.export_status(export_id)
            polls += 1
        return status

    async def _download(self, bulk: BulkClient, status: ExportStatus) -> list[dict[str, object]]:
        """The completed job's file, in ranges when large, checked against its size, checksum
        and record count."""
        size = status.file_size
        ranges: list[ByteRange | None] = (
            list(self.plan.ranges(size))
            if size is not None and size > self.plan.range_bytes
            else [None]
        )
        data = b"".join([await bulk.export_file(status.export_id, r) for r in ranges])
        _check_file(status, data)
        rows = read_export(data) if data else []
        if status.number_of_records is not None and len(rows) != status.number_of_records:
            raise MarketoError(
                "export_file",
                f"extract {status.export_id}: {len(rows)} rows for {status.number_of_records}",
            )
        try:  # the file's ids are text; the REST pages' are numbers, as drift reads them
            return [{"id": int(str(row["id"])), "email": row.get("email")} for row in rows]
        except (KeyError, ValueError) as exc:
            raise MarketoError("export_file", f"extract {status.export_id}: bad id") from exc


def _check_file(status: ExportStatus, data: bytes) -> None:
    if status.file_size is not None and len(data) != status.file_size:
        raise MarketoError(
            "export_file", f"extract {status.export_id}: {len(data)} bytes for {status.file_size}"
        )
    checksum = status.file_checksum or ""
    if checksum.startswith("sha256:") and hashlib.sha256(data).hexdigest() != checksum[7:]:
        raise MarketoError("export_file", f"extract {status.export_id}: checksum mismatch")


def _limit_error(limited: ExportLimited, refusals: int = 0) -> MarketoError:
    """1029 as the operator's error: which limit, and what to do."""
    if limited.reason == "daily_allocation":
        why = (
            "Marketo's daily bulk extract allocation (500 MB) is spent until midnight Central "
            "Time: run again then, or read by REST pages with --bulk-above above the list's size"
        )
    else:
        why = f"Marketo's extract queue was still full after {refusals} waits: run again later"
    return MarketoError(limited.code, why)


async def _cancel(bulk: BulkClient, export_id: str) -> None:
    """Cancel a job left behind; a failure is logged, never raised over the reason we stop."""
    try:
        await bulk.export_cancel(export_id)
    except MarketoError as exc:  # the reason we stop matters more; the job ends by itself
        log.warning("resync.export_cancel_failed", export_id=export_id, error=str(exc))
    else:
        log.info("resync.export_cancelled", export_id=export_id)


class Repair:
    """Removes, then syncs persons without a lead id, then adds; all in batches of 300. A list
    with at least `bulk_above` persons to add gets them by bulk import instead (`bulk`).

    Relies on Marketo's idempotence (re-adding is `added`, removing a non-member is
    1015). The worker is not told: its acked set may be stale for repaired persons (harmless).
    """

    def __init__(
        self,
        writer: ListWriter,
        fields: LeadFields,
        states: Mapping[str, ProfileState],
        *,
        bulk: BulkRepair | None = None,
        bulk_above: int | None = None,
    ) -> None:
        self.writer = writer
        self.fields = fields
        self.states = states
        self.bulk = bulk
        self.bulk_above = bulk_above  # None: every add goes by REST
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
        bulk = {a for a, gap in drifts.items() if self._in_bulk(len(gap.to_add))}
        rest = {a: gap for a, gap in drifts.items() if a not in bulk}
        for audience in bulk:
            assert self.bulk is not None  # _in_bulk says so
            await self.bulk.add(lists[audience], drifts[audience].to_add, tallies[audience])
        await self._sync({w.email for d in rest.values() for w in d.to_add if w.lead_id is None})
        stale: dict[AudienceId, list[drift.Wanted]] = {}
        for audience, gap in rest.items():
            stale[audience] = await self._add(lists[audience], gap.to_add, tallies[audience])
        # a lead id from state or another list may be gone (merged, deleted): sync, add once more
        await self._sync({w.email for wanted in stale.values() for w in wanted})
        for audience, wanted in stale.items():
            fresh = [drift.Wanted(w.email, None) for w in wanted]
            await self._add(lists[audience], fresh, tallies[audience])
        return tallies

    def _in_bulk(self, adds: int) -> bool:
        """Tell whether a list's `adds` go by bulk import: at the threshold or above."""
        return self.bulk is not None and self.bulk_above is not None and adds >= self.bulk_above

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
