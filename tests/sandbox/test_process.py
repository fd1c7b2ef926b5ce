"""The command line, through SandboxProcess: start-up line, flags, state file, admin helpers.

Scenario: the sandbox runs as `python -m worker.sandbox` exactly as the demo and benchmarks run it.
"""

import json
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.sandbox_views import sandbox_stats
from worker.sandbox.cli import api_user, main
from worker.sandbox.identity import ApiUser
from worker.sandbox.process import DEFAULT_CLIENT_SECRET, SandboxProcess, SandboxStartError
from worker.sandbox.speed import measure

pytestmark = pytest.mark.integration


def _call(sb: SandboxProcess, method: str, path: str, token: str, body: object = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(sb.url + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _create_list(sb: SandboxProcess, token: str, name: str) -> int:
    form = urllib.parse.urlencode({"name": name, "folder": '{"id":1001,"type":"Folder"}'})
    url = sb.url + "/rest/asset/v1/staticLists.json"
    request = urllib.request.Request(url, data=form.encode(), method="POST")
    request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(json.loads(response.read())["result"][0]["id"])


def test_process_announces_its_url_and_serves_the_api() -> None:
    """The child prints `listening on http://127.0.0.1:PORT` and answers API calls there."""
    with SandboxProcess() as sb:
        assert sb.url.startswith("http://127.0.0.1:")
        token = sb.token()
        synced = _call(sb, "POST", "/rest/v1/leads.json", token, {"input": [{"email": "a@b.c"}]})
        list_id = _create_list(sb, token, "Proc")
        _call(sb, "POST", f"/rest/v1/lists/{list_id}/leads.json", token, {"input": [{"id": 1}]})
        state = sb.state()
    assert synced["result"] == [{"id": 1, "status": "created"}]
    assert state["members"] == {str(list_id): [1]}


def test_secret_comes_from_the_environment_not_argv() -> None:
    """SandboxProcess passes the secret in MARKETO_CLIENT_SECRET, never on the command line."""
    with SandboxProcess() as sb:
        assert sb.popen is not None
        args = sb.popen.args
        assert isinstance(args, list)
        assert DEFAULT_CLIENT_SECRET not in args
        assert sb.token()


def test_state_file_survives_a_restart(tmp_path: Path) -> None:
    """On SIGTERM the state file is written, and the next start loads it."""
    state_file = tmp_path / "state.json"
    with SandboxProcess("--state-file", str(state_file)) as sb:
        list_id = _create_list(sb, sb.token(), "Kept")
        exit_code = sb.stop()
    with SandboxProcess("--state-file", str(state_file)) as sb:
        lists = sb.state()["lists"]
    assert exit_code == 0
    assert isinstance(lists, list)
    assert [sl["id"] for sl in lists] == [list_id]


def test_limit_flags_are_applied() -> None:
    """`--calls-per-window 2` makes the third call in the window a 606."""
    with SandboxProcess("--calls-per-window", "2", "--window-s", "600") as sb:
        token = sb.token()
        codes = [
            _call(sb, "GET", "/rest/v1/leads/describe.json", token)
            .get("errors", [{}])[0]
            .get("code")
            for _ in range(3)
        ]
    assert codes == [None, None, "606"]


def test_bulk_flags_are_applied() -> None:
    """With speed and refresh at 0, an export reads `Completed` right after its enqueue."""
    flags = ("--no-limits", "--bulk-export-rows-per-s", "0", "--bulk-status-interval-s", "0")
    with SandboxProcess(*flags) as sb:
        token = sb.token()
        list_id = _create_list(sb, token, "Exported")
        body = {"fields": ["id"], "filter": {"staticListId": list_id}}
        created = _call(sb, "POST", "/bulk/v1/leads/export/create.json", token, body)
        job = "/bulk/v1/leads/export/" + created["result"][0]["exportId"]
        _call(sb, "POST", f"{job}/enqueue.json", token)
        status = _call(sb, "GET", f"{job}/status.json", token)
    assert status["result"][0]["status"] == "Completed"


def test_negative_bulk_flag_is_a_usage_error() -> None:
    """A negative `--bulk-export-rows-per-s` exits with a usage error."""
    with pytest.raises(SystemExit) as exited:
        main(["--client-id", "a", "--client-secret", "b", "--bulk-export-rows-per-s", "-1"])
    assert exited.value.code == 2


def test_admin_helpers_set_faults_and_read_stats() -> None:
    """set_faults() changes behaviour at run time and stats() reports the resulting codes."""
    with SandboxProcess("--no-limits") as sb:
        token = sb.token()
        sb.set_faults(p_608=1.0)
        answer = _call(sb, "GET", "/rest/v1/leads/describe.json", token)
        stats = sb.stats()
    assert answer["errors"][0]["code"] == "608"
    assert stats["calls"] == {"describe": {"608": 1}, "identity": {"ok": 1}}


def test_bad_flag_value_fails_start_with_the_error_output() -> None:
    """A start-up failure raises with the child's stderr in the message."""
    with (
        pytest.raises(SandboxStartError, match="unknown --quota-tz"),
        SandboxProcess("--quota-tz", "Mars/Olympus"),
    ):
        pass


def test_missing_credentials_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a client id and secret the command exits with a usage error."""
    monkeypatch.delenv("MARKETO_CLIENT_ID", raising=False)
    monkeypatch.delenv("MARKETO_CLIENT_SECRET", raising=False)
    with pytest.raises(SystemExit) as exited:
        main(["--port", "0"])
    assert exited.value.code == 2


def test_speed_probe_measures_calls_per_second() -> None:
    """measure() drives membership calls against a running sandbox and reports a rate."""
    with SandboxProcess("--no-limits") as sb:
        rate = measure(sb.url, 0.5, workers=2)
        calls = sandbox_stats(sb)["calls"]
    assert rate > 0
    assert calls["addToList"]["ok"] > 0


def _bulk_import(sb: SandboxProcess, token: str, csv_text: str) -> Any:
    boundary = "sandbox-test-boundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="l.csv"\r\n'
        f"Content-Type: text/csv\r\n\r\n{csv_text}\r\n--{boundary}--\r\n"
    ).encode()
    request = urllib.request.Request(sb.url + "/bulk/v1/leads.json?format=csv", data=body)
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", f"multipart/form-data; boundary={boundary}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_bulk_import_runs_on_the_real_clock_at_the_flag_speed() -> None:
    """With --bulk-rows-per-s 1000000 a 3-row import is Complete by the next call."""
    with SandboxProcess("--bulk-rows-per-s", "1000000") as sb:
        token = sb.token()
        created = _bulk_import(sb, token, "email\r\na@x.com\r\nb@x.com\r\nc@x.com\r\n")
        batch_id = created["result"][0]["batchId"]
        status = _call(sb, "GET", f"/bulk/v1/leads/batch/{batch_id}.json", token)
        leads = sb.state()["leads"]
    assert (status["result"][0]["status"], status["result"][0]["numOfLeadsProcessed"]) == (
        "Complete",
        3,
    )
    assert isinstance(leads, list)
    assert len(leads) == 3


def test_api_user_flag_needs_three_parts() -> None:
    """An `--api-user` without CLIENT_ID:SECRET:USER_ID is refused with a clear message."""
    with pytest.raises(ValueError, match="CLIENT_ID:SECRET:USER_ID"):
        api_user("only-an-id")


def test_api_user_secret_may_hold_a_colon() -> None:
    """The user id is the part after the last colon; the secret keeps its own colons."""
    assert api_user("id:se:cret:etl@example.com") == ApiUser("id", "se:cret", "etl@example.com")
