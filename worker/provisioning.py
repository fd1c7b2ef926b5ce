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


class ListDirectory(Protocol):
    """The asset calls provisioning makes (implemented by worker.marketo.client)."""

    async def find_folder(self, name: str) -> FolderInfo | None: ...
    async def find_list_by_name(self, name: str) -> ListInfo | None: ...
    async def get_list(self, list_id: ListId) -> ListInfo | None: ...
    async def create_list(self, name: str, folder_id: int, description: str) -> ListInfo: ...


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
    chosen = [(i, a) for i, a in enumerate(audiences) if only is None or a.id in only]
    for step, (index, audience) in enumerate(chosen, start=1):
        on_step(f"finding lists {step}/{len(chosen)}")
        ref = audience.list_ref
        if ref.id is not None:
            found = await directory.get_list(ListId(ref.id))
            if found is None:
                raise ConfigError(f"audiences[{index}].list.id: static list {ref.id} not found")
            ids[AudienceId(audience.id)] = found.id
            continue
        assert ref.name is not None  # ListRef guarantees exactly one of id or name
        found = await directory.find_list_by_name(ref.name)
        if found is None:
            folder = folder or await directory.find_folder(folder_name)
            if folder is None:
                raise ConfigError(f"marketo.list_folder: folder {folder_name!r} not found")
            description = f"Audience {audience.id}, kept by marketo-audience-worker"
            on_step(f"creating lists {step}/{len(chosen)}")
            found = await directory.create_list(ref.name, folder.id, description)
            log.info("list.created", audience=audience.id, list_id=found.id)
        ids[AudienceId(audience.id)] = found.id
    return ids
