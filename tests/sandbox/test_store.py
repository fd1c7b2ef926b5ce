"""The store and its state file: round trip, folder ids kept, indexes rebuilt, bad files
refused. No HTTP."""

from pathlib import Path

import pytest

from worker.sandbox.cli import main
from worker.sandbox.store import StateFileError, load, new_store, save

CREDENTIALS = ["--client-id", "the-client", "--client-secret", "the-secret"]


def test_state_file_round_trip_keeps_leads_lists_and_members(tmp_path: Path) -> None:
    """Everything saved is loaded back with the same ids, and ids keep increasing."""
    store = new_store(["Audiences"], 100.0)
    lead = store.create_lead({"email": "Ann@Example.com", "firstName": "Ann"}, 100.0)
    sl = store.create_list("L", "", 1001, 100.0)
    store.members[sl.id][lead.id] = None
    save(store, tmp_path / "state.json")
    loaded = load(tmp_path / "state.json", ["Audiences"], 200.0)
    assert loaded.leads[lead.id].fields == {"email": "Ann@Example.com", "firstName": "Ann"}
    assert loaded.find("email", "ann@example.com") == [lead.id]
    assert list(loaded.members[sl.id]) == [lead.id]
    assert loaded.create_lead({}, 300.0).id == lead.id + 1
    assert loaded.create_list("M", "", 1001, 300.0).id == sl.id + 1


def test_loading_keeps_folder_ids_and_adds_new_folders(tmp_path: Path) -> None:
    """Saved user folders keep their ids; a newly named folder gets a fresh one."""
    save(new_store(["B", "A"], 0.0), tmp_path / "s.json")
    loaded = load(tmp_path / "s.json", ["A", "C"], 0.0)
    by_name = {f.name: f.id for f in loaded.folders.values() if not f.is_system}
    assert by_name == {"B": 1001, "A": 1002, "C": 1003}


def test_missing_state_file_is_an_empty_instance(tmp_path: Path) -> None:
    """A state file that does not exist yet starts an empty instance."""
    store = load(tmp_path / "absent.json", ["Audiences"], 0.0)
    assert store.leads == {}
    assert 12 in store.folders


def test_email_change_moves_the_index() -> None:
    """Updating a lead's email makes it findable by the new email only."""
    store = new_store([], 0.0)
    lead = store.create_lead({"email": "old@example.com"}, 0.0)
    store.update_lead(lead, {"email": "new@example.com"}, 1.0)
    assert store.find("email", "old@example.com") == []
    assert store.find("email", "new@example.com") == [lead.id]


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b'{"leads": [{"email": "a"}]}'])
def test_corrupt_state_file_is_an_error_naming_the_file(tmp_path: Path, content: bytes) -> None:
    """A state file that is not JSON, or not a saved state, raises StateFileError with its path."""
    path = tmp_path / "state.json"
    path.write_bytes(content)
    with pytest.raises(StateFileError, match=f"--state-file {path}: not a sandbox state file"):
        load(path, ["Audiences"], 0.0)


def test_sandbox_with_a_corrupt_state_file_exits_2_and_keeps_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command prints one line naming the file (no traceback), exits 2, overwrites nothing."""
    path = tmp_path / "state.json"
    path.write_bytes(b"{not json")
    assert main([*CREDENTIALS, "--port", "0", "--state-file", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"marketo-worker sandbox: --state-file {path}: not a sandbox state")
    assert "Traceback" not in err
    assert path.read_bytes() == b"{not json"


def test_state_file_in_a_missing_folder_is_refused_at_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A state file that could not be saved at stop is refused before serving, exit 2."""
    path = tmp_path / "missing" / "state.json"
    with pytest.raises(SystemExit) as exited:
        main([*CREDENTIALS, "--port", "0", "--state-file", str(path)])
    assert exited.value.code == 2
    assert f"the folder {path.parent} does not exist" in capsys.readouterr().err
