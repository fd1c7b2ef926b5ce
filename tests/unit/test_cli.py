"""The `marketo-worker` command line: version, and every command's help."""

from __future__ import annotations

import argparse
import importlib.metadata
from pathlib import Path

import pytest

from worker.cli import COMMANDS, main, run_command
from worker.commands.command import Command
from worker.commands.exit_codes import ExitCode
from worker.errors import ConfigError
from worker.settings import Settings

LOCAL_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "local" / "config.yaml"


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


def _parsed(config: Path) -> Command:
    """A command whose arguments name `config` and whose run fails as a start-up check does."""

    def run(_args: argparse.Namespace, _settings: Settings) -> ExitCode:
        raise ConfigError("kafka.topic: input topic 'x' does not exist")

    return Command(lambda _argv: argparse.Namespace(config=config), run)


def test_a_configuration_error_while_running_is_exit_2_with_its_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The runner prints a ConfigError the command raises, on stderr, and returns exit 2."""
    assert run_command(_parsed(LOCAL_CONFIG), []) is ExitCode.USAGE
    assert capsys.readouterr().err == "kafka.topic: input topic 'x' does not exist\n"


def test_an_unreadable_configuration_is_exit_2_before_the_command_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing file is the runner's exit 2: the command's run is never called."""
    assert run_command(_parsed(tmp_path / "absent.yaml"), []) is ExitCode.USAGE
    assert "absent.yaml" in capsys.readouterr().err


def test_exit_codes_keep_their_values() -> None:
    """Scripts read these numbers: 0, 1, 2, 3 and 130, with explain's not-found equal to 1."""
    assert [int(code) for code in ExitCode] == [0, 1, 2, 3, 130]
    assert ExitCode(1) is ExitCode.NOT_FOUND
