"""Start-up checks against Marketo: credentials, mapped fields, folder and lists; and Kafka.

`startup_checks` is what `run` does before consuming (a problem is a ConfigError); `check_online`
is `validate --online`: the same field checks plus the lists `run` would find or create, without
creating anything; `online_problems` adds Kafka (reach, the input topic, the output topics
`run` would create). Every problem names its configuration key.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Protocol

from worker.core.fields import Converter, FieldSpec, check_mapping
from worker.core.marketo_api import NOT_A_LOOKUP_FIELD
from worker.errors import ConfigError, MarketoError, RequestRejected
from worker.kafka.preflight import TopicReport, inspect_topics
from worker.marketo.client import connect
from worker.marketo.responses import FieldInfo, FolderInfo
from worker.settings import Audience, Settings
from worker.startup.provisioning import ListReader, find_list

_PROBE_VALUE = "0"  # matches no lead, and is valid for the string, email and integer keys
_VALIDATE_ATTEMPTS = 2  # validate should answer quickly when Marketo is unreachable


class FieldDirectory(Protocol):
    """The describe and lookup calls the field checks make (worker.marketo.client)."""

    async def describe_fields(self) -> Sequence[FieldInfo]: ...
    async def find_leads(
        self, field: str, values: Sequence[str], fields: Sequence[str]
    ) -> Sequence[Mapping[str, object]]: ...


class MarketoDirectory(FieldDirectory, ListReader, Protocol):
    """Every read `check_online` makes; it never writes."""

    async def find_folder(self, name: str) -> FolderInfo | None: ...


def _mapping_pairs(settings: Settings) -> list[tuple[str, str]]:
    return [(mapping.source, mapping.field) for mapping in settings.mapping]


async def _field_specs(client: FieldDirectory) -> dict[str, FieldSpec]:
    fields = await client.describe_fields()
    return {f.name: FieldSpec(f.name, f.data_type, f.length, f.updateable) for f in fields}


async def _lookup_problems(client: FieldDirectory, lookup_field: str) -> list[str]:
    """Ask Marketo whether it accepts the lookup field as a filter (describe2's searchable)."""
    try:
        await client.find_leads(lookup_field, [_PROBE_VALUE], ["id"])
    except RequestRejected as exc:
        if exc.code != NOT_A_LOOKUP_FIELD:
            raise
        return [f"marketo.lookup_field: Marketo does not accept {lookup_field} as a lookup field"]
    return []


def _field_problems(settings: Settings, specs: Mapping[str, FieldSpec]) -> list[str]:
    return check_mapping(_mapping_pairs(settings), specs, settings.marketo.lookup_field)


def _lookup_known(problems: Sequence[str]) -> bool:
    return not any(p.startswith("marketo.lookup_field:") for p in problems)


async def startup_checks(settings: Settings, client: FieldDirectory) -> Converter:
    """Check the mapping against describe; return the converter for lead records."""
    specs = await _field_specs(client)
    problems = _field_problems(settings, specs)
    if _lookup_known(problems):
        problems += await _lookup_problems(client, settings.marketo.lookup_field)
    if problems:
        raise ConfigError("the mapping does not fit Marketo's fields\n" + "\n".join(problems))
    return Converter(_mapping_pairs(settings), specs)


def _connection_problem(exc: MarketoError, base_url: str) -> str:
    if exc.code == "http_401":
        return (
            "marketo.client_id: Marketo refused the credentials "
            "(MARKETO_CLIENT_ID / MARKETO_CLIENT_SECRET)"
        )
    if exc.code in {"connection", "timeout"} or exc.code.startswith("http_"):
        return f"marketo.base_url: no usable answer from {base_url}: {exc}"
    return f"marketo: describe failed: {exc}"


async def _list_problems(
    client: MarketoDirectory, audiences: Sequence[Audience], folder_name: str
) -> list[str]:
    """What `resolve_lists` would refuse at start-up: missing lists, or no folder to create in."""
    problems: list[str] = []
    to_create: list[str] = []
    for index, audience in enumerate(audiences):
        try:
            if await find_list(client, index, audience) is None:
                to_create.append(f"audiences[{index}].list.name")
        except ConfigError as exc:  # every missing list is named, not only the first
            problems.append(str(exc))
    if to_create and await client.find_folder(folder_name) is None:
        problems.append(
            f"marketo.list_folder: folder {folder_name!r} not found; "
            f"it is needed to create the lists of {', '.join(to_create)}"
        )
    return problems


async def check_online(settings: Settings, client: MarketoDirectory) -> list[str]:
    """Every problem `run` would meet in Marketo at start-up, each naming its key."""
    m = settings.marketo
    try:
        # the first call also fetches a token: a refusal here is about the credentials
        specs = await _field_specs(client)
    except MarketoError as exc:
        return [_connection_problem(exc, m.base_url)]
    problems = _field_problems(settings, specs)
    try:
        if _lookup_known(problems):
            problems += await _lookup_problems(client, m.lookup_field)
        problems += await _list_problems(client, settings.audiences, m.list_folder)
    except MarketoError as exc:
        problems.append(f"marketo: a check failed before it could answer: {exc}")
    return problems


class _Unmetered:
    """The client's limiter port, without a budget: validate makes a handful of sequential
    calls, where the group budget is for a running worker."""

    @asynccontextmanager
    async def call(self) -> AsyncIterator[None]:
        yield

    def rate_limited(self, code: str) -> None:
        """Nothing to slow down: the client's own backoff is enough for a few calls."""

    def quota_exhausted(self) -> None:
        """Reported as a problem by the caller; nothing to park."""


async def _check_with_client(settings: Settings) -> list[str]:
    client = connect(settings.marketo, _Unmetered(), max_attempts=_VALIDATE_ATTEMPTS)
    async with client:
        return await check_online(settings, client)


def _kafka_report(settings: Settings) -> TopicReport:
    k = settings.kafka
    return inspect_topics(
        k.client_config(), k.topic, k.dead_letter_topic, k.rejections_topic, k.state_topic
    )


def online_problems(settings: Settings) -> tuple[TopicReport, list[str]]:
    """`validate --online`'s checks: Kafka's report, and every problem in Kafka then Marketo."""
    kafka = _kafka_report(settings)
    return kafka, kafka.problems + asyncio.run(_check_with_client(settings))
