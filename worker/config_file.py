"""Reading the configuration (DESIGN §2.2): the YAML file, the Marketo credentials from the
environment, and every problem as one `key.path: problem` line, secrets never shown.

Credentials come from MARKETO_CLIENT_ID and MARKETO_CLIENT_SECRET(_FILE) only; the models and
their rules are in worker/settings.py.
"""

from __future__ import annotations

import json
import os
from collections import abc
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_settings.exceptions import SettingsError

from worker.errors import ConfigError
from worker.settings import Settings, from_values

__all__ = ["load_settings"]

_CREDENTIALS_HINT = "set MARKETO_CLIENT_ID / MARKETO_CLIENT_SECRET(_FILE)"


def load_settings(
    path: Path,
    env: abc.Mapping[str, str] | None = None,
    *,
    require_credentials: bool = True,
) -> Settings:
    """Read, merge with the environment and validate; raise ConfigError listing every problem."""
    environ = os.environ if env is None else env
    data = _read_yaml(path)
    problems = _misplaced_credentials(data, environ)
    credentials, missing = _credentials(environ, required=require_credentials)
    problems += missing
    if isinstance(data.setdefault("marketo", {}), dict):
        data["marketo"].update(credentials)
    try:
        settings = from_values(data, environ)
    except ValidationError as exc:
        problems += _describe(exc)
    except SettingsError as exc:
        message = str(exc).replace('source "_EnvironSource"', "the WORKER_* variables")
        problems.append(f"environment: {message}")
    if problems:
        raise ConfigError(f"{path}: invalid configuration\n" + "\n".join(problems))
    return settings


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys, where PyYAML silently keeps the last one."""


def _unique_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[object] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if not isinstance(key, abc.Hashable):
            continue  # PyYAML reports unhashable keys itself
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: YAML error{where}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: YAML error: {exc}") from None
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise ConfigError(f"{path}: the top level must be a mapping of keys, but it is {kind}")
    if odd := [key for key in data if not isinstance(key, str)]:
        raise ConfigError(f"{path}: top-level keys must be names, not {odd[0]!r}")
    return data


def _misplaced_credentials(data: dict[str, Any], environ: abc.Mapping[str, str]) -> list[str]:
    problems = []
    marketo = data.get("marketo")
    for key in ("client_id", "client_secret"):
        if isinstance(marketo, dict) and marketo.pop(key, None) is not None:
            hint = "credentials do not belong in the config file"
            problems.append(f"marketo.{key}: {hint}: {_CREDENTIALS_HINT}")
    for name in environ:
        if name.upper().startswith("WORKER_MARKETO__CLIENT_"):
            problems.append(
                f"{name}: credentials come only from the environment: {_CREDENTIALS_HINT}"
            )
    return problems


def _credentials(
    environ: abc.Mapping[str, str], *, required: bool
) -> tuple[dict[str, str], list[str]]:
    client_id = environ.get("MARKETO_CLIENT_ID", "").strip()
    secret, problems = _secret(environ)
    if required and not secret and not problems:
        where = "MARKETO_CLIENT_SECRET or MARKETO_CLIENT_SECRET_FILE"
        problems.append(f"marketo.client_secret: missing: set {where} in the environment")
    if required and not client_id:
        problems.insert(0, "marketo.client_id: missing: set MARKETO_CLIENT_ID in the environment")
    found = {"client_id": client_id, "client_secret": secret}
    return {key: value for key, value in found.items() if value}, problems


def _secret(environ: abc.Mapping[str, str]) -> tuple[str, list[str]]:
    value, file_name = (
        environ.get("MARKETO_CLIENT_SECRET", ""),
        environ.get("MARKETO_CLIENT_SECRET_FILE", ""),
    )
    if value and file_name:
        return "", ["MARKETO_CLIENT_SECRET_FILE: set it or MARKETO_CLIENT_SECRET, not both"]
    if not file_name:
        return value.strip(), []
    try:
        content = Path(file_name).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        return "", [
            f"MARKETO_CLIENT_SECRET_FILE: cannot read {file_name}: {exc.__class__.__name__}"
        ]
    return content, [] if content else [f"MARKETO_CLIENT_SECRET_FILE: {file_name} is empty"]


_MESSAGES = {"extra_forbidden": "unknown key", "missing": "required key is missing"}


def _describe(exc: ValidationError) -> list[str]:
    """One `key.path: problem` line per error; inputs (perhaps secrets) are never shown."""
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        base = _dotted(error["loc"])
        pairs = error.get("ctx", {}).get("problems") if error["type"] == "config" else None
        for relative, problem in pairs or [("", error["msg"])]:
            key = base + ("." if base and relative[:1] not in {"", "["} else "") + relative
            message = _MESSAGES.get(error["type"], problem).removeprefix("Value error, ")
            lines.append(f"{key or '(top level)'}: {message}")
    return lines


def _dotted(loc: tuple[int | str, ...]) -> str:
    key = ""
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
        elif part.isidentifier():
            key += f".{part}" if key else part
        else:
            key += f"[{json.dumps(part)}]"
    return key
