"""The command line starts fast: asking for help loads neither the database layer nor the app's toolkit, and every
subcommand names its handler as a function (no "module:function" strings to resolve)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from crm_tui.cli.main import build_parser

HEAVY = ("sqlalchemy", "sqlmodel", "textual", "rich", "imapclient", "jinja2", "fpdf")

LOADED_AFTER = """
import json, sys
from crm_tui.cli.main import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted({name.split(".")[0] for name in sys.modules})}))
"""


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["mail", "--help"], ["sync", "--help"], ["contacts", "--help"], ["account", "add", "--help"],
     ["automations", "run", "--help"], ["import", "--help"], ["mail", "report", "--help"], ["--version"]],
    ids=" ".join,
)  # fmt: skip
def test_help_loads_neither_the_database_layer_nor_textual(argv: list[str]) -> None:
    # A fresh interpreter: this test process has imported everything already.
    result = subprocess.run(
        [sys.executable, "-c", LOADED_AFTER, *argv], capture_output=True, text=True, timeout=60, check=True
    )
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["code"] == 0
    assert not set(outcome["modules"]) & set(HEAVY), sorted(set(outcome["modules"]) & set(HEAVY))


def _leaf_parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    leaves = []
    groups = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    for group in groups:
        for name, sub in group.choices.items():
            leaves += _leaf_parsers(sub, (*path, name))
    return leaves if groups else [path]


def test_every_subcommand_has_a_function_as_its_handler() -> None:
    parser = build_parser()
    leaves = _leaf_parsers(parser)
    assert len(leaves) > 30
    for path in leaves:
        handler = parser.parse_args([*path, *_required_arguments(parser, path)]).handler
        assert callable(handler), (path, handler)


def _required_arguments(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> list[str]:
    """Stand-in values for a subcommand's positional arguments (enough to parse, never run)."""
    for name in path:
        group = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = group.choices[name]
    values = []
    for action in parser._actions:
        if action.option_strings or isinstance(action, argparse._SubParsersAction):
            if action.required:
                values += [action.option_strings[0], "x"]
            continue
        value = next(iter(action.choices)) if action.choices else "1"
        values.append(str(value))
    return values
