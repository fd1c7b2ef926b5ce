"""Scenario 6, the sandbox alone with its limits off: how many calls a second it answers, for
small calls and for the worker's own shape (300-record lead syncs and list adds)."""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from typing import Any

import aiohttp
import orjson

from tests.bench.context import Bench
from tests.bench.results import Metric, Sample
from worker.sandbox.process import SandboxProcess

NAME = "sandbox"
CLIENTS = 10  # Marketo's concurrency limit: what one instance ever sees
METRICS = [
    Metric("small_calls_per_s", "calls/s", ">=", 2_000, "list add of 1 lead, 10 connections"),
    Metric("batch_calls_per_s", "calls/s", note="1 sync of 300 leads : 2 list adds of 300"),
    Metric("batch_records_per_s", "records/s"),
]


def measure(bench: Bench, runs: int) -> list[Sample]:
    """Each run: a fresh sandbox, loaded by `CLIENTS` concurrent connections from this process."""
    duration_s = 1.0 if bench.quick else 10.0
    return [asyncio.run(_one_run(duration_s)) for _ in range(runs)]


async def _one_run(duration_s: float) -> Sample:
    with SandboxProcess("--no-limits") as sandbox:
        token = sandbox.token()
        connector = aiohttp.TCPConnector(limit=CLIENTS)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        async with aiohttp.ClientSession(sandbox.url, connector=connector, headers=headers) as s:
            lead_ids = await _sync(s, [f"s{n}@example.com" for n in range(300)])
            list_id = await _create_list(s)
        add_one = _request(token, f"/rest/v1/lists/{list_id}/leads.json", _ids(lead_ids[:1]))
        add_all = _request(token, f"/rest/v1/lists/{list_id}/leads.json", _ids(lead_ids))
        emails = [{"email": f"s{n}@example.com"} for n in range(300)]
        sync = {"action": "createOrUpdate", "lookupField": "email", "input": emails}
        sync_all = _request(token, "/rest/v1/leads.json", orjson.dumps(sync))
        port = int(urllib.parse.urlsplit(sandbox.url).port or 80)
        small = await _load(port, duration_s, [add_one])
        batches = await _load(port, duration_s, [sync_all, add_all, add_all])
    return {
        "small_calls_per_s": small,
        "batch_calls_per_s": batches,
        "batch_records_per_s": batches * 300,
    }


def _ids(lead_ids: list[int]) -> bytes:
    return orjson.dumps({"input": [{"id": i} for i in lead_ids]})


def _request(token: str, path: str, body: bytes) -> bytes:
    """One HTTP/1.1 keep-alive POST, encoded once: the client must cost less than the server."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _load(port: int, duration_s: float, requests: list[bytes]) -> float:
    """Send `requests` in turn from CLIENTS connections for `duration_s`; return answers/s."""
    done = 0
    end = time.monotonic() + duration_s

    async def client() -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.monotonic() < end:
                for request in requests:
                    writer.write(request)
                    await _read_answer(reader)
                    done += 1
        finally:
            writer.close()
            await writer.wait_closed()

    started = time.monotonic()
    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return done / (time.monotonic() - started)


async def _read_answer(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"sandbox answered {head[:40]!r}")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    body = await reader.readexactly(length)
    if b'"success":true' not in body:
        raise RuntimeError(f"sandbox refused: {body[:200]!r}")


async def _post(session: aiohttp.ClientSession, path: str, body: object) -> list[dict[str, Any]]:
    async with session.post(path, data=orjson.dumps(body)) as response:
        reply = orjson.loads(await response.read())
    if not reply.get("success"):
        raise RuntimeError(f"{path}: {reply.get('errors')}")
    return list(reply.get("result") or [])


async def _sync(session: aiohttp.ClientSession, emails: list[str]) -> list[int]:
    body = {
        "action": "createOrUpdate",
        "lookupField": "email",
        "input": [{"email": e} for e in emails],
    }
    rows = await _post(session, "/rest/v1/leads.json", body)
    return [int(row["id"]) for row in rows]


async def _create_list(session: aiohttp.ClientSession) -> int:
    async with session.get("/rest/asset/v1/folder/byName.json", params={"name": "Audiences"}) as r:
        folder = orjson.loads(await r.read())["result"][0]["id"]
    form = urllib.parse.urlencode(
        {"name": "bench", "folder": orjson.dumps({"id": folder, "type": "Folder"}).decode()}
    )
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    async with session.post("/rest/asset/v1/staticLists.json", data=form, headers=headers) as r:
        reply = orjson.loads(await r.read())
    return int(reply["result"][0]["id"])
