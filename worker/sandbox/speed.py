"""Measure how many calls per second a running sandbox answers (run it with `--no-limits`).

The load is the worker's hot path: membership add/remove of 300 ids, alternating.
"""

import asyncio
import time
import uuid

import aiohttp

from worker.sandbox.process import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

_BATCH = 300


async def _setup(session: aiohttp.ClientSession, url: str) -> int:
    records = [{"email": f"speed-{i}@example.com"} for i in range(_BATCH)]
    async with session.post(f"{url}/rest/v1/leads.json", json={"input": records}) as r:
        await r.read()
    name = f"speed-{uuid.uuid4()}"
    form = {"name": name, "folder": '{"id":12,"type":"Folder"}'}
    async with session.post(f"{url}/rest/asset/v1/staticLists.json", data=form) as r:
        created = await r.json(content_type=None)
    return int(created["result"][0]["id"])


async def _worker(session: aiohttp.ClientSession, url: str, list_id: int, deadline_s: float) -> int:
    body = {"input": [{"id": i} for i in range(1, _BATCH + 1)]}
    calls = 0
    path = f"{url}/rest/v1/lists/{list_id}/leads.json"
    while time.monotonic() < deadline_s:
        method = "POST" if calls % 2 == 0 else "DELETE"
        async with session.request(method, path, json=body) as r:
            await r.read()
        calls += 1
    return calls


async def _measure(url: str, seconds: float, client_id: str, secret: str, workers: int) -> float:
    query = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{url}/identity/oauth/token", params=query) as r,
    ):
        token = (await r.json(content_type=None))["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=workers)
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
        list_id = await _setup(session, url)
        started_s = time.monotonic()
        deadline_s = started_s + seconds
        counts = await asyncio.gather(
            *(_worker(session, url, list_id, deadline_s) for _ in range(workers))
        )
        return sum(counts) / (time.monotonic() - started_s)


def measure(
    url: str,
    seconds: float,
    *,
    client_id: str = DEFAULT_CLIENT_ID,
    client_secret: str = DEFAULT_CLIENT_SECRET,
    workers: int = 8,
) -> float:
    """Calls per second answered by the sandbox at `url` over `seconds` of 300-id add/remove."""
    return asyncio.run(_measure(url, seconds, client_id, client_secret, workers))
