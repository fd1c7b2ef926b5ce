"""Configuration: the models of the YAML file and the WORKER_* variables that
override it, and the rules every value must meet, validated once at start-up.

worker/config_file.py reads the file and the credentials and reports the problems; between them
they are the only modules that read the environment. Regenerate schemas/config.schema.json with
`python -m worker.settings --schema`.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections import abc
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    FilePath,
    PlainValidator,
    SecretStr,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource
from pydantic_settings import SettingsConfigDict as _SettingsConfig
from pydantic_settings.sources.utils import parse_env_vars

from worker.core.fields import IDENTITY_PREFIX
from worker.core.ids import AudienceId
from worker.core.marketo_api import MAX_BATCH
from worker.core.membership import CONSENT_PREFIX
from worker.core.profile import ALL_ATTRIBUTES, ECID
from worker.core.rules import Rule, compile_rule
from worker.errors import RuleError

_LOCAL_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
_PATH = re.compile(r"^[^.\s]+(\.[^.\s]+)*$")
# a retained path: an attribute path, or `prefix.*` for everything under prefix
_RETAINED = re.compile(r"^[^.\s*]+(\.[^.\s*]+)*(\.\*)?$")
# client settings of the classic group protocol only: the consumer protocol has the broker decide
_CLASSIC_GROUP_ONLY = frozenset(
    {"session.timeout.ms", "heartbeat.interval.ms", "partition.assignment.strategy"}
)
# librdkafka settings the worker sets itself: a pass-through option would be ignored or, for
# bootstrap.servers, silently win over kafka.bootstrap_servers
_WORKER_OWNED = {
    "bootstrap.servers": "use kafka.bootstrap_servers",
    "group.id": "use kafka.group_id",
    "enable.auto.commit": "always false: offsets are committed after Marketo has the changes",
    "enable.auto.offset.store": "always false: offsets are committed after Marketo has the changes",
    "enable.idempotence": "always true: retries never duplicate or reorder records",
    "acks": "always all: a record counts as written once every in-sync replica has it",
    "delivery.report.only.error": "set by each producer for its own delivery accounting",
}
# Marketo's limit per instance: 100 calls in any 20 s; the sandbox on loopback has its own
_MARKETO_CALLS, _MARKETO_WINDOW_S = 100, 20.0
_SLUG = re.compile(r"^[a-z0-9._-]{1,64}$")
# from_values() hands its environment mapping to the env source through this, so that tests
# and `validate` never depend on the process environment.
_ENVIRON: ContextVar[abc.Mapping[str, str] | None] = ContextVar("_ENVIRON", default=None)
# Rules are compiled once per distinct text, by validation and by compiled_rules() alike.
_compile = functools.lru_cache(maxsize=1024)(compile_rule)


def _problems(*pairs: tuple[str, str]) -> PydanticCustomError:
    """An error naming keys relative to where it is raised; _describe() expands them."""
    summary = "; ".join(f"{key}: {problem}" for key, problem in pairs)
    return PydanticCustomError("config", "{summary}", {"summary": summary, "problems": pairs})


def _attribute_path(value: str) -> str:
    if not _PATH.fullmatch(value):
        raise ValueError("must be a dotted attribute path like address.city")
    return value


def _retention(value: object) -> object:
    # one check for both forms: a union would report each branch's failure, by its type's name
    if value == "all":
        return value
    if not isinstance(value, list) or not all(isinstance(path, str) for path in value):
        raise ValueError("must be all, or a list of attribute paths (prefix.* for all under it)")
    refused = [path for path in value if not _RETAINED.fullmatch(path)]
    if refused:
        listed = ", ".join(repr(path) for path in refused)
        raise ValueError(f"{listed}: not a dotted attribute path like address.city, or address.*")
    return value


def _slug(value: str) -> str:
    if not _SLUG.fullmatch(value):
        raise ValueError("must be 1-64 of lowercase letters, digits, '-', '_' and '.'")
    return value


def _librdkafka_value(value: object) -> object:
    # YAML turns `enable.auto.commit: false` into a bool; librdkafka wants the string "false"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, int | float) else value


AttributePath = Annotated[
    str, AfterValidator(_attribute_path), Field(json_schema_extra={"pattern": _PATH.pattern})
]
Retention = Annotated[
    Literal["all"] | list[str],
    PlainValidator(_retention),
    WithJsonSchema(
        {
            "anyOf": [
                {"const": "all"},
                {"type": "array", "items": {"type": "string", "pattern": _RETAINED.pattern}},
            ]
        }
    ),
]
NonEmpty = Annotated[str, Field(min_length=1)]
Slug = Annotated[str, AfterValidator(_slug), Field(json_schema_extra={"pattern": _SLUG.pattern})]
LibrdkafkaValue = Annotated[
    str,
    BeforeValidator(_librdkafka_value),
    WithJsonSchema({"type": ["string", "number", "boolean"]}),
]


class KafkaSettings(BaseModel):
    """Kafka connection and topics; `options` pass through to librdkafka."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bootstrap_servers: NonEmpty = "127.0.0.1:9092"
    topic: NonEmpty = "profile-updates"
    group_id: NonEmpty = "marketo-audience-worker"
    dead_letter_topic: NonEmpty = "profile-updates.dead-letter"
    rejections_topic: NonEmpty = "marketo-audience-worker.rejections"
    state_topic: NonEmpty = "marketo-audience-worker.state"
    # repr=False: options may hold sasl.password or ssl.key.password
    options: dict[str, LibrdkafkaValue] = Field(default_factory=dict, repr=False)
    max_event_bytes: int = Field(default=65_536, ge=1)
    # an event's ts later than this after the worker's clock, or before min_event_ts, is
    # dead-lettered: one far-future ts would make every later event of its profile stale
    max_event_future_s: float = Field(default=86_400.0, ge=0)
    min_event_ts: AwareDatetime = datetime(2000, 1, 1, tzinfo=UTC)
    # retention of the dead-letter and rejections topics the worker creates (-1: for ever)
    output_retention_ms: int = Field(default=30 * 86_400_000, ge=-1)

    @field_validator("options")
    @classmethod
    def _not_worker_owned(cls, options: dict[str, str]) -> dict[str, str]:
        owned = [(key, _WORKER_OWNED[key]) for key in sorted(options) if key in _WORKER_OWNED]
        if owned:
            raise _problems(*((key, f"the worker sets this itself: {why}") for key, why in owned))
        return options

    @field_validator("options")
    @classmethod
    def _group_protocol_options(cls, options: dict[str, str]) -> dict[str, str]:
        # librdkafka refuses to create a KIP-848 consumer with these (broker settings there): say
        # so at validation, not as a traceback once the worker runs
        if options.get("group.protocol", "consumer") == "consumer":
            refused = sorted(_CLASSIC_GROUP_ONLY & options.keys())
            if refused:
                raise ValueError(
                    f"{', '.join(refused)}: not settable with the consumer group protocol "
                    "(KIP-848); set group.consumer.* on the broker, or group.protocol: classic"
                )
        return options

    def ts_bounds_ms(self) -> tuple[int, int]:
        """The earliest event time accepted, and how far past the clock one may be, in ms."""
        return int(self.min_event_ts.timestamp() * 1000), int(self.max_event_future_s * 1000)

    def client_config(self) -> dict[str, str]:
        """librdkafka settings shared by every client: bootstrap plus the pass-through options."""
        return {
            "bootstrap.servers": self.bootstrap_servers,
            **{key: str(value) for key, value in self.options.items()},
        }


class BudgetSettings(BaseModel):
    """Marketo calls allowed to the whole consumer group."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    calls_per_window: int = Field(default=50, ge=1)
    window_s: float = Field(default=20.0, gt=0)
    concurrency: int = Field(default=5, ge=1)
    daily_quota: int = Field(default=50_000, ge=1)
    daily_reserve: int = Field(default=5_000, ge=0)
    quota_timezone: str = "America/Chicago"
    quota_probe_s: float = Field(default=60.0, gt=0)
    # the group's bulk imports in Marketo's import queue at once, split by partitions as the
    # calls are (at least one per replica with partitions). The queue is the instance's: 2
    # importing, 10 in all, shared with every other integration (the 11th gets 1016). 3 keeps
    # both importing places busy with one file waiting, and leaves 7 places to the others
    bulk_imports: int = Field(default=3, ge=1, le=10)
    # How often Marketo's usage stats are read (other API users' calls today shrink the group's
    # share). Each reading is a call: every 10 minutes is 144 a day per replica, 0.3 % of a
    # 50,000-call day; what another integration spends meanwhile (at most 3,000 calls in 10
    # minutes at Marketo's 100 per 20 s) is seen within that time, well inside the reserve.
    usage_interval_s: float = Field(default=600.0, ge=1.0)

    @field_validator("daily_reserve")
    @classmethod
    def _reserve_below_quota(cls, reserve: int, info: ValidationInfo) -> int:
        quota = info.data.get("daily_quota")
        if quota is not None and reserve >= quota:
            raise ValueError(f"must be below daily_quota ({quota})")
        return reserve

    @field_validator("quota_timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {name!r} (an IANA name like America/Chicago)"
            ) from None
        return name


class MarketoSettings(BaseModel):
    """The Marketo instance; client_id/client_secret are filled from the environment only."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str
    client_id: SecretStr = SecretStr("")
    client_secret: SecretStr = SecretStr("")
    person_creation: Literal["match_and_create", "match_only"] = "match_and_create"
    # erasure requests: after a `delete` event has taken the person out of every list, delete
    # the Marketo person too (only one the worker knows by lead id)
    delete_persons: bool = False
    lookup_field: NonEmpty = "email"
    list_folder: NonEmpty = "Audiences"
    budget: BudgetSettings = Field(default_factory=BudgetSettings)
    request_timeout_s: float = Field(default=30.0, gt=0)
    ca_bundle: FilePath | None = None

    @field_validator("base_url")
    @classmethod
    def _tls_unless_local(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.username or parts.password:
            raise ValueError("must not carry credentials")
        # request paths are appended to base_url: a query or fragment would swallow them
        if "?" in url or "#" in url:
            raise ValueError("must not carry a query (?) or fragment (#)")
        try:
            port = parts.port  # urlsplit checks the port only when asked
        except ValueError:
            port = 0
        if port == 0:
            raise ValueError("has an invalid port (give a number from 1 to 65535)")
        if not parts.hostname or parts.scheme not in {"https", "http"}:
            raise ValueError("must be an https:// URL like https://123-ABC-456.mktorest.com")
        if parts.scheme == "http" and parts.hostname not in _LOCAL_HOSTS:
            raise ValueError(
                "TLS is required: use https:// (plain http only for 127.0.0.1, ::1 or localhost)"
            )
        return url.rstrip("/")

    @model_validator(mode="after")
    def _within_marketo_limit(self) -> MarketoSettings:
        if urlsplit(self.base_url).hostname in _LOCAL_HOSTS:
            return self  # the local sandbox: its limits are its own command-line flags
        budget = self.budget
        # a window longer than Marketo's could still spend it all within 20 s; a shorter one
        # must keep the rate of 5 calls per second
        most = int(min(_MARKETO_CALLS, _MARKETO_CALLS * budget.window_s / _MARKETO_WINDOW_S))
        if budget.calls_per_window > most:
            asked = f"{budget.calls_per_window} calls per {budget.window_s:g} s"
            limit = f"{_MARKETO_CALLS} calls per {_MARKETO_WINDOW_S:g} s per instance"
            problem = f"{asked} is over Marketo's limit of {limit}: at most {most} in this window"
            raise _problems(("budget.calls_per_window", problem))
        return self


class Mapping(BaseModel):
    """One profile attribute path written to one Marketo field."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: AttributePath = Field(alias="from")
    field: NonEmpty = Field(alias="to")


class Governance(BaseModel):
    """Consent and data-usage labels: what this destination may not receive."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    consent_path: AttributePath = "consent.marketing"
    labels: dict[AttributePath, list[NonEmpty]] = Field(default_factory=dict)
    blocked_labels: list[NonEmpty] = Field(default_factory=list)

    def blocked_for(self, source: str) -> list[tuple[str, str]]:
        """(labelled path, label) pairs blocking `source`: a label covers a path's children."""
        return [
            (path, label)
            for path, labels in self.labels.items()
            if _overlaps(path, source)
            for label in labels
            if label in self.blocked_labels
        ]


class ListRef(BaseModel):
    """A Marketo static list, by name (found or created in list_folder) or by id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: NonEmpty | None = None
    id: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _exactly_one(self) -> ListRef:
        if (self.name is None) == (self.id is None):
            raise ValueError("give exactly one of name or id")
        return self


class Audience(BaseModel):
    """An audience and the list it keeps equal; `rule` iff origin is rule."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Slug
    name: NonEmpty
    origin: Literal["rule", "upload"] = "rule"
    rule: str | None = Field(default=None, validate_default=True)
    list_ref: ListRef = Field(alias="list")

    @field_validator("rule")
    @classmethod
    def _rule_fits_origin(cls, rule: str | None, info: ValidationInfo) -> str | None:
        origin = info.data.get("origin")
        if origin == "upload" and rule is not None:
            raise ValueError("not allowed with origin upload (members come from events)")
        if origin == "rule" and rule is None:
            raise ValueError("required with origin rule")
        if rule is not None:
            try:
                compiled = _compile(rule)
            except RuleError as exc:
                raise _problems(("", str(exc))) from None
            if compiled.doubts:
                raise _problems(*(("", doubt) for doubt in compiled.doubts))
        return rule

    @property
    def compiled_rule(self) -> Rule | None:
        """The rule parsed once (cached by text), or None for an upload audience."""
        return None if self.rule is None else _compile(self.rule)


class StateSettings(BaseModel):
    """What each profile's state keeps: every attribute, or only the paths listed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # `all`: an audience added later is evaluated from the state alone; a list bounds memory,
    # and a rule or mapping that reads a path it does not retain is a configuration error
    attributes: Retention = "all"

    def retained(self) -> frozenset[str]:
        """The attribute paths kept (`prefix.*` as `prefix`); ALL_ATTRIBUTES for `all`."""
        if self.attributes == "all":
            return ALL_ATTRIBUTES
        return frozenset(path.removesuffix(".*") for path in self.attributes)

    def retains(self, path: str) -> bool:
        """Tell whether the state keeps what `path` reads (itself, or a prefix of it, is kept)."""
        kept = self.retained()
        return kept is ALL_ATTRIBUTES or any(
            path == prefix or path.startswith(prefix + ".") for prefix in kept
        )


class FlushSettings(BaseModel):
    """When buffered list changes are sent and offsets committed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_batch: int = Field(default=MAX_BATCH, ge=1, le=MAX_BATCH)
    max_linger_s: float = Field(default=1.0, gt=0)
    max_buffered_changes: int = Field(default=200_000, ge=1)
    commit_interval_s: float = Field(default=1.0, gt=0)
    shutdown_deadline_s: float = Field(default=30.0, gt=0)
    # how long a newly assigned partition waits before it is restored and read, so that every
    # Marketo call its previous owner started has ended; None: marketo.request_timeout_s + 1.
    # Not waited when the changelog ends with a clean-handover marker (every call was answered)
    handover_s: float | None = Field(default=None, ge=0)
    # a list's pending backlog adds (activations, a restore's re-sends) at or above this many go
    # as one bulk import instead of lead syncs and list adds; 0 or None: never. REST costs 2 calls
    # per 300 new persons (67 for 10,000), an import a handful (submit, a few polls, two files)
    # whatever its size but minutes of Marketo's processing: at 10,000 the lane spends about a
    # tenth of REST's calls, and below a few thousand the latency is not worth the few calls
    bulk_threshold: int | None = Field(default=10_000, ge=0)


class TelemetrySettings(BaseModel):
    """Metrics endpoint and logging."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metrics_port: int = Field(default=9464, ge=0, le=65_535)
    metrics_host: NonEmpty = "127.0.0.1"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"


class _EnvironSource(EnvSettingsSource):
    """pydantic-settings' environment source, reading from_values()'s mapping when given."""

    def _load_env_vars(self) -> abc.Mapping[str, str | None]:
        environ = _ENVIRON.get()
        if environ is None:
            return super()._load_env_vars()
        return parse_env_vars(environ, self.case_sensitive, self.env_ignore_empty)


class Settings(BaseSettings):
    """marketo-audience-worker configuration: the YAML file, overridden by WORKER_* variables."""

    model_config = _SettingsConfig(
        frozen=True, extra="forbid", env_prefix="WORKER_", env_nested_delimiter="__"
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    marketo: MarketoSettings
    mapping: list[Mapping] = Field(default_factory=list)
    governance: Governance = Field(default_factory=Governance)
    audiences: list[Audience] = Field(min_length=1)
    state: StateSettings = Field(default_factory=StateSettings)
    flush: FlushSettings = Field(default_factory=FlushSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # first wins: the environment overrides the YAML file, which arrives as init values
        return (_EnvironSource(settings_cls), init_settings)

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        problems = [
            *_mapping_problems(self),
            *_audience_problems(self.audiences),
            *_retention_problems(self),
        ]
        if problems:
            raise _problems(*problems)
        return self

    def retained_paths(self) -> frozenset[str]:
        """The attribute paths each profile's state keeps (worker.core.profile.apply): those of
        `state.attributes`, and the ecid when it is mapped."""
        retained = self.state.retained()
        if retained is ALL_ATTRIBUTES:
            return retained
        return retained | ({ECID} & {mapping.source for mapping in self.mapping})

    def bulk_threshold(self) -> int | None:
        """The backlog adds of a list that go by bulk import; None: never. Not with `match_only`,
        which promises never to create a person: an import creates those it does not match."""
        if self.marketo.person_creation == "match_only":
            return None
        return self.flush.bulk_threshold or None

    def compiled_rules(self) -> dict[AudienceId, Rule]:
        """Each rule audience's compiled rule, by audience id."""
        return {
            AudienceId(audience.id): rule
            for audience in self.audiences
            if (rule := audience.compiled_rule) is not None
        }


def _overlaps(path: str, other: str) -> bool:
    return path == other or other.startswith(path + ".") or path.startswith(other + ".")


def _mapping_problems(settings: Settings) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    first_for: dict[str, int] = {}
    for index, mapping in enumerate(settings.mapping):
        seen = first_for.setdefault(mapping.field, index)
        if seen != index:
            problems.append(
                (f"mapping[{index}].to", f"{mapping.field} is already mapping[{seen}].to")
            )
        for path, label in settings.governance.blocked_for(mapping.source):
            problems.append(
                (f"mapping[{index}].from", f"exports label {label} of {path}, which is blocked")
            )
    missing = [name for name in ("firstName", "lastName") if name not in first_for]
    if settings.marketo.person_creation == "match_and_create" and missing:
        needs = f"needs mappings to firstName and lastName (missing: {', '.join(missing)})"
        problems.append(("mapping", f"marketo.person_creation match_and_create {needs}"))
    return problems


def _audience_problems(audiences: list[Audience]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    first: dict[tuple[str, object], int] = {}
    for index, audience in enumerate(audiences):
        ref = audience.list_ref
        keyed = [("id", audience.id), ("list.name", ref.name), ("list.id", ref.id)]
        for key, value in keyed:
            seen = first.setdefault((key, value), index) if value is not None else index
            if seen != index:
                problems.append((f"audiences[{index}].{key}", f"same as audiences[{seen}]"))
    return problems


def _retention_problems(settings: Settings) -> list[tuple[str, str]]:
    """Every path a rule, the mapping or the consent switch reads must be kept in the state:
    else it would read as absent for every profile, without a word."""
    state = settings.state
    if state.retained() is ALL_ATTRIBUTES:
        return []
    unkept = "which state.attributes does not retain (list it, or a prefix.* that covers it)"
    problems: list[tuple[str, str]] = []
    for index, audience in enumerate(settings.audiences):
        rule = audience.compiled_rule
        for path in sorted(rule.paths if rule else ()):
            if not state.retains(path):
                problems.append(
                    (f"audiences[{index}].rule", f"audience {audience.id} reads {path}, {unkept}")
                )
    for index, mapping in enumerate(settings.mapping):
        source = mapping.source
        if not source.startswith(IDENTITY_PREFIX) and not state.retains(source):
            problems.append((f"mapping[{index}].from", f"reads {source}, {unkept}"))
    consent = settings.governance.consent_path
    if not consent.startswith(CONSENT_PREFIX) and not state.retains(consent):
        problems.append(("governance.consent_path", f"reads {consent}, {unkept}"))
    return problems


def from_values(data: abc.Mapping[str, Any], environ: abc.Mapping[str, str]) -> Settings:
    """Validate the file's values, overridden by `environ`'s WORKER_* variables (not the process
    environment); raises pydantic's ValidationError or SettingsError."""
    token = _ENVIRON.set(environ)
    try:
        return Settings(**data)
    finally:
        _ENVIRON.reset(token)


def config_json_schema() -> dict[str, Any]:
    """The JSON Schema of the YAML file: the models' schema without the environment-only keys."""
    schema = Settings.model_json_schema(by_alias=True)
    for key in ("client_id", "client_secret"):
        del schema["$defs"]["MarketoSettings"]["properties"][key]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


if __name__ == "__main__":
    if sys.argv[1:] != ["--schema"]:
        sys.exit("usage: python -m worker.settings --schema > schemas/config.schema.json")
    print(json.dumps(config_json_schema(), indent=2, ensure_ascii=False))
