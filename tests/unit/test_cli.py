"""The `marketo-worker` command line: version, and every command's help."""

from __future__ import annotations

import importlib.metadata

import pytest

from worker.cli import COMMANDS, main


def test_version_prints_the_installed_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    """`--version` prints the package metadata's version and exits 0."""
    assert main(["--version"]) == 0
    version = importlib.metadata.version("marketo-audience-worker")
    assert capsys.readouterr().out == f"marketo-worker {version}\n"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_help_lists_its_exit_codes(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """COMMAND --help ends with the command's exit codes."""
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    assert "exit codes: 0 " in capsys.readouterr().out


REFERENCES = ("DESIGN", "§", "API.md", "NOTES.md")


def test_top_level_help_cites_no_document_outside_the_repository(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The command list states facts; it points at no design notes the user does not have."""
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "validate" in out  # the command list was printed
    assert not [reference for reference in REFERENCES if reference in out]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_command_help_cites_no_document_outside_the_repository(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A command's help states facts; it points at no design notes the user does not have."""
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    assert "exit codes: 0 " in out  # the command's help was printed
    assert not [reference for reference in REFERENCES if reference in out]
