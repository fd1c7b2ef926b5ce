"""Configuration loading: the YAML file, environment overrides, credentials and error reports."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from worker.cli import main
from worker.config_file import load_settings
from worker.core.ids import AudienceId
from worker.core.profile import ALL_ATTRIBUTES, ECID
from worker.errors import ConfigError
from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
LOCAL_CONFIG = ROOT / "deploy" / "local" / "config.yaml"
CREDENTIALS = {"MARKETO_CLIENT_ID": "the-client", "MARKETO_CLIENT_SECRET": "s3cr3t-value"}
MINIMAL: dict[str, Any] = {
    "marketo": {"base_url": "https://123-ABC-456.mktorest.com"},
    "mapping": [{"from": "firstName", "to": "firstName"}, {"from": "lastName", "to": "lastName"}],
    "audiences": [
        {"id": "fr", "name": "France", "rule": 'country == "FR"', "list": {"name": "France"}},
    ],
}

Load = Callable[..., Settings]


@pytest.fixture
def config_file(tmp_path: Path) -> Callable[[dict[str, Any]], Path]:
    """Write a config dict as YAML and return its path."""

    def write(data: dict[str, Any]) -> Path:
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        return path

    return write


@pytest.fixture
def load(config_file: Callable[[dict[str, Any]], Path]) -> Load:
    """Load MINIMAL changed by `edit`, with the given environment (credentials by default)."""

    def run(
        edit: Callable[[dict[str, Any]], object] | None = None,
        env: dict[str, str] | None = None,
        **kwargs: bool,
    ) -> Settings:
        data = copy.deepcopy(MINIMAL)
        if edit is not None:
            edit(data)
        return load_settings(config_file(data), CREDENTIALS if env is None else env, **kwargs)

    return run


def _errors(load: Load, edit: Callable[[dict[str, Any]], object] | None = None, **kw: Any) -> str:
    with pytest.raises(ConfigError) as info:
        load(edit, **kw)
    return str(info.value)


def test_local_sandbox_config_is_valid() -> None:
    """deploy/local/config.yaml loads with its six audiences and its rules compiled."""
    settings = load_settings(LOCAL_CONFIG, CREDENTIALS)
    assert len(settings.audiences) == 6
    assert "webinar-2026" not in settings.compiled_rules()
    assert settings.compiled_rules()[AudienceId("high-value-fr")].matches(
        {"country": "FR", "ltv": 1200}, 0
    )


def test_minimal_config_takes_the_documented_defaults(load: Load) -> None:
    """Keys left out take the documented defaults."""
    settings = load()
    assert settings.kafka.topic == "profile-updates"
    assert settings.marketo.budget.calls_per_window == 50
    assert settings.marketo.budget.quota_timezone == "America/Chicago"
    assert settings.flush.max_batch == 300
    assert settings.telemetry.metrics_host == "127.0.0.1"


def test_environment_overrides_the_yaml_file(load: Load) -> None:
    """WORKER_KAFKA__BOOTSTRAP_SERVERS wins over kafka.bootstrap_servers in the file."""
    env = {**CREDENTIALS, "WORKER_KAFKA__BOOTSTRAP_SERVERS": "broker:9093"}
    settings = load(lambda d: d.update(kafka={"bootstrap_servers": "file:9092"}), env)
    assert settings.kafka.bootstrap_servers == "broker:9093"


def test_environment_override_merges_into_nested_sections(load: Load) -> None:
    """A nested override changes one key and keeps the file's siblings."""
    env = {**CREDENTIALS, "WORKER_MARKETO__BUDGET__CONCURRENCY": "3"}
    settings = load(lambda d: d["marketo"].update(budget={"daily_quota": 9000}), env)
    assert (settings.marketo.budget.concurrency, settings.marketo.budget.daily_quota) == (3, 9000)


def test_process_environment_is_read_when_no_mapping_is_given(
    config_file: Callable[[dict[str, Any]], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without an explicit env mapping, load_settings reads os.environ."""
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("WORKER_KAFKA__TOPIC", "from-env")
    assert load_settings(config_file(MINIMAL)).kafka.topic == "from-env"


def test_misspelt_environment_key_is_an_error(load: Load) -> None:
    """A typo in a nested WORKER_ variable is reported, not silently ignored."""
    env = {**CREDENTIALS, "WORKER_FLUSH__MAX_BATCHH": "10"}
    assert "flush.max_batchh (from WORKER_FLUSH__MAX_BATCHH): unknown key" in _errors(load, env=env)


def test_invalid_environment_value_names_its_variable(load: Load) -> None:
    """A bad value from a WORKER_ variable is blamed on that variable, not on the file."""
    env = {**CREDENTIALS, "WORKER_FLUSH__MAX_BATCH": "abc"}
    assert "flush.max_batch (from WORKER_FLUSH__MAX_BATCH): Input should be" in _errors(
        load, env=env
    )


def test_environment_section_that_is_not_json_names_its_variable(load: Load) -> None:
    """A WORKER_ variable for a mapping must hold JSON; one that does not is named."""
    env = {**CREDENTIALS, "WORKER_KAFKA__OPTIONS": "not-json", "WORKER_KAFKA__TOPIC": "t"}
    lines = _errors(load, env=env).splitlines()
    assert "WORKER_KAFKA__OPTIONS: not valid JSON (a mapping or a list is given as JSON text)" in (
        lines
    )


def test_invalid_file_value_names_no_variable(load: Load) -> None:
    """A bad value from the file is reported under its key alone."""
    env = {**CREDENTIALS, "WORKER_FLUSH__MAX_LINGER_S": "2"}
    message = _errors(load, lambda d: d.update(flush={"max_batch": "abc"}), env=env)
    assert "\nflush.max_batch: Input should be" in message


@pytest.mark.parametrize(
    ("edit", "line"),
    [
        (lambda d: d.update(kafak={}), "kafak: unknown key (did you mean kafka?)"),
        (
            lambda d: d["marketo"].update(list_foldr="X"),
            "marketo.list_foldr: unknown key (did you mean list_folder?)",
        ),
        (
            lambda d: d["audiences"][0].update(lisst={}),
            "audiences[0].lisst: unknown key (did you mean list?)",
        ),
    ],
)
def test_unknown_key_suggests_the_closest_known_key(
    load: Load, edit: Callable[[dict[str, Any]], object], line: str
) -> None:
    """A typo'd key gets a "did you mean" with the closest key allowed at its level."""
    assert line in _errors(load, edit)


def test_unknown_key_far_from_every_known_key_gets_no_suggestion(load: Load) -> None:
    """Nothing close, nothing suggested."""
    lines = _errors(load, lambda d: d["marketo"].update(zzzzzz=1)).splitlines()
    assert "marketo.zzzzzz: unknown key" in lines


def test_unknown_yaml_key_is_an_error_naming_it(load: Load) -> None:
    """A typo in the file is an error naming the key."""
    message = _errors(load, lambda d: d["marketo"].update(list_foldr="X"))
    assert "marketo.list_foldr: unknown key" in message


def test_every_problem_is_listed_one_per_line(load: Load) -> None:
    """All independent problems are reported together, each on its own line as key: problem."""

    def edit(data: dict[str, Any]) -> None:
        data["flush"] = {"max_batch": 301}
        data["telemetry"] = {"log_level": "loud"}
        data["audiences"][0]["list"] = {}

    lines = _errors(load, edit).splitlines()[1:]
    assert [line.split(":")[0] for line in lines] == [
        "audiences[0].list",
        "flush.max_batch",
        "telemetry.log_level",
    ]


def test_credentials_come_from_the_environment(load: Load) -> None:
    """MARKETO_CLIENT_ID and MARKETO_CLIENT_SECRET fill the Marketo credentials."""
    settings = load()
    assert settings.marketo.client_id.get_secret_value() == "the-client"
    assert settings.marketo.client_secret.get_secret_value() == "s3cr3t-value"


def test_secret_file_content_is_stripped(load: Load, tmp_path: Path) -> None:
    """MARKETO_CLIENT_SECRET_FILE is read and its surrounding whitespace dropped."""
    secret_file = tmp_path / "secret"
    secret_file.write_text("  from-file\n", encoding="utf-8")
    env = {"MARKETO_CLIENT_ID": "c", "MARKETO_CLIENT_SECRET_FILE": str(secret_file)}
    assert load(env=env).marketo.client_secret.get_secret_value() == "from-file"


def test_unreadable_secret_file_is_an_error(load: Load, tmp_path: Path) -> None:
    """A secret file that cannot be read is reported under its variable name."""
    env = {"MARKETO_CLIENT_ID": "c", "MARKETO_CLIENT_SECRET_FILE": str(tmp_path / "none")}
    assert "MARKETO_CLIENT_SECRET_FILE: cannot read" in _errors(load, env=env)


def test_secret_and_secret_file_together_are_an_error(load: Load, tmp_path: Path) -> None:
    """Giving the secret twice is ambiguous and refused."""
    env = {**CREDENTIALS, "MARKETO_CLIENT_SECRET_FILE": str(tmp_path)}
    assert "not both" in _errors(load, env=env)


def test_missing_credentials_are_errors_when_required(load: Load) -> None:
    """Without credentials in the environment, both are reported missing."""
    message = _errors(load, env={})
    assert "marketo.client_id: missing: set MARKETO_CLIENT_ID" in message
    assert "marketo.client_secret: missing" in message


def test_missing_credentials_are_allowed_for_offline_validation(load: Load) -> None:
    """require_credentials=False validates the file without credentials."""
    settings = load(env={}, require_credentials=False)
    assert settings.marketo.client_id.get_secret_value() == ""


def test_credentials_in_the_yaml_file_are_refused(load: Load) -> None:
    """A client_secret key in the file is an error, and its value is not echoed."""
    message = _errors(load, lambda d: d["marketo"].update(client_secret="in-file-secret"))
    assert "marketo.client_secret: credentials do not belong in the config file" in message
    assert "in-file-secret" not in message


def test_credentials_through_worker_variables_are_refused(load: Load) -> None:
    """WORKER_MARKETO__CLIENT_SECRET is not a way around MARKETO_CLIENT_SECRET."""
    env = {**CREDENTIALS, "WORKER_MARKETO__CLIENT_SECRET": "other-secret"}
    message = _errors(load, env=env)
    assert "WORKER_MARKETO__CLIENT_SECRET: not read:" in message
    assert "MARKETO_CLIENT_SECRET (or MARKETO_CLIENT_SECRET_FILE" in message
    assert "other-secret" not in message


def test_client_id_through_a_worker_variable_names_marketo_client_id(load: Load) -> None:
    """WORKER_MARKETO__CLIENT_ID is refused with the variable to use instead."""
    env = {**CREDENTIALS, "WORKER_MARKETO__CLIENT_ID": "other"}
    assert "WORKER_MARKETO__CLIENT_ID: not read: this credential comes only from " in _errors(
        load, env=env
    )


def test_secrets_never_appear_in_repr(load: Load) -> None:
    """Neither Marketo credentials nor librdkafka options show in the settings' repr."""
    options = {"sasl.password": "kafka-pass-123"}
    settings = load(lambda d: d.update(kafka={"options": options}))
    assert settings.marketo.client_secret.get_secret_value() == "s3cr3t-value"
    assert settings.kafka.options == options
    assert "s3cr3t-value" not in repr(settings)
    assert "kafka-pass-123" not in repr(settings)


def test_librdkafka_options_are_coerced_to_strings(load: Load) -> None:
    """YAML booleans and numbers become the strings librdkafka expects."""
    options = {"socket.keepalive.enable": False, "linger.ms": 5, "batch.size": 1.5}
    settings = load(lambda d: d.update(kafka={"options": options}))
    assert settings.kafka.options == {
        "socket.keepalive.enable": "false",
        "linger.ms": "5",
        "batch.size": "1.5",
    }


def test_nested_librdkafka_option_is_an_error(load: Load) -> None:
    """An option value that is a mapping cannot be passed to librdkafka."""
    message = _errors(load, lambda d: d.update(kafka={"options": {"sasl": {"x": 1}}}))
    assert "kafka.options.sasl:" in message


def test_a_classic_group_option_is_an_error_with_the_consumer_protocol(load: Load) -> None:
    """librdkafka would refuse the KIP-848 consumer at run time; validation says it first."""
    options = {"session.timeout.ms": 30000}
    message = _errors(load, lambda d: d.update(kafka={"options": options}))
    assert "kafka.options" in message
    assert "session.timeout.ms" in message


@pytest.mark.parametrize(
    ("option", "instead"),
    [
        ("bootstrap.servers", "use kafka.bootstrap_servers"),
        ("group.id", "use kafka.group_id"),
        ("enable.auto.commit", "always false"),
        ("enable.idempotence", "always true"),
        ("acks", "always all"),
    ],
)
def test_an_option_the_worker_sets_itself_is_an_error(
    load: Load, option: str, instead: str
) -> None:
    """A librdkafka option the worker overrides (or that would win over a key) is refused."""
    message = _errors(load, lambda d: d.update(kafka={"options": {option: "x"}}))
    assert f"kafka.options.{option}: the worker sets this itself: {instead}" in message


def test_a_classic_group_option_is_accepted_with_the_classic_protocol(load: Load) -> None:
    """group.protocol: classic keeps the classic group settings available."""
    options = {"group.protocol": "classic", "session.timeout.ms": 30000}
    settings = load(lambda d: d.update(kafka={"options": options}))
    assert settings.kafka.options["session.timeout.ms"] == "30000"


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8099", "http://localhost:8099", "http://[::1]:8099", "https://x.com"]
)
def test_http_is_accepted_only_on_loopback(load: Load, url: str) -> None:
    """https anywhere, and plain http for the local sandbox on a loopback host, are accepted."""
    assert load(lambda d: d["marketo"].update(base_url=url)).marketo.base_url == url


@pytest.mark.parametrize("url", ["http://123-ABC-456.mktorest.com", "http://10.0.0.1:8099"])
def test_http_to_another_host_requires_tls(load: Load, url: str) -> None:
    """A plain http URL to any other host is an error saying TLS is required."""
    message = _errors(load, lambda d: d["marketo"].update(base_url=url))
    assert "marketo.base_url: TLS is required" in message


@pytest.mark.parametrize("url", ["ftp://x.com", "x.mktorest.com", "https://u:p@x.com"])
def test_malformed_base_url_is_an_error(load: Load, url: str) -> None:
    """A URL without https scheme and host, or carrying credentials, is refused."""
    assert "marketo.base_url:" in _errors(load, lambda d: d["marketo"].update(base_url=url))


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://x.mktorest.com:99999", "has an invalid port"),
        ("https://x.mktorest.com:abc", "has an invalid port"),
        ("https://x.mktorest.com:0", "has an invalid port"),
        ("https://x.mktorest.com?a=1", "must not carry a query"),
        ("https://x.mktorest.com/#f", "must not carry a query"),
    ],
)
def test_base_url_with_a_bad_port_query_or_fragment_is_an_error(
    load: Load, url: str, problem: str
) -> None:
    """A bad port, a query or a fragment would break every request URL: refused at start-up."""
    message = _errors(load, lambda d: d["marketo"].update(base_url=url))
    assert "marketo.base_url:" in message
    assert problem in message


def test_tls_verification_cannot_be_turned_off(load: Load) -> None:
    """There is no key to disable certificate checks: one would be an unknown key."""
    message = _errors(load, lambda d: d["marketo"].update(verify_tls=False))
    assert "marketo.verify_tls: unknown key" in message


def test_missing_ca_bundle_is_an_error(load: Load, tmp_path: Path) -> None:
    """ca_bundle must name an existing file."""
    bundle = str(tmp_path / "missing.pem")
    assert "marketo.ca_bundle:" in _errors(load, lambda d: d["marketo"].update(ca_bundle=bundle))


@pytest.mark.parametrize(
    ("budget", "key"),
    [
        ({"daily_quota": 1000, "daily_reserve": 1000}, "daily_reserve"),
        ({"calls_per_window": 0}, "calls_per_window"),
        ({"concurrency": 0}, "concurrency"),
        ({"daily_reserve": -1}, "daily_reserve"),
        ({"quota_timezone": "Mars/Olympus"}, "quota_timezone"),
    ],
)
def test_invalid_budget_is_an_error(load: Load, budget: dict[str, Any], key: str) -> None:
    """Budget bounds and the quota time zone are checked, naming the key."""
    assert f"marketo.budget.{key}:" in _errors(load, lambda d: d["marketo"].update(budget=budget))


@pytest.mark.parametrize(
    "budget",
    [
        {"calls_per_window": 500},
        {"calls_per_window": 101},
        {"calls_per_window": 200, "window_s": 40},
        {"calls_per_window": 60, "window_s": 10},
    ],
)
def test_budget_over_marketo_limit_is_an_error(load: Load, budget: dict[str, Any]) -> None:
    """More than 100 calls in a window, or more than 5 calls per second, is refused by name."""
    message = _errors(load, lambda d: d["marketo"].update(budget=budget))
    assert "marketo.budget.calls_per_window: " in message
    assert "over Marketo's limit of 100 calls per 20 s" in message


@pytest.mark.parametrize(
    "budget",
    [{"calls_per_window": 100}, {"calls_per_window": 50, "window_s": 10}],
)
def test_budget_at_marketo_limit_is_accepted(load: Load, budget: dict[str, Any]) -> None:
    """100 calls per 20 s, or the same rate in a shorter window, is allowed."""
    settings = load(lambda d: d["marketo"].update(budget=budget))
    assert settings.marketo.budget.calls_per_window == budget["calls_per_window"]


def test_budget_over_marketo_limit_is_accepted_for_the_local_sandbox(load: Load) -> None:
    """The sandbox on loopback has its own limits (flags), so the budget may exceed Marketo's."""

    def edit(data: dict[str, Any]) -> None:
        data["marketo"].update(base_url="http://127.0.0.1:8099", budget={"calls_per_window": 1000})

    assert load(edit).marketo.budget.calls_per_window == 1000


def test_rule_ordering_an_attribute_against_a_quoted_number_is_an_error(load: Load) -> None:
    """`ltv > "1000"` compares text and is never true of a number: refused, naming the rule."""
    message = _errors(load, lambda d: d["audiences"][0].update(rule='ltv > "1000"'))
    assert 'audiences[0].rule: ltv is ordered against the text "1000"' in message
    assert "write 1000 without quotes" in message
    assert "at column 7" in message


def test_bad_rule_is_reported_with_its_key_and_column(load: Load) -> None:
    """A rule that does not compile names audiences[i].rule and points at the column."""

    def edit(data: dict[str, Any]) -> None:
        data["audiences"].append(
            {"id": "x", "name": "X", "rule": "ltv > foo(1)", "list": {"id": 7}}
        )

    message = _errors(load, edit)
    assert "audiences[1].rule: unknown function 'foo'" in message
    assert "at column 7" in message


def test_rule_is_required_for_rule_audiences(load: Load) -> None:
    """An audience of origin rule without a rule is an error."""
    assert "audiences[0].rule: required" in _errors(load, lambda d: d["audiences"][0].pop("rule"))


def test_rule_is_forbidden_for_upload_audiences(load: Load) -> None:
    """An upload audience gets members from events, so a rule there is an error."""
    message = _errors(load, lambda d: d["audiences"][0].update(origin="upload"))
    assert "audiences[0].rule: not allowed with origin upload" in message


def test_upload_audience_has_no_compiled_rule(load: Load) -> None:
    """An upload audience validates without a rule and contributes no compiled rule."""

    def edit(data: dict[str, Any]) -> None:
        data["audiences"].append({"id": "w", "name": "W", "origin": "upload", "list": {"id": 9}})

    assert list(load(edit).compiled_rules()) == ["fr"]


def test_rules_are_compiled_once(load: Load) -> None:
    """compiled_rules() hands out the same compiled object every time."""
    settings = load()
    fr = AudienceId("fr")
    assert settings.compiled_rules()[fr] is settings.compiled_rules()[fr]


@pytest.mark.parametrize("ref", [{}, {"name": "A", "id": 3}, {"id": 0}])
def test_list_reference_needs_exactly_one_of_name_or_id(load: Load, ref: dict[str, Any]) -> None:
    """A list is given by a name or by a positive id, never both or neither."""
    assert "audiences[0].list" in _errors(load, lambda d: d["audiences"][0].update(list=ref))


@pytest.mark.parametrize("audience_id", ["High-Value", "a b", "x" * 65, ""])
def test_audience_id_must_be_a_slug(load: Load, audience_id: str) -> None:
    """Audience ids are short lowercase slugs."""
    message = _errors(load, lambda d: d["audiences"][0].update(id=audience_id))
    assert "audiences[0].id:" in message


def test_at_least_one_audience_is_required(load: Load) -> None:
    """A config without audiences has nothing to do and is refused."""
    assert "audiences:" in _errors(load, lambda d: d.update(audiences=[]))


@pytest.mark.parametrize(
    ("duplicate", "key"),
    [
        ({"id": "fr", "list": {"id": 5}}, "audiences[1].id"),
        ({"id": "other", "list": {"name": "France"}}, "audiences[1].list.name"),
    ],
)
def test_audience_ids_and_lists_are_unique(load: Load, duplicate: dict[str, Any], key: str) -> None:
    """Two audiences may not share an id or a list."""
    message = _errors(
        load, lambda d: d["audiences"].append({"name": "N", "rule": "x", **duplicate})
    )
    assert f"{key}: same as audiences[0]" in message


def test_list_ids_are_unique(load: Load) -> None:
    """Two audiences may not write to the same list id."""

    def edit(data: dict[str, Any]) -> None:
        data["audiences"] = [
            {"id": name, "name": name, "origin": "upload", "list": {"id": 5}} for name in "ab"
        ]

    assert "audiences[1].list.id: same as audiences[0]" in _errors(load, edit)


def test_match_and_create_requires_first_and_last_name(load: Load) -> None:
    """Creating people needs firstName and lastName mappings, as in AEP."""
    message = _errors(load, lambda d: d["mapping"].pop())
    assert "mapping: marketo.person_creation match_and_create needs" in message
    assert "missing: lastName" in message


def test_match_only_needs_no_name_mappings(load: Load) -> None:
    """With match_only nobody is created, so no mapping is required."""

    def edit(data: dict[str, Any]) -> None:
        data["mapping"] = []
        data["marketo"]["person_creation"] = "match_only"

    assert load(edit).mapping == []


def test_mapping_targets_are_unique(load: Load) -> None:
    """Two mappings writing the same Marketo field are an error on the second one."""
    message = _errors(load, lambda d: d["mapping"].append({"from": "nick", "to": "firstName"}))
    assert "mapping[2].to: firstName is already mapping[0].to" in message


def test_mapping_of_a_blocked_label_is_an_error(load: Load) -> None:
    """Exporting an attribute whose label is blocked names the mapping and the label."""

    def edit(data: dict[str, Any]) -> None:
        data["mapping"].append({"from": "phone", "to": "mobilePhone"})
        data["governance"] = {"labels": {"phone": ["C2"]}, "blocked_labels": ["C2"]}

    assert "mapping[2].from: exports label C2 of phone" in _errors(load, edit)


def test_label_on_a_parent_path_covers_its_children(load: Load) -> None:
    """A label on `address` blocks a mapping from `address.city`."""

    def edit(data: dict[str, Any]) -> None:
        data["mapping"].append({"from": "address.city", "to": "city"})
        data["governance"] = {"labels": {"address": ["C2"]}, "blocked_labels": ["C2"]}

    assert "mapping[2].from: exports label C2 of address" in _errors(load, edit)


def test_settings_are_frozen(load: Load) -> None:
    """Components cannot change the configuration they were given."""
    settings = load()
    with pytest.raises(pydantic.ValidationError):
        settings.kafka.topic = "other"  # type: ignore[misc]  # the assignment mypy refuses, at run time


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """A path that does not exist is reported as such."""
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(tmp_path / "nope.yaml", {})


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    """A path that cannot be read (here a directory) is a ConfigError, not a crash."""
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path, {})


def test_yaml_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    """Broken YAML is reported with the line and column of the problem."""
    path = tmp_path / "bad.yaml"
    path.write_text("kafka:\n  topic: [a, b\nmarketo: {}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"YAML error at line 3, column 8"):
        load_settings(path, {})


def test_duplicate_yaml_key_is_an_error(tmp_path: Path) -> None:
    """A key given twice is refused instead of the last one silently winning."""
    path = tmp_path / "dup.yaml"
    path.write_text("kafka: {topic: a}\nkafka: {topic: b}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="duplicate key 'kafka'"):
        load_settings(path, {})


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just text\n"])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    """An empty file, a list or a scalar is not a configuration."""
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_settings(path, {})


def test_validate_command_accepts_the_local_config(capsys: pytest.CaptureFixture[str]) -> None:
    """`validate CONFIG` prints a summary and exits 0, without credentials."""
    assert main(["validate", str(LOCAL_CONFIG)]) == 0
    assert capsys.readouterr().out == "config OK: 6 audiences, 4 mappings\n"


def test_validate_command_reports_errors_with_exit_2(
    config_file: Callable[[dict[str, Any]], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """An invalid file makes `validate` print the problems and exit 2."""
    path = config_file({**MINIMAL, "flush": {"max_batch": 0}})
    assert main(["validate", str(path)]) == 2
    assert "flush.max_batch:" in capsys.readouterr().err


def test_validate_online_requires_credentials(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--online` talks to Marketo, so missing credentials are an error (exit 2)."""
    for name in CREDENTIALS:
        monkeypatch.delenv(name, raising=False)
    assert main(["validate", str(LOCAL_CONFIG), "--online"]) == 2
    assert "MARKETO_CLIENT_ID" in capsys.readouterr().err


def test_non_string_top_level_key_is_a_config_error(tmp_path: Path) -> None:
    """A top-level key like `1:` is reported, not a TypeError from keyword arguments."""
    path = tmp_path / "c.yaml"
    path.write_text("1: x\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="top-level keys must be names"):
        load_settings(path, {})


def test_hyphenated_attribute_names_work_in_mapping_and_quoted_in_rules(load: Load) -> None:
    """A mapping reads first-name as written; a rule reads it quoted in backticks."""

    def edit(data: dict[str, Any]) -> None:
        data["mapping"][0]["from"] = "first-name"
        data["audiences"][0]["rule"] = '`first-name` == "Ann" and address.`post-code` != null'

    settings = load(edit)
    assert settings.mapping[0].source == "first-name"
    assert settings.compiled_rules()[AudienceId("fr")].paths == {"first-name", "address.post-code"}


def test_event_time_bounds_are_settings_with_safe_defaults(load: Load) -> None:
    """ts may be a day ahead of the clock and no older than 2000 unless configured otherwise."""
    kafka = load().kafka
    assert (kafka.max_event_future_s, kafka.min_event_ts.isoformat()) == (
        86_400.0,
        "2000-01-01T00:00:00+00:00",
    )


def test_min_event_ts_without_an_offset_is_refused(load: Load) -> None:
    """kafka.min_event_ts must name an instant: a time without a UTC offset is an error."""
    message = _errors(load, lambda data: data.update(kafka={"min_event_ts": "2000-01-01T00:00:00"}))
    assert "kafka.min_event_ts" in message


def test_the_state_retains_every_attribute_by_default(load: Load) -> None:
    """Without `state`, every attribute is kept: any later rule reads from the state alone."""
    assert load().retained_paths() == ALL_ATTRIBUTES


def test_a_list_of_retained_paths_is_kept_with_prefix_star_as_its_prefix(load: Load) -> None:
    """`state.attributes` as a list: `address.*` keeps everything under address."""

    def edit(data: dict[str, Any]) -> None:
        data["state"] = {"attributes": ["country", "firstName", "lastName", "address.*"]}
        data["audiences"][0]["rule"] = 'country == "FR" and address.city == "Lyon"'

    retained = load(edit).retained_paths()
    assert retained == {"country", "firstName", "lastName", "address"}


def test_a_mapped_ecid_is_retained_with_a_list(load: Load) -> None:
    """The ecid is an identity: kept when the mapping reads it, whatever the list."""

    def edit(data: dict[str, Any]) -> None:
        data["state"] = {"attributes": ["country", "firstName", "lastName"]}
        data["mapping"].append({"from": "identities.ecid", "to": "ecid"})

    assert ECID in load(edit).retained_paths()


def test_a_rule_reading_a_path_the_state_does_not_retain_is_an_error(load: Load) -> None:
    """The refusal names the audience, its rule and the path: the limit never bites silently."""

    def edit(data: dict[str, Any]) -> None:
        data["state"] = {"attributes": ["country", "firstName", "lastName", "address.zip"]}
        data["audiences"][0]["rule"] = 'country == "FR" and address.city == "Lyon"'

    expected = "audiences[0].rule: audience fr reads address.city, which state.attributes"
    assert expected in _errors(load, edit)


def test_a_mapping_from_a_path_the_state_does_not_retain_is_an_error(load: Load) -> None:
    """A mapped attribute the state does not keep would be sent empty: refused, named."""

    def edit(data: dict[str, Any]) -> None:
        data["state"] = {"attributes": ["country", "firstName"]}

    assert "mapping[1].from: reads lastName, which state.attributes" in _errors(load, edit)


def test_a_consent_path_the_state_does_not_retain_is_an_error(load: Load) -> None:
    """A consent switch at an attribute path must be kept, or consent would read absent."""

    def edit(data: dict[str, Any]) -> None:
        data["state"] = {"attributes": ["country", "firstName", "lastName"]}
        data["governance"] = {"consent_path": "prefs.marketing"}

    assert "governance.consent_path: reads prefs.marketing" in _errors(load, edit)


@pytest.mark.parametrize("path", ["*", "address.*.city", "a b", ".x"])
def test_a_retained_path_must_be_a_path_or_a_prefix_star(load: Load, path: str) -> None:
    """Only dotted paths, optionally ending in `.*`, are retained paths."""

    def edit(data: dict[str, Any]) -> None:
        data["state"] = {"attributes": ["country", "firstName", "lastName", path]}

    assert "state.attributes" in _errors(load, edit)


def test_run_refuses_a_rule_reading_an_unretained_path_with_exit_2(
    config_file: Callable[[dict[str, Any]], Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`run` stops at start-up, before any connection, naming the audience and the path."""
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    path = config_file({**MINIMAL, "state": {"attributes": ["firstName", "lastName"]}})
    assert main(["run", str(path)]) == 2
    assert "audiences[0].rule: audience fr reads country" in capsys.readouterr().err
