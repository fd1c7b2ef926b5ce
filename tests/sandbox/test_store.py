"""The store and its state file: round trip, folder ids kept, indexes rebuilt. No HTTP."""

from pathlib import Path

from worker.sandbox.store import load, new_store, save


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
