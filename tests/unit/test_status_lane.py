"""`status` names the lane each audience's pending adds go by: the worker's own bulk test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from worker.commands.status import report, text
from worker.config_file import load_settings
from worker.core.drift import RepairCalls
from worker.core.ids import AudienceId
from worker.core.progress import AudienceProgress, Progress
from worker.settings import Settings

CREDENTIALS = {"MARKETO_CLIENT_ID": "the-client", "MARKETO_CLIENT_SECRET": "s3cr3t-value"}


def settings_with(tmp_path: Path, **marketo: object) -> Settings:
    config: dict[str, Any] = {
        "marketo": {"base_url": "https://123-ABC-456.mktorest.com", **marketo},
        "mapping": [{"from": n, "to": n} for n in ("firstName", "lastName")],
        "audiences": [{"id": "fr", "name": "F", "rule": "exists(x)", "list": {"name": "F"}}],
        "flush": {"bulk_threshold": 1_000},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return load_settings(path, CREDENTIALS)


def progress_of(adds: int, removes: int = 0) -> Progress:
    calls = RepairCalls(1, 1, 1 if removes else 0)
    fr = AudienceProgress(AudienceId("fr"), adds, 0, adds, removes, calls)
    return Progress(adds, (fr,), calls)


def lane(settings: Settings, adds: int, removes: int = 0) -> object:
    return report(settings, progress_of(adds, removes), 0)["audiences"][0]["lane"]


@pytest.mark.parametrize(("adds", "expected"), [(999, "rest"), (1_000, "bulk")])
def test_pending_adds_at_the_threshold_are_on_the_bulk_lane(
    tmp_path: Path, adds: int, expected: str
) -> None:
    """999 pending adds go by REST, 1,000 (the threshold) by bulk import."""
    assert lane(settings_with(tmp_path), adds) == expected


def test_match_only_never_uses_the_bulk_lane(tmp_path: Path) -> None:
    """With `match_only` even a large backlog goes by REST (an import would create persons)."""
    assert lane(settings_with(tmp_path, person_creation="match_only"), 50_000) == "rest"


def test_only_removals_pending_are_on_rest(tmp_path: Path) -> None:
    """Removals always go by REST."""
    assert lane(settings_with(tmp_path), 0, removes=5_000) == "rest"


def test_nothing_pending_has_no_lane(tmp_path: Path) -> None:
    """An audience with nothing pending shows no lane."""
    assert lane(settings_with(tmp_path), 0) is None


def test_the_text_shows_the_lane_column(tmp_path: Path) -> None:
    """The terminal table has a `lane` column with the audience's lane."""
    lines = text(report(settings_with(tmp_path), progress_of(2_000), 0)).splitlines()
    assert lines[1].split()[-1] == "lane"
    assert lines[2].split()[-1] == "bulk"
    assert "not configured" not in lines[3]
