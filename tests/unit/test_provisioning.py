"""Start-up list provisioning: errors name the audience's key in the configuration file."""

from __future__ import annotations

import asyncio

import pytest

from worker.core.ids import ListId
from worker.errors import ConfigError
from worker.marketo.responses import FolderInfo, ListInfo
from worker.settings import Audience
from worker.startup.provisioning import find_lists, resolve_lists


class OneList:
    """A Marketo instance with one static list, France (id 7), and no folder."""

    async def find_folder(self, name: str) -> FolderInfo | None:
        return None

    async def find_list_by_name(self, name: str) -> ListInfo | None:
        return (
            ListInfo(id=ListId(7), name=name, folder_id=None, description="")
            if name == "France"
            else None
        )

    async def get_list(self, list_id: ListId) -> ListInfo | None:
        return None

    async def create_list(self, name: str, folder_id: int, description: str) -> ListInfo:
        raise AssertionError("no list is created when the folder is missing")


AUDIENCES = [
    Audience.model_validate(
        {"id": "fr", "name": "France", "rule": 'country == "FR"', "list": {"name": "France"}}
    ),
    Audience.model_validate(
        {"id": "x", "name": "X", "rule": 'country == "DE"', "list": {"id": 4242}}
    ),
]


def test_missing_list_is_named_by_its_audience_key_when_only_some_are_resolved() -> None:
    """Resolving only audience x (second in the file) reports `audiences[1]`, not `audiences[0]`."""
    only = frozenset({"x"})
    with pytest.raises(ConfigError) as raised:
        asyncio.run(resolve_lists(OneList(), AUDIENCES, "Audiences", only=only))
    assert str(raised.value) == "audiences[1].list.id: static list 4242 not found"


def test_audiences_left_out_are_not_resolved() -> None:
    """Resolving only France returns its list and never looks for x's missing one."""
    found = asyncio.run(resolve_lists(OneList(), AUDIENCES, "Audiences", only=frozenset({"fr"})))
    assert found == {"fr": 7}


class WithFolder(OneList):
    """OneList with the folder "Audiences" (id 3), where lists can be created."""

    async def find_folder(self, name: str) -> FolderInfo | None:
        return FolderInfo(id=3, name=name, folder_type="Folder", path="/Audiences", is_system=False)

    async def create_list(self, name: str, folder_id: int, description: str) -> ListInfo:
        return ListInfo(id=ListId(8), name=name, folder_id=folder_id, description=description)


def test_each_step_is_reported_with_its_count() -> None:
    """`on_step` hears each audience's lookup and each creation, numbered among those resolved."""
    new = Audience.model_validate(
        {"id": "de", "name": "Germany", "rule": 'country == "DE"', "list": {"name": "Germany"}}
    )
    steps: list[str] = []
    asyncio.run(resolve_lists(WithFolder(), [AUDIENCES[0], new], "Audiences", on_step=steps.append))
    assert steps == ["finding lists 1/2", "finding lists 2/2", "creating lists 2/2"]


def test_finding_creates_nothing_and_gives_none_for_a_missing_list_by_name() -> None:
    """`find_lists` (resync's dry run) returns France's list and None for Germany, creating none."""
    new = Audience.model_validate(
        {"id": "de", "name": "Germany", "rule": 'country == "DE"', "list": {"name": "Germany"}}
    )
    assert asyncio.run(find_lists(OneList(), [AUDIENCES[0], new])) == {"fr": 7, "de": None}


def test_finding_names_a_missing_list_by_id_by_its_audience_key() -> None:
    """`find_lists` refuses a list given by id that does not exist, as start-up does."""
    with pytest.raises(ConfigError) as raised:
        asyncio.run(find_lists(OneList(), AUDIENCES, only=frozenset({"x"})))
    assert str(raised.value) == "audiences[1].list.id: static list 4242 not found"
