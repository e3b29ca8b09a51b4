"""The copy of a draft in the account's Drafts folder: replaced at each save, removed when the mail is sent
or discarded. Best effort: offline, the local draft is what counts and the next save tries again."""

from __future__ import annotations

from typing import Any

from crm_tui.core import models as m
from crm_tui.core.db import Database
from crm_tui.core.services import mailbox
from crm_tui.core.types import stored_id
from crm_tui.mail.imap import MailConnectionError, connect, login_of, logout


def _drafts_folder(db: Database, account_id: int) -> str:
    with db.read() as session:
        folder = mailbox.folder_by_role(session, account_id, "drafts")
        return folder.name if folder is not None else "Drafts"


def _remove(client: Any, message_id: str | None) -> None:  # client: an IMAPClient (imapclient is untyped)
    if not message_id:
        return
    uids = client.search(["HEADER", "Message-ID", message_id])
    if uids:
        client.add_flags(uids, [b"\\Deleted"])
        client.uid_expunge(uids) if b"UIDPLUS" in client.capabilities() else client.expunge()


def store(db: Database, draft_id: int, raw: bytes, message_id: str) -> str:
    """Put this version in Drafts (the previous one goes); returns a line for the status bar."""
    with db.read() as session:
        draft = session.get(m.MailDraft, draft_id)
        if draft is None:
            return "draft gone"
        account = session.get(m.MailAccount, draft.account_id)
        previous = draft.server_message_id
    if account is None:
        return "draft saved here (no account)"
    folder = _drafts_folder(db, stored_id(account.id))
    try:
        client = connect(login_of(account).endpoint, login_of(account).password())
    except (MailConnectionError, Exception) as exc:  # noqa: BLE001 - offline or no password: saved locally only
        return f"draft saved here; the Drafts folder follows later ({exc})"
    try:
        if folder not in {str(name) for _, _, name in client.list_folders()}:
            client.create_folder(folder)
        client.select_folder(folder)
        client.append(folder, raw, flags=[b"\\Draft", b"\\Seen"])
        _remove(client, previous)
        with db.write() as session:
            draft = session.get(m.MailDraft, draft_id)
            if draft is not None:
                draft.server_message_id = message_id
        if draft is None:  # sent or discarded while this copy was on its way: it goes too
            _remove(client, message_id)
            return "draft gone"
    finally:
        logout(client)
    return "draft saved, also in the Drafts folder"


def remove(db: Database, account_id: int, server_message_id: str | None) -> None:
    """Take a sent or discarded draft out of the Drafts folder (quietly when offline)."""
    if not server_message_id:
        return
    with db.read() as session:
        account = session.get(m.MailAccount, account_id)
    if account is None:
        return
    folder = _drafts_folder(db, account_id)
    try:
        client = connect(login_of(account).endpoint, login_of(account).password())
    except Exception:  # noqa: BLE001 - offline: the copy stays until the user deletes it
        return
    try:
        client.select_folder(folder)
        _remove(client, server_message_id)
    except Exception:  # noqa: BLE001, S110 - best effort
        pass
    finally:
        logout(client)
