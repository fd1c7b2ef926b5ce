"""The API's paths and methods, mapped to handlers; unknown path 610, wrong method 605.

Also fixes how each endpoint takes its body: JSON (Lead DB writes), form (Asset writes), query, or
multipart (bulk import).
"""

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from worker.sandbox.envelope import ApiError, Reply
from worker.sandbox.params import Call

Handler = Callable[[Call], Reply]
# Bulk extract ids are UUIDs; a UUID is a 128-bit integer, so it travels as the path id.
_UUID = r"([0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12})"


class Body(StrEnum):
    """What an endpoint accepts as its body."""

    JSON = "json"
    FORM = "form"
    QUERY = "query"  # GETs: none, or a `_method=GET` form/JSON body
    MULTIPART = "multipart"  # bulk import: a file part and form fields


@dataclass(frozen=True, slots=True)
class Route:
    """One (method, path) of the API."""

    name: str
    handler: Handler
    body: Body


def _path_id(raw: str) -> int:
    return int(raw) if raw.isdigit() else uuid.UUID(raw).int


class Router:
    """Exact paths in a dict, paths with an `{id}` as regexes: both cheap on the hot path."""

    def __init__(self) -> None:
        self._exact: dict[str, dict[str, Route]] = {}
        self._patterns: list[tuple[re.Pattern[str], dict[str, Route]]] = []

    def add(self, method: str, path: str, route: Route) -> None:
        """Register `route` for `method` on `path` (which may contain one `{id}` or `{uuid}`)."""
        if "{id}" not in path and "{uuid}" not in path:
            self._exact.setdefault(path, {})[method] = route
            return
        escaped = re.escape(path).replace(r"\{id\}", r"(\d+)")
        regex = re.compile(escaped.replace(r"\{uuid\}", _UUID) + r"\Z")
        for pattern, methods in self._patterns:
            if pattern.pattern == regex.pattern:
                methods[method] = route
                return
        self._patterns.append((regex, {method: route}))

    def resolve(self, method: str, path: str) -> tuple[Route, int]:
        """The route and path id for a call; ApiError 610 or 605 if there is none."""
        methods, path_id = self._exact.get(path), 0
        if methods is None:
            for pattern, candidates in self._patterns:
                match = pattern.match(path)
                if match is not None:
                    methods, path_id = candidates, _path_id(match.group(1))
                    break
        if methods is None:
            raise ApiError("610", "Requested resource not found")
        route = methods.get(method)
        if route is None:
            raise ApiError("605", f"Request method '{method}' not supported")
        return route, path_id
