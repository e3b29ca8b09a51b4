"""Every record type headless: `crm-tui TYPE list|show [--json]` on the demo. Lists are tables with a header row
(or JSON arrays with TYPE:ID ids) that take the filters that make sense for the type; `show` takes N or TYPE:N,
refuses another type as a usage error (exit 2) and says in one line that a missing record does not exist
(exit 1)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from crm_tui.cli.main import main
from tests.cli.test_startup import HEAVY, LOADED_AFTER
from tests.conftest import DEMO_NOW

# The command of each record type and the type its ids carry.
COMMANDS = {
    "contacts": "contact",
    "organizations": "organization",
    "leads": "lead",
    "opportunities": "opportunity",
    "activities": "activity",
    "tickets": "ticket",
    "quotes": "quote",
}


def run(capsys: pytest.CaptureFixture[str], home: Path, *argv: str) -> tuple[int, str, str]:
    code = main(["--home", str(home), "--demo", "--now", DEMO_NOW, *argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], home: Path, *argv: str) -> list[dict[str, Any]]:
    code, out, err = run(capsys, home, *argv, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert isinstance(data, list) and all(isinstance(row, dict) for row in data)
    return data


def first_id(capsys: pytest.CaptureFixture[str], home: Path, command: str) -> str:
    rows = run_json(capsys, home, command, "list", "--limit", "1")
    assert rows, f"the demo has no {command}"
    return str(rows[0]["id"])


@pytest.mark.parametrize("command", COMMANDS)
def test_every_type_lists_as_a_table_with_a_header_and_as_json_with_type_ids(
    capsys: pytest.CaptureFixture[str], demo_home: Path, command: str
) -> None:
    code, out, err = run(capsys, demo_home, command, "list", "--limit", "3")
    assert code == 0 and err == ""
    header, *rows = out.splitlines()
    assert header.split()[0] == "ID"
    assert len(rows) == 3
    assert all(row.startswith(f"{COMMANDS[command]}:") for row in rows)

    data = run_json(capsys, demo_home, command, "list", "--limit", "3")
    assert len(data) == 3
    assert all(str(row["id"]).startswith(f"{COMMANDS[command]}:") for row in data)
    assert [row["id"] for row in data] == [row.split()[0] for row in rows]


@pytest.mark.parametrize("command", COMMANDS)
def test_show_takes_a_bare_number_or_type_id_and_gives_the_same_record(
    capsys: pytest.CaptureFixture[str], demo_home: Path, command: str
) -> None:
    ref = first_id(capsys, demo_home, command)
    number = ref.split(":")[1]
    by_number = run_json(capsys, demo_home, command, "show", number)
    by_ref = run_json(capsys, demo_home, command, "show", ref)
    assert by_number == by_ref
    assert len(by_ref) == 1 and by_ref[0]["id"] == ref
    assert isinstance(by_ref[0]["custom"], dict)
    assert all(":" in related["id"] and related["name"] for related in by_ref[0]["related"])

    code, out, err = run(capsys, demo_home, command, "show", ref)
    assert code == 0 and err == ""
    assert out.splitlines()[0].startswith(f"{ref}  ")
    assert "updated at" in out


@pytest.mark.parametrize("command", COMMANDS)
def test_an_id_of_another_type_or_no_id_at_all_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], demo_home: Path, command: str
) -> None:
    other = "message" if command != "contacts" else "quote"
    for wrong in (f"{other}:12", "twelve", "0", f"{COMMANDS[command]}:x"):
        code, out, err = run(capsys, demo_home, command, "show", wrong)
        assert code == 2, wrong
        assert out == ""
        assert err.startswith("crm-tui: usage error:") and err.count("\n") == 1, err


@pytest.mark.parametrize("command", COMMANDS)
def test_a_missing_record_says_so_in_one_line_and_exits_1(
    capsys: pytest.CaptureFixture[str], demo_home: Path, command: str
) -> None:
    for missing in ("99999", f"{COMMANDS[command]}:99999", "3000000000"):  # the last beyond 32 bits
        code, out, err = run(capsys, demo_home, command, "show", missing)
        assert (code, out) == (1, "")
        assert err == f"crm-tui: {COMMANDS[command]}:{missing.split(':')[-1]} does not exist\n"


def test_a_deal_shows_its_facts_people_custom_fields_and_related_records(
    capsys: pytest.CaptureFixture[str], demo_home: Path
) -> None:
    deals = run_json(capsys, demo_home, "opportunities", "list")
    shown = (
        (listed, run_json(capsys, demo_home, "opportunities", "show", listed["id"])[0])
        for listed in deals
        if listed["primary_contact"] and listed["organization"]
    )
    listed, deal = next((listed, deal) for listed, deal in shown if "roof_area_m2" in deal["custom"])
    for key in (
        "title",
        "amount",
        "currency",
        "pipeline",
        "stage",
        "owner",
        "organization",
        "primary_contact",
    ):
        assert deal[key] == listed[key], key
    assert deal["primary_contact"] in deal["contacts"]
    related = {r["id"]: r for r in deal["related"]}
    assert related[deal["primary_contact"]]["role"] == "primary contact"
    assert related[deal["organization"]]["role"] == "customer"
    assert isinstance(deal["custom"]["roof_area_m2"], str)  # a number as a decimal string, like amounts

    code, out, _ = run(capsys, demo_home, "opportunities", "show", listed["id"])
    assert code == 0
    assert f"{deal['organization_name']} ({deal['organization']})" in out
    assert f"{deal['amount']} {deal['currency']}" in out
    assert f"custom.roof_area_m2  {deal['custom']['roof_area_m2']}" in out
    header = next(line for line in out.splitlines() if line.startswith("RELATED"))
    assert header.split() == ["RELATED", "NAME", "ROLE"]


def test_a_quote_shows_its_lines_and_its_deal(capsys: pytest.CaptureFixture[str], demo_home: Path) -> None:
    (quote,) = run_json(capsys, demo_home, "quotes", "show", first_id(capsys, demo_home, "quotes"))
    assert quote["items"]
    assert str(quote["opportunity"]).startswith("opportunity:")
    assert [r["id"] for r in quote["related"]] == [quote["opportunity"]]
    lines_total = sum(int(item["total"].replace(".", "")) for item in quote["items"])
    assert f"{lines_total // 100}.{lines_total % 100:02d}" == quote["total"]

    code, out, _ = run(capsys, demo_home, "quotes", "show", quote["id"])
    assert code == 0
    assert any(
        line.split() == ["QUANTITY", "DESCRIPTION", "UNIT", "PRICE", "TOTAL"] for line in out.splitlines()
    )


def test_a_contact_and_an_activity_show_their_links(
    capsys: pytest.CaptureFixture[str], demo_home: Path
) -> None:
    contact = next(c for c in run_json(capsys, demo_home, "contacts", "list") if c["organization"])
    (shown,) = run_json(capsys, demo_home, "contacts", "show", contact["id"])
    assert shown["emails"] == contact["emails"] and shown["organization"] == contact["organization"]
    assert contact["organization"] in [r["id"] for r in shown["related"]]

    activity = next(a for a in run_json(capsys, demo_home, "activities", "list") if a["opportunity"])
    (act,) = run_json(capsys, demo_home, "activities", "show", activity["id"])
    for key in ("subject", "type", "status", "start", "owner", "owner_name", "organization", "opportunity"):
        assert act[key] == activity[key], key


def test_the_lists_filter_by_status_kind_stage_owner_and_search(
    capsys: pytest.CaptureFixture[str], demo_home: Path
) -> None:
    for command, option in (("leads", "--status"), ("tickets", "--status"), ("quotes", "--status")):
        everything = run_json(capsys, demo_home, command, "list")
        status = everything[0]["status"]
        some = run_json(capsys, demo_home, command, "list", option, status)
        assert some and all(row["status"] == status for row in some)
        assert len(some) == sum(row["status"] == status for row in everything)

    installers = run_json(capsys, demo_home, "organizations", "list", "--kind", "installer")
    assert installers and all(o["kind"] == "installer" for o in installers)
    named = run_json(capsys, demo_home, "organizations", "list", "--search", installers[0]["name"])
    assert installers[0]["id"] in [o["id"] for o in named]

    deals = run_json(capsys, demo_home, "opportunities", "list")
    deal = deals[0]
    in_stage = run_json(
        capsys, demo_home, "opportunities", "list", "--pipeline", deal["pipeline"], "--stage", deal["stage"]
    )
    assert deal["id"] in [d["id"] for d in in_stage]
    assert all((d["pipeline"], d["stage"]) == (deal["pipeline"], deal["stage"]) for d in in_stage)
    users = {u["id"]: u["email"] for u in run_json(capsys, demo_home, "users", "list")}
    mine = run_json(capsys, demo_home, "opportunities", "list", "--owner", users[deal["owner"]].upper())
    assert mine and all(d["owner"] == deal["owner"] for d in mine)
    assert len(mine) == sum(d["owner"] == deal["owner"] for d in deals)
    found = run_json(capsys, demo_home, "opportunities", "list", "--search", deal["title"])
    assert deal["id"] in [d["id"] for d in found]


def test_a_filter_naming_nothing_fails_in_one_line(
    capsys: pytest.CaptureFixture[str], demo_home: Path
) -> None:
    code, _, err = run(capsys, demo_home, "opportunities", "list", "--owner", "nobody@nowhere.example")
    assert (code, err) == (1, "crm-tui: no user with the address 'nobody@nowhere.example'\n")
    code, _, err = run(capsys, demo_home, "opportunities", "list", "--stage", "Nope")
    assert (code, err) == (1, "crm-tui: no stage named 'Nope'\n")
    code, _, err = run(capsys, demo_home, "tickets", "list", "--status", "sleeping")
    assert code == 2 and err.startswith("crm-tui: usage error: argument --status: invalid choice")


@pytest.mark.parametrize("argv", [["organizations", "--help"], ["quotes", "show", "--help"]], ids=" ".join)
def test_help_of_the_record_commands_loads_no_database_layer(argv: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", LOADED_AFTER, *argv], capture_output=True, text=True, timeout=60, check=True
    )
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["code"] == 0
    assert not set(outcome["modules"]) & set(HEAVY)
