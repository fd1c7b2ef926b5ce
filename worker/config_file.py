"""Reading the configuration: the YAML file, the Marketo credentials from the
environment, and every problem as one `key.path: problem` line, secrets never shown.

Credentials come from MARKETO_CLIENT_ID and MARKETO_CLIENT_SECRET(_FILE) only; the models and
their rules are in worker/settings.py.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import types
import typing
from collections import abc
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_settings.exceptions import SettingsError

from worker.errors import ConfigError
from worker.settings import Settings, from_values

__all__ = ["load_settings"]

# the only variables each credential is read from
_CREDENTIAL_VARIABLES = {
    "client_id": "MARKETO_CLIENT_ID",
    "client_secret": "MARKETO_CLIENT_SECRET (or MARKETO_CLIENT_SECRET_FILE, a file holding it)",
}
_ENV_PREFIX = "WORKER_"


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
        problems += _describe(exc, environ)
    except SettingsError as exc:
        problems.append(_unparsable_variables(exc, environ))
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
    for key, variable in _CREDENTIAL_VARIABLES.items():
        if isinstance(marketo, dict) and marketo.pop(key, None) is not None:
            hint = "credentials do not belong in the config file"
            problems.append(f"marketo.{key}: {hint}: set {variable} in the environment")
    for name in environ:
        if name.upper().startswith("WORKER_MARKETO__CLIENT_"):
            problems.append(f"{name}: not read: {_credential_hint(name)}")
    return problems


def _credential_hint(name: str) -> str:
    """Which variable to set instead of WORKER_MARKETO__CLIENT_<X>."""
    key = name.upper().removeprefix("WORKER_MARKETO__").lower()
    variable = _CREDENTIAL_VARIABLES.get(key.removesuffix("_file"), "")
    if not variable:
        return f"credentials come only from {' and '.join(_CREDENTIAL_VARIABLES.values())}"
    return f"this credential comes only from {variable}"


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


def _describe(exc: ValidationError, environ: abc.Mapping[str, str]) -> list[str]:
    """One `key.path: problem` line per error, naming the WORKER_* variable the value came from;
    inputs (perhaps secrets) are never shown."""
    variables = {name.upper(): name for name in environ if name.upper().startswith(_ENV_PREFIX)}
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        base = _dotted(error["loc"])
        pairs = error.get("ctx", {}).get("problems") if error["type"] == "config" else None
        for relative, problem in pairs or [("", error["msg"])]:
            key = base + ("." if base and relative[:1] not in {"", "["} else "") + relative
            message = _MESSAGES.get(error["type"], problem).removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message += _suggestion(error["loc"])
            variable = _variable(key, variables)
            source = f" (from {variable})" if variable else ""
            lines.append(f"{key or '(top level)'}{source}: {message}")
    return lines


def _variable(key: str, variables: abc.Mapping[str, str]) -> str | None:
    """The WORKER_* variable that set `key` or a section holding it, if one did (the environment
    overrides the file)."""
    parts = key.split("[", 1)[0].split(".")
    for end in range(len(parts), 0, -1):
        name = variables.get(_ENV_PREFIX + "__".join(parts[:end]).upper())
        if name is not None:
            return name
    return None


def _unparsable_variables(exc: SettingsError, environ: abc.Mapping[str, str]) -> str:
    """Name the WORKER_* variables of a section or list that do not hold the JSON they must."""
    message = str(exc).replace('source "_EnvironSource"', "the WORKER_* variables")
    found = re.search(r'for field "(\w+)"', message)
    if found is None:
        return f"environment: {message}"
    section = _ENV_PREFIX + found[1].upper()
    names = [
        name
        for name in sorted(environ)
        if name.upper() == section or name.upper().startswith(section + "__")
        if _needs_json(name) and not _is_json(environ[name])
    ]
    if not names:
        return f"environment: {message}"
    return f"{', '.join(names)}: not valid JSON (a mapping or a list is given as JSON text)"


def _needs_json(name: str) -> bool:
    """Whether the variable sets a mapping, a list or a section, which must be JSON text."""
    annotation: Any = Settings
    for part in name.upper().removeprefix(_ENV_PREFIX).lower().split("__"):
        annotation = _fields(annotation).get(part)
    origin = typing.get_origin(annotation)
    return origin in {dict, list} or bool(_fields(annotation))


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _suggestion(loc: tuple[int | str, ...]) -> str:
    """` (did you mean x?)` when an unknown key is close to a key allowed at its level."""
    *parents, unknown = loc
    allowed = _keys_at(Settings, parents)
    close = difflib.get_close_matches(str(unknown), allowed, n=1) if allowed else []
    return f" (did you mean {close[0]}?)" if close else ""


def _keys_at(model: type[BaseModel], parents: list[int | str]) -> list[str]:
    """The keys a model allows after following `parents` (field names or aliases, list indices)."""
    annotation: Any = model
    for part in parents:
        if isinstance(part, int):
            args = typing.get_args(annotation)
            annotation = args[0] if typing.get_origin(annotation) is list and args else None
            continue
        fields = _fields(annotation)
        annotation = fields.get(part)
    return list(_fields(annotation))


def _fields(annotation: Any) -> dict[str, Any]:
    """A model annotation's keys (aliases first) and their annotations; {} for anything else."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        models = [arg for arg in typing.get_args(annotation) if isinstance(arg, type)]
        annotation = next((arg for arg in models if issubclass(arg, BaseModel)), None)
    if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return {}
    return {info.alias or name: info.annotation for name, info in annotation.model_fields.items()}


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
