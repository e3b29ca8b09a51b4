"""Every real mail through every action: both shared corpora (511 messages) synced into the test Dovecot once,
then for every stored message what the inbox does with it, at the service and form level: the preview, reply,
reply to all and forward build; the lead, contact, organization, ticket and follow-up task forms it prefills
save as they are (or name a field the user must fill, left empty); a comment with its text goes on a record;
filing it on a record and undoing that work."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col

from crm_tui.cli.main import main
from crm_tui.core import models as m
from crm_tui.core.errors import ValidationError
from crm_tui.core.services import mail_accounts, mail_actions, mailbox, records
from crm_tui.core.types import RecordRef, RecordType
from crm_tui.runtime.context import AppContext
from tests.conftest import NOW, ZONE, corpus2_dir, corpus_dir
from tests.integration import conftest as mail_conftest
from tests.utils.ids import column_ids

# A field the user must fill is one the prefill left empty; these errors name such a field.
MUST_FILL = ("is required", "needs a first or a last name", "needs a person")


@dataclass
class Synced:
    home: Path
    context: AppContext
    ids: list[int]
    files: int
    seconds: float


@pytest.fixture(scope="module")
def synced(dovecot: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synced]:
    """Both corpora in one Dovecot folder, synced once into a SQLite home (the checks below only read it, or
    undo what they write)."""
    from crm_tui.core.services import users
    from tests.ui.helpers import make_context
    from tests.utils import factories

    files = sorted(corpus_dir().glob("*.eml")) + sorted(corpus2_dir().glob("*.eml"))
    user = f"user{next(mail_conftest._users)}"
    saved = {name: os.environ.get(name) for name in ("TZ", "CRM_TEST_IMAP_PASSWORD")}
    os.environ["TZ"] = "Europe/Berlin"
    os.environ["CRM_TEST_IMAP_PASSWORD"] = dovecot.users[user]
    home = tmp_path_factory.mktemp("every-mail") / "home"
    try:
        context = make_context(home, demo=False)
        db = context.database()
        with db.write() as session:
            users.create_user(session, users.UserInput(name="Anna Berg", email="anna@crm.example"), now=NOW)
            # A customer with an open deal on a domain some corpus mail comes from: filing and follow-ups meet
            # the deal path too.
            org = factories.organization(session, NOW, "Example", domains=["example.com"])
            factories.contact(
                session, NOW, "Ample", first_name="Ex", emails=["test@example.com"], organization_id=org.id
            )
        where = ["--home", str(home), "--now", NOW.isoformat()]
        assert main([*where, "account", "add", "work", "--preset", "other", "--imap-host", "127.0.0.1",
                     "--imap-port", str(dovecot.port), "--imap-security", "none", "--user", user,
                     "--password-env", "CRM_TEST_IMAP_PASSWORD", "--address", "anna@crm.example",
                     "--sync-since", "all"]) == 0  # fmt: skip
        client = dovecot.client(user)
        for path in files:
            client.append("INBOX", path.read_bytes())
        client.logout()
        started = time.perf_counter()
        assert main([*where, "sync"]) == 0, "the whole corpus syncs"
        seconds = time.perf_counter() - started
        with db.read() as session:
            ids = column_ids(session.scalars(select(col(m.MailMessage.id)).order_by(col(m.MailMessage.id))))
        yield Synced(home, context, ids, len(files), seconds)
        db.dispose()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _report(failures: list[str], what: str, total: int) -> None:
    print(f"{what}: {total} checks, {len(failures)} failed")
    assert not failures, f"{len(failures)} of {total} {what} failed:\n" + "\n".join(failures[:25])


def test_every_mail_is_stored_whole(synced: Synced) -> None:
    print(f"{synced.files} corpus files, {len(synced.ids)} messages, synced in {synced.seconds:.1f} s")
    assert synced.files == 511
    assert len(synced.ids) >= 480, "every message is stored (a few corpus files are copies of one message)"
    with synced.context.database().read() as session:
        waiting = session.scalar(
            select(col(m.MailMessage.id)).where(col(m.MailMessage.has_body).is_(False)).limit(1)
        )
    assert waiting is None, "no message waits for its body"


def test_every_mail_previews_and_replies_and_forwards(synced: Synced) -> None:
    from crm_tui.mail import compose
    from crm_tui.ui.screens.inbox import message_text, original_of

    failures: list[str] = []
    checks = 0
    with synced.context.database().read() as session:
        mine = mail_accounts.my_addresses(session)
        for message_id in synced.ids:
            row = session.get_one(m.MailMessage, message_id)
            raw = mailbox.raw_of(session, message_id) or b""
            step = "preview"
            try:
                shown = message_text(row, ZONE).plain
                assert "\r" not in shown and "\x1b" not in shown, "the preview holds no raw control character"
                for kind in ("reply", "reply_all", "forward"):
                    step = kind
                    original = original_of(session, message_id, raw, with_attachments=kind == "forward")
                    if kind == "forward":
                        draft = compose.forward(
                            original, from_name="Anna Berg", from_address="anna@crm.example", zone=ZONE
                        )
                        draft.to = ["Kunde <kunde@firma.example>"]
                    else:
                        draft = compose.reply(
                            original,
                            from_name="Anna Berg",
                            from_address="anna@crm.example",
                            mine=mine,
                            everyone=kind == "reply_all",
                            zone=ZONE,
                        )
                    try:
                        compose.build(draft, now=NOW)
                    except ValidationError as exc:
                        # Only "who is it for?": the mail named no one to answer (a user must fill To).
                        assert set(exc.errors) == {"to"} and not draft.to, exc.errors
                    checks += 1
            except Exception as exc:  # noqa: BLE001 - every failure is listed, not only the first
                failures.append(
                    f"message {message_id} ({row.subject[:40]!r}) {step}: {type(exc).__name__}: {exc}"
                )
    _report(failures, "previews, replies and forwards", checks)


def _saved_or_must_fill(spec: Any, context: AppContext, record_type: str) -> str | None:
    """Save a prefilled form as it is: None when saved (the record is removed again), else what is wrong."""
    try:
        new_id = spec.save(dict(spec.values))
    except ValidationError as exc:
        wrong = {
            name: message
            for name, message in exc.errors.items()
            if spec.values.get(name, "") or not any(text in message for text in MUST_FILL)
        }
        return f"{wrong}" if wrong else None
    with context.database().write() as session:
        records.delete_record(session, RecordRef(RecordType(record_type), new_id))
    return None


def test_every_mail_prefills_forms_that_save(synced: Synced) -> None:
    from crm_tui.core.form_text import fit_text
    from crm_tui.core.services import attachments
    from crm_tui.mail.sync import load_free_domains
    from crm_tui.ui.forms import RECORD_FORMS
    from crm_tui.ui.forms.activities import activity_form

    context, free = synced.context, set(load_free_domains())
    failures: list[str] = []
    checks = 0
    start = datetime(2026, 11, 23, 9, 0)
    for message_id in synced.ids:
        with context.database().read() as session:
            subject = session.get_one(m.MailMessage, message_id).subject
            mine = mail_accounts.my_addresses(session)
        for record_type in ("lead", "contact", "organization", "ticket", "task"):
            try:
                with context.database().read() as session:
                    if record_type == "task":
                        values = mail_actions.follow_up_prefill(
                            session, message_id, start, mine=mine, free_domains=free
                        )
                    else:
                        values = mail_actions.prefill(session, message_id, record_type, free_domains=free)
                if record_type == "task":
                    spec = activity_form(context, None, values)
                    problem = _saved_or_must_fill(spec, context, "activity")
                else:
                    spec = RECORD_FORMS[RecordType(record_type)](context, None, values)
                    problem = _saved_or_must_fill(spec, context, record_type)
            except Exception as exc:  # noqa: BLE001 - every failure is listed, not only the first
                problem = f"{type(exc).__name__}: {exc}"
            checks += 1
            if problem:
                failures.append(f"message {message_id} ({subject[:40]!r}) {record_type}: {problem}")
    # A comment with the mail's text, on the customer, and taken back.
    ref = RecordRef(RecordType.CONTACT, 1)
    for message_id in synced.ids:
        try:
            with context.database().write() as session:
                body = session.get_one(m.MailMessage, message_id).body_text
                comment = attachments.add_comment(
                    session,
                    ref,
                    fit_text(body, 20000, multiline=True) or "(empty mail)",
                    author_id=1,
                    now=NOW,
                )
                session.delete(comment)
            checks += 1
        except Exception as exc:  # noqa: BLE001
            failures.append(f"message {message_id} comment: {type(exc).__name__}: {exc}")
    _report(failures, "prefilled forms", checks)


def links_of(session: Any, message_id: int) -> set[tuple[str, int]]:
    """(record type, record id) of every record the mail is filed on."""
    return {
        (record_type, record_id)
        for record_type, record_id in session.execute(
            select(col(m.MailLink.record_type), col(m.MailLink.record_id)).where(
                col(m.MailLink.message_id) == message_id
            )
        )
    }


def test_every_mail_files_on_a_record_and_the_undo_takes_it_back(synced: Synced) -> None:
    context = synced.context
    failures: list[str] = []
    ref = RecordRef(RecordType.CONTACT, 1)
    for message_id in synced.ids:
        try:
            with context.database().read() as session:
                before = links_of(session, message_id)
                mail_actions.suggestions(
                    session, message_id, mine=mail_accounts.my_addresses(session), free_domains=set()
                )
                mail_actions.related(session, message_id, free_domains=set())
            with context.database().write() as session:
                filed = mail_actions.file_on(session, [message_id], ref, now=datetime.now(UTC))
            with context.database().read() as session:
                assert ("contact", 1) in links_of(session, message_id)
            with context.database().write() as session:
                mail_actions.unfile(session, filed)
            with context.database().read() as session:
                after = links_of(session, message_id)
            assert after == before, (before, after)
        except Exception as exc:  # noqa: BLE001
            failures.append(f"message {message_id}: {type(exc).__name__}: {exc}")
    _report(failures, "filings and undos", len(synced.ids))


async def test_a_sample_of_real_mail_through_the_inbox_keys(
    synced: Synced, tmp_path: Path, caplog: Any, make_app: Any
) -> None:
    """Every 4th mail of the inbox's first page (the synced corpus), through the keys a salesperson uses on it: Enter
    (read) and Esc, L and I then ctrl+s (a lead, a ticket saved as prefilled), r then Esc (a reply opens).
    No key may bring an error notification or an ERROR in the log."""
    import shutil

    from crm_tui.ui.screens.compose import ComposeScreen
    from crm_tui.ui.screens.inbox import InboxScreen, MessageReader
    from crm_tui.ui.screens.record_form import RecordForm
    from crm_tui.ui.widgets.paged_table import PagedTable
    from tests.ui.helpers import wait_for
    from tests.ui.keywalk import SIZE, Watch, back_to, capture_errors, quick_press, settle

    capture_errors(caplog)
    home = tmp_path / "home"
    shutil.copytree(synced.home, home)  # the leads and tickets made here stay out of the shared database
    app = make_app(home, demo=False, start_mode="inbox", sync_mail=False, run_automations=False)
    problems: list[str] = []
    saved = {"lead": 0, "ticket": 0}
    async with app.run_test(size=SIZE) as pilot:
        inbox = app.screen
        assert isinstance(inbox, InboxScreen)
        table = inbox.query_one(PagedTable)
        await wait_for(lambda: table.row_count > 0, pilot)
        await settle(pilot)
        watch = Watch(app, caplog)
        watch.errors_since()
        positions = list(range(0, table.row_count, 4))  # the first page: 100 mails
        for position in positions:
            table.focus()
            table.move_cursor(row=position)
            await settle(pilot)
            key = table.selected_key
            steps: list[tuple[str, type]] = [("enter", MessageReader), ("L", RecordForm), ("I", RecordForm)]
            for first, screen_type in [*steps, ("r", ComposeScreen)]:
                await quick_press(pilot, first)
                await settle(pilot)
                if not isinstance(app.screen, screen_type):
                    problems.append(f"message {key}: {first} opened {type(app.screen).__name__}")
                elif screen_type is RecordForm:
                    await quick_press(pilot, "ctrl+s")
                    await settle(pilot)
                    if isinstance(app.screen, RecordForm):
                        shown = " ".join(str(w.render()) for w in app.screen.query(".field-error"))
                        if not any(reason in shown for reason in MUST_FILL):
                            problems.append(f"message {key}: {first} ctrl+s did not save: {shown[:200]}")
                    else:
                        saved["lead" if first == "L" else "ticket"] += 1
                for error in watch.errors_since():
                    problems.append(f"message {key} {first}: {error}")
                if not await back_to(pilot, inbox, "inbox"):
                    problems.append(f"message {key} {first}: Esc did not bring the inbox back")
                    break
    print(
        f"inbox keys on {len(positions)} real mails: {saved['lead']} leads, {saved['ticket']} tickets saved"
    )
    assert len(positions) >= 25
    assert not problems, "\n".join(problems[:30])
    assert saved["lead"] >= len(positions) * 0.9 and saved["ticket"] >= len(positions) * 0.9
