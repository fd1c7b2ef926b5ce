"""Identifiers and small value types shared by the core: named so signatures say what they carry."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NewType, TypeAlias

ProfileId = NewType("ProfileId", str)
AudienceId = NewType("AudienceId", str)
ListId = NewType("ListId", int)
LeadId = NewType("LeadId", int)
# A value as JSON decodes it: what events carry as attributes and what rules compare.
JsonValue: TypeAlias = bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"] | None


class Op(StrEnum):
    """A membership change sent to Marketo."""

    ADD = "add"
    REMOVE = "remove"


@dataclass(slots=True)  # not frozen: built for every record, and frozen init costs 2x
class Record:
    """One input record as read from Kafka: where it was, and its raw key and value."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
