"""Every command the README shows runs as written from a checkout, where `crm-tui` is not on PATH: the README
writes them with ./scripts/run (which sets up .venv and runs the CLI), and each names subcommands that exist."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from crm_tui.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
RUN = "./scripts/run"
GLOBAL_WITH_VALUE = {"--home", "--db", "--now"}


def readme_commands() -> list[str]:
    """The commands the README shows: lines of its code blocks and `code` in its text that start with the
    program (as ./scripts/run or as crm-tui)."""
    commands: list[str] = []
    fence = False
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fence = not fence
            continue
        if fence:
            if line.startswith((RUN, "crm-tui ")):
                commands.append(line)
        else:
            commands += [
                span for span in re.findall(r"`([^`]+)`", line) if span.startswith((RUN, "crm-tui "))
            ]
    return commands


def command_paths(command: str) -> list[list[str]]:
    """The global options and subcommand words of ``command`` (each alternative of ``a|b``), without the
    description written beside it in the README."""
    words = shlex.split(re.split(r"\s{2,}|\s#", command)[0].replace("...", "").rstrip("\\ "))[1:]
    options: list[str] = []
    index = 0
    while (
        index < len(words) and words[index].startswith("--") and words[index] not in ("--help", "--version")
    ):
        takes_value = words[index] in GLOBAL_WITH_VALUE
        options += words[index : index + 1 + takes_value]
        index += 1 + takes_value
    paths: list[list[str]] = [[]]
    while index < len(words):
        alternatives = words[index].split("|")
        offered = _subcommands(paths[0])
        if not all(word in offered for word in alternatives):
            break
        paths = [path + [word] for path in paths for word in alternatives]
        index += 1
    return [options + path for path in paths]


def _subcommands(path: list[str]) -> set[str]:
    """The subcommands offered after the subcommand words ``path``."""
    parser = build_parser()
    for word in [*path, None]:
        groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if word is None:
            return set(groups[0].choices) if groups else set()
        parser = groups[0].choices[word]
    return set()


def test_the_readme_writes_every_command_as_it_runs_from_a_checkout() -> None:
    commands = readme_commands()
    assert len(commands) > 30, "the README's commands were found"
    assert [c for c in commands if c.startswith("crm-tui ")] == [], "crm-tui is not on PATH in a checkout"
    assert (ROOT / "scripts" / "run").stat().st_mode & 0o111, "./scripts/run is executable"


def test_every_readme_command_names_subcommands_that_exist(capsys: pytest.CaptureFixture[str]) -> None:
    checked = 0
    for command in readme_commands():
        for path in command_paths(command):
            with pytest.raises(SystemExit) as ended:
                build_parser().parse_args([*path, "--help"])
            assert ended.value.code == 0, f"{command}: {path}"
            checked += 1
    capsys.readouterr()
    assert checked > 40


@pytest.mark.slow
def test_a_readme_mail_command_runs_from_the_checkout(tmp_path: Path) -> None:
    env = {**os.environ, "CRM_TUI_VENV": sys.prefix, "CRM_TUI_HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [*shlex.split(f"{RUN} --demo mail list --limit 2 --json")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)) == 2
