"""The repository stands alone: no tracked file points at a document that is not in it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
THIS = Path(__file__).resolve().relative_to(ROOT).as_posix()

# Documents the project was once written against, kept outside the repository.
OUTSIDE = re.compile(
    r"DESIGN\b|API\.md|BULK\.md|NOTES\.md|STYLE\.md|ANCHORS|\.\./shared|issue #[0-9]"
)
# tests/unit/test_cli.py lists the same words to check that help texts contain none of them.
ALLOWED = {("tests/unit/test_cli.py", 'REFERENCES = ("DESIGN", "§", "API.md", "NOTES.md")')}


def _tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True, timeout=30
    )
    return [name for name in listed.stdout.decode().split("\0") if name and name != THIS]


def _references(name: str) -> list[str]:
    path = ROOT / name
    if not path.is_file():  # deleted in the worktree, not yet committed
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:  # binary: nothing a reader follows
        return []
    return [
        f"{name}:{number}: {line.strip()}"
        for number, line in enumerate(text.splitlines(), start=1)
        if OUTSIDE.search(line) and (name, line.strip()) not in ALLOWED
    ]


def test_no_tracked_file_refers_to_documents_outside_the_repository() -> None:
    """No tracked file names DESIGN, API.md, NOTES.md, STYLE.md, ../shared or an issue number."""
    tracked = _tracked_files()
    assert "README.md" in tracked  # the scan reads the repository's files...
    assert OUTSIDE.search("see " + "DESIGN" + " §4")  # ...and would see a reference in them
    found = [hit for name in tracked for hit in _references(name)]
    assert not found, "references to documents outside the repository:\n" + "\n".join(found)
