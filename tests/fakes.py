"""Fakes for ports, shared by test modules (never stand-ins for Kafka or the sandbox).

The top part serves the loop and the flusher: a clock that moves when told, the consumer and
publisher ports, a scripted Marketo list writer, and `run_until_idle`, which drives a loop until
a turn changes nothing (the fixtures that build them are in tests/unit/conftest.py).
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import parse_qs

import orjson
from aiohttp import test_utils, web

from worker.core.ids import AudienceId, LeadId, ListId, Record
from worker.core.outbox import Rejection
from worker.errors import CallAbandoned
from worker.loop import Loop

Changelog = list[tuple[bytes, bytes | None]]
Wanted = Callable[[], bool] | None
Headers = list[tuple[str, str | bytes | None]]


class FakeClock:
    """The loop's monotonic clock and its wall clock, moved together and only by `advance`."""

    def __init__(self, now: float = 0.0, wall: float = 0.0) -> None:
        self.now = now
        self.wall_at_zero = wall  # epoch seconds when `now` is 0

    def monotonic(self) -> float:
        """Seconds on the monotonic clock."""
        return self.now

    def time(self) -> float:
        """Epoch seconds on the wall clock."""
        return self.wall_at_zero + self.now

    def __call__(self) -> float:
        """Seconds on the monotonic clock: the clock itself is a `Callable[[], float]`."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Let `seconds` pass."""
        self.now += seconds


class FakeConsumer:
    """The input: hands out scripted batches, remembers what was resumed and committed."""

    def __init__(self, batches: Iterable[list[Record]] = ()) -> None:
        self.batches = deque(batches)
        self.resumed: set[int] = set()
        self.committed: dict[int, int] = {}

    def poll_batch(self, max_messages: int) -> list[Record]:
        """The next scripted batch, or none."""
        return self.batches.popleft() if self.batches else []

    def commit(self, offsets: Mapping[int, int]) -> dict[int, str | None]:
        """Every commit succeeds."""
        self.committed.update(offsets)
        return dict.fromkeys(offsets)

    def pause(self, partitions: set[int]) -> None:
        """Stop fetching `partitions`."""
        self.resumed -= partitions

    def resume(self, partitions: set[int]) -> None:
        """Fetch `partitions` again."""
        self.resumed |= partitions


class FakePublisher:
    """Keeps every output record; every flush succeeds. State records also go to `changelog`,
    which successive owners of a partition may share; `refuse` makes Kafka refuse every dead
    letter for that reason."""

    def __init__(self, changelog: Changelog | None = None, refuse: str | None = None) -> None:
        self.changelog: Changelog = [] if changelog is None else changelog
        self.refuse = refuse
        self.states: list[tuple[int, bytes, bytes | None]] = []
        self.dead: list[dict[str, str | bytes | None]] = []
        self.rejections: list[Rejection] = []

    def dead_letter(
        self,
        key: bytes | None,
        value: bytes | None,
        headers: Headers,
        on_lost: Callable[[str], None],
    ) -> None:
        """Keep the dead letter's headers."""
        self.dead.append(dict(headers))
        if self.refuse is not None:
            on_lost(self.refuse)

    def state(self, partition: int, key: bytes, value: bytes | None) -> None:
        """Keep a state record."""
        self.states.append((partition, key, value))
        self.changelog.append((key, value))

    def rejection(
        self, rejection: Rejection, list_ids: Mapping[AudienceId, ListId], rejected_at_ms: int
    ) -> None:
        """Keep a rejection."""
        self.rejections.append(rejection)

    def poll(self) -> None:
        """Nothing to serve."""

    def flush(self, timeout_s: float) -> bool:
        """Everything is delivered."""
        return True


Failure = Callable[[ListId, int], Exception | None]
KNOWN_LEAD = LeadId(7)


def no_failure(_list_id: ListId, _leads: int) -> Exception | None:
    """A Marketo that answers every list call."""
    return None


@dataclass(frozen=True)
class Result:
    """One record's outcome in a Marketo answer, as fakes of the list writer give it."""

    status: str
    lead_id: LeadId | None = None
    reasons: tuple[tuple[str, str], ...] = ()


class ScriptedWriter:
    """Marketo's list writer: list membership and persons as Marketo holds them, with answers a
    test scripts. `fail(list, leads)` may raise for a list call; with `hold_adds` an add lands
    at once but answers only once `release` is set; calls wait for the budget `slot` and
    person deletions for `deletes` (both set at first)."""

    def __init__(self, lead: LeadId = KNOWN_LEAD, fail: Failure = no_failure) -> None:
        self.lead = lead  # the lead id every lead sync answers
        self.fail = fail
        self.members: set[LeadId] = set()
        self.persons = {lead}
        self.sizes: list[int] = []  # the leads of every add tried
        self.added: list[ListId] = []  # the lists of every add that passed
        self.hold_adds = False
        self.release = asyncio.Event()
        self.slot = asyncio.Event()  # the budget slot calls wait for, as the transport does
        self.slot.set()
        self.deletes = asyncio.Event()
        self.deletes.set()

    async def sync_leads(
        self, records: Sequence[Mapping[str, object]], *, action: str, lookup_field: str
    ) -> list[Result]:
        """Every person is known (or created) as `lead`."""
        return [Result("updated", self.lead) for _ in records]

    async def _list_call(self, list_id: ListId, leads: int, still_wanted: Wanted) -> None:
        await self.slot.wait()
        if still_wanted is not None and not still_wanted():
            raise CallAbandoned("not ours any more")
        error = self.fail(list_id, leads)
        if error is not None:
            raise error

    async def add_to_list(
        self, list_id: ListId, lead_ids: Sequence[LeadId], still_wanted: Wanted = None
    ) -> list[Result]:
        """Add the leads, answering at once unless adds are held."""
        self.sizes.append(len(lead_ids))
        await self._list_call(list_id, len(lead_ids), still_wanted)
        self.members |= set(lead_ids)  # the add lands in Marketo...
        self.added.append(list_id)
        if self.hold_adds:
            await self.release.wait()  # ...but its answer is slow
        return [Result("added") for _ in lead_ids]

    async def remove_from_list(
        self, list_id: ListId, lead_ids: Sequence[LeadId], still_wanted: Wanted = None
    ) -> list[Result]:
        """Remove the leads."""
        await self._list_call(list_id, len(lead_ids), still_wanted)
        self.members -= set(lead_ids)
        return [Result("removed") for _ in lead_ids]

    async def delete_leads(
        self, lead_ids: Sequence[LeadId], still_wanted: Wanted = None
    ) -> list[Result]:
        """Delete the persons, once `deletes` is set."""
        await self.deletes.wait()
        self.persons -= set(lead_ids)
        return [Result("deleted") for _ in lead_ids]


async def run_until_idle(loop: Loop, max_turns: int = 1000) -> None:
    """Turn `loop` until two turns in a row change nothing: no record read, no restore running,
    no Marketo call started or ended. (Two: a turn that commits awaits Kafka's flush, and a
    call may start and end unseen meanwhile.) Time passes only as the fake clock is moved; a
    call that waits for a test's event stays out."""
    quiet = 0
    for _ in range(max_turns):
        before = set(loop.flusher.tasks)
        read = await loop.run_once()
        if loop.restores.tasks:  # they read in a thread: wait for them
            await asyncio.wait(set(loop.restores.tasks.values()))
            quiet = 0
            continue
        started = set(loop.flusher.tasks)
        for _ in range(3):  # a fake's call, and the callbacks of its end, run without I/O
            await asyncio.sleep(0)
        quiet = quiet + 1 if not read and before == started == loop.flusher.tasks else 0
        if quiet == 2:
            return
    raise AssertionError(f"the loop was still busy after {max_turns} turns")


# -- Marketo client fakes --


class RecordingLimiter:
    """An unlimited limiter that records how it was used."""

    def __init__(self) -> None:
        self.slots = 0
        self.rate_limited_codes: list[str] = []
        self.quota_exhausted_calls = 0

    def call(self) -> AbstractAsyncContextManager[None]:
        """Take a slot (always granted)."""
        return self._slot()

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        self.slots += 1
        yield

    def rate_limited(self, code: str) -> None:
        """Record a 606/615."""
        self.rate_limited_codes.append(code)

    def quota_exhausted(self) -> None:
        """Record a 607."""
        self.quota_exhausted_calls += 1


# --- Marketo over HTTP: a scripted fake server, for the client's and the transport's unit tests
# (the sandbox stands in for a faithful Marketo; this fake answers only what a test scripts).

IDENTITY = "/identity/oauth/token"
Reply = tuple[int, bytes]  # HTTP status (0: never answer within the client's timeout) and body


def ok(result: list[object], **extra: object) -> Reply:
    """A Lead DB success body."""
    return 200, orjson.dumps({"requestId": "1#2", "result": result, "success": True, **extra})


def fail(code: str) -> Reply:
    """A request-level failure body."""
    errors = [{"code": code, "message": "scripted"}]
    return 200, orjson.dumps({"requestId": "1#2", "success": False, "errors": errors})


@dataclass
class Seen:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeMarketo:
    """A scripted fake of Marketo for unit tests: per-path reply queues, tokens from a list."""

    tokens: list[tuple[str, int]] = field(default_factory=lambda: [("tok-1", 3600)])
    identity_status: int = 200
    scripts: dict[str, list[Reply]] = field(default_factory=dict)
    media: dict[str, str] = field(default_factory=dict)  # a path's reply type (default JSON)
    seen: list[Seen] = field(default_factory=list)
    hang: asyncio.Event = field(default_factory=asyncio.Event)

    def script(self, path: str, *replies: Reply) -> None:
        """Queue replies for `path`; when the queue is empty the fake answers an empty success."""
        self.scripts.setdefault(path, []).extend(replies)

    def calls(self, path: str) -> list[Seen]:
        """The requests seen on `path`."""
        return [s for s in self.seen if s.path == path]

    async def handle(self, request: web.Request) -> web.Response:
        """Answer from the script."""
        body = await request.read()
        query = parse_qs(request.query_string, keep_blank_values=True)
        self.seen.append(Seen(request.method, request.path, query, dict(request.headers), body))
        if request.path == IDENTITY:
            return self._token()
        queue = self.scripts.get(request.path)
        status, payload = queue.pop(0) if queue else ok([])
        if status == 0:
            await self.hang.wait()  # never answers within the client's timeout
        media = self.media.get(request.path, "application/json")
        return web.Response(status=status or 200, body=payload, content_type=media)

    def _token(self) -> web.Response:
        if self.identity_status != 200:
            body = b'{"error":"invalid_client","error_description":"Bad client credentials"}'
            return web.Response(status=self.identity_status, body=body)
        token, expires_in = self.tokens.pop(0) if len(self.tokens) > 1 else self.tokens[0]
        reply = {"access_token": token, "token_type": "bearer", "expires_in": expires_in}
        return web.json_response(reply)


class ServeMarketo(Protocol):
    """The `serve_marketo` fixture: serve a fake on 127.0.0.1 (over TLS with `tls`), get its URL."""

    async def __call__(self, fake: FakeMarketo, tls: ssl.SSLContext | None = None) -> str: ...


@asynccontextmanager
async def marketo_servers() -> AsyncIterator[ServeMarketo]:
    """Serve fakes until the block ends; then release their hung replies and stop the servers."""
    served: list[tuple[FakeMarketo, test_utils.TestServer]] = []

    async def serve(fake: FakeMarketo, tls: ssl.SSLContext | None = None) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", fake.handle)
        server = test_utils.TestServer(app, host="127.0.0.1")
        await server.start_server(ssl=tls)
        served.append((fake, server))
        return str(server.make_url("")).rstrip("/")

    try:
        yield serve
    finally:
        for fake, server in served:
            fake.hang.set()
            await server.close()
