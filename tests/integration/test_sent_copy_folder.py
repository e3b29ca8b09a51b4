"""Where an account's sent copies go (issue 24, item 2), against the test Dovecot: a folder chosen for the
account receives the copy (not Sent); "none" saves no copy and the mail is simply sent; back to the server's
Sent folder, the copy lands there as before. Set through the CLI's ``account edit``, shown by ``account list``."""

from __future__ import annotations

import json

import pytest

from tests.integration.conftest import Mailbox
from tests.integration.smtp import SmtpServer
from tests.integration.test_outbox import flush_at, queue_mail, states
from tests.integration.test_triage import server_subjects


def listed_account(box: Mailbox, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    capsys.readouterr()
    assert box.cli("account", "list", "--json") == 0
    [account] = [a for a in json.loads(capsys.readouterr().out) if a["name"] == "work"]
    return dict(account)


def test_the_copy_goes_to_the_folder_chosen_to_none_and_back_to_sent(
    mailbox: Mailbox, smtp: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    client = mailbox.imap()
    client.create_folder("Projects/Sent offers")
    client.logout()
    assert listed_account(mailbox, capsys)["sent_copies_to"] == "the server's Sent folder"

    assert mailbox.cli("account", "edit", "work", "--sent-copy-folder", "Projects/Sent offers") == 0
    account = listed_account(mailbox, capsys)
    assert (account["sent_copy"], account["sent_copy_folder"]) == ("folder", "Projects/Sent offers")
    first, _ = queue_mail(mailbox, subject="Angebot Dach")
    assert flush_at(mailbox) == 0
    assert server_subjects(mailbox, "Projects/Sent offers") == {"Angebot Dach"}
    assert server_subjects(mailbox, "Sent") == set(), "the chosen folder instead of Sent"
    assert states(mailbox, capsys)[first] == ("sent", None)

    assert mailbox.cli("account", "edit", "work", "--sent-copy", "none") == 0
    account = listed_account(mailbox, capsys)
    assert (account["sent_copy"], account["sent_copy_folder"]) == ("none", None)
    second, _ = queue_mail(mailbox, subject="Termin")
    assert flush_at(mailbox, 1) == 0
    assert server_subjects(mailbox, "Projects/Sent offers") == {"Angebot Dach"}
    assert server_subjects(mailbox, "Sent") == set(), "no copy saved anywhere"
    assert states(mailbox, capsys)[second] == ("sent", None), "sent, with no 'no copy saved' problem"
    assert len(smtp.received) == 2

    assert mailbox.cli("account", "edit", "work", "--sent-copy", "server") == 0
    third, _ = queue_mail(mailbox, subject="Rechnung")
    assert flush_at(mailbox, 2) == 0
    assert server_subjects(mailbox, "Sent") == {"Rechnung"}, "the \\Sent folder again, as by default"
    assert states(mailbox, capsys)[third] == ("sent", None)


def test_a_folder_must_be_named_and_both_options_together_are_refused(
    mailbox: Mailbox, capsys: pytest.CaptureFixture[str]
) -> None:
    assert mailbox.cli("account", "edit", "work", "--sent-copy-folder", "  ") != 0
    assert "sent_copy_folder" in capsys.readouterr().err
    assert mailbox.cli("account", "edit", "work", "--sent-copy", "none", "--sent-copy-folder", "Archive") == 2
    assert "not allowed with" in capsys.readouterr().err
    assert listed_account(mailbox, capsys)["sent_copy"] == "server"
