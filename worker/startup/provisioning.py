"""Start-up: the static list behind each audience, found or created.

`list: {name: ...}` is found by name or created in `marketo.list_folder` (a create race is
resolved by reading by name again); `list: {id: ...}` must exist. Problems are ConfigErrors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import structlog

from worker.core.ids import AudienceId, ListId
from worker.errors import ConfigError
from worker.marketo.responses import FolderInfo, ListInfo
from worker.settings import Audience

log = structlog.get_logger("worker.provisioning")


class ListReader(Protocol):
    """The reads that find an audience's list (implemented by worker.marketo.client)."""

    async def find_list_by_name(self, name: str) -> ListInfo | None: ...
    async def get_list(self, list_id: ListId) -> ListInfo | None: ...


class ListDirectory(ListReader, Protocol):
    """The asset calls provisioning makes (implemented by worker.marketo.client)."""

    async def find_folder(self, name: str) -> FolderInfo | None: ...
    async def create_list(self, name: str, folder_id: int, description: str) -> ListInfo: ...


def _chosen(
    audiences: Sequence[Audience], only: frozenset[str] | None
) -> list[tuple[int, Audience]]:
    """The audiences to work on, each with its index in the file (errors name `audiences[i]`)."""
    return [(i, a) for i, a in enumerate(audiences) if only is None or a.id in only]


async def find_list(directory: ListReader, index: int, audience: Audience) -> ListId | None:
    """The list of `audiences[index]`; None for a list by name that does not exist (yet); a
    ConfigError for a list by id that does not exist."""
    ref = audience.list_ref
    if ref.id is not None:
        found = await directory.get_list(ListId(ref.id))
        if found is None:
            raise ConfigError(f"audiences[{index}].list.id: static list {ref.id} not found")
        return found.id
    assert ref.name is not None  # ListRef guarantees exactly one of id or name
    found = await directory.find_list_by_name(ref.name)
    return None if found is None else found.id


async def find_lists(
    directory: ListReader, audiences: Sequence[Audience], *, only: frozenset[str] | None = None
) -> dict[AudienceId, ListId | None]:
    """Each audience's list id as `resolve_lists` finds it, creating nothing: a list by name
    that does not exist is None (`resync --dry-run` counts its creation)."""
    return {
        AudienceId(audience.id): await find_list(directory, index, audience)
        for index, audience in _chosen(audiences, only)
    }


async def resolve_lists(
    directory: ListDirectory,
    audiences: Sequence[Audience],
    folder_name: str,
    *,
    only: frozenset[str] | None = None,
    on_step: Callable[[str], None] = lambda _: None,
) -> dict[AudienceId, ListId]:
    """Return each audience's list id, creating lists given by name when they are missing.

    `audiences` is the whole configured list, so errors name an audience's key in the file
    (`audiences[1]`); `only` limits the work to those audience ids (`resync --audience`).
    `on_step` hears each step ("finding lists 3/20", "creating lists 3/20"): start-up logs it
    when it waits for the budget.
    """
    ids: dict[AudienceId, ListId] = {}
    folder: FolderInfo | None = None
    chosen = _chosen(audiences, only)
    for step, (index, audience) in enumerate(chosen, start=1):
        on_step(f"finding lists {step}/{len(chosen)}")
        found = await find_list(directory, index, audience)
        if found is None:
            assert audience.list_ref.name is not None  # a list by id is found or refused
            folder = folder or await directory.find_folder(folder_name)
            if folder is None:
                raise ConfigError(f"marketo.list_folder: folder {folder_name!r} not found")
            description = f"Audience {audience.id}, kept by marketo-audience-worker"
            on_step(f"creating lists {step}/{len(chosen)}")
            created = await directory.create_list(audience.list_ref.name, folder.id, description)
            log.info("list.created", audience=audience.id, list_id=created.id)
            found = created.id
        ids[AudienceId(audience.id)] = found
    return ids
