"""The folders of an account as IMAP keeps them, and how a pass brings each in step.

A folder's state is its UIDVALIDITY (the numbering of its messages: a new one means every UID changed),
UIDNEXT, the number of messages and, with CONDSTORE (RFC 7162), its HIGHESTMODSEQ. A pass reads the states
of all folders with the listing where the server offers LIST-STATUS (RFC 5819), else by selecting each, and
skips a folder whose state is the one it stored last time. In a changed folder it updates the flags of the
copies it has (only those changed since the stored HIGHESTMODSEQ, with CONDSTORE), drops the copies expunged
on the server, stores the headers of new mail (``new_headers``), and stores the state it is now in step with.
Copies of an old UIDVALIDITY go once their new copies are matched (``_drop_old_generations``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from imapclient.imap_utf7 import decode as decode_utf7
from imapclient.response_parser import parse_response

from crm_tui.core import models as m
from crm_tui.core.services import mailbox
from crm_tui.mail import imap_fetch
from crm_tui.mail.headers import fetch_flags, fetch_modseq
from crm_tui.mail.imap_session import ImapSession
from crm_tui.mail.sync.pass_state import PassState


@dataclass(frozen=True)
class FolderState:
    """What a sync compares to know whether a folder changed: from SELECT, or from STATUS without one."""

    uidvalidity: int
    uidnext: int | None
    messages: int
    highestmodseq: int | None  # None: the server keeps no mod-sequences for the folder (or no CONDSTORE)


def state_of_select(reply: dict[bytes, Any], condstore: bool) -> FolderState:
    """The state in imapclient's ``select_folder`` reply."""
    return FolderState(
        int(reply[b"UIDVALIDITY"]),
        int(reply[b"UIDNEXT"]) if b"UIDNEXT" in reply else None,
        int(reply.get(b"EXISTS", 0)),
        int(reply[b"HIGHESTMODSEQ"]) if condstore and b"HIGHESTMODSEQ" in reply else None,
    )


def list_folders_with_state(client: Any, condstore: bool) -> tuple[list[Any], dict[str, FolderState]]:
    """``client.list_folders()``, and with it each folder's state where the server can tell it in the same
    round trip (LIST-STATUS, RFC 5819: Dovecot, Cyrus/Fastmail...). A sync then opens only the folders that
    changed; without LIST-STATUS (Gmail, for one) the states are empty and every folder is selected as before.
    A folder whose STATUS is missing or unreadable simply has no state here."""
    capabilities = {c.upper() for c in client.capabilities()}
    if b"LIST-STATUS" not in capabilities:
        return client.list_folders(), {}
    items = "MESSAGES UIDNEXT UIDVALIDITY" + (" HIGHESTMODSEQ" if condstore else "")
    # An extended LIST returns only the attributes asked for: the folders' roles (\Sent...) need SPECIAL-USE.
    options = "CHILDREN " + ("SPECIAL-USE " if b"SPECIAL-USE" in capabilities else "") + f"STATUS ({items})"
    listing, statuses = ImapSession(client).list_returning(options)
    try:
        parsed = parse_response(statuses)  # name, (item value ...), name, ...: as imapclient reads LIST
    except Exception as exc:  # imapclient's ProtocolError on a reply it cannot read: select them all
        if type(exc).__name__ != "ProtocolError":
            raise
        parsed = ()
    states: dict[str, FolderState] = {}
    for name, values in zip(parsed[::2], parsed[1::2], strict=False):
        try:
            fields = dict(zip(values[::2], values[1::2], strict=True))
            states[folder_name(client, name)] = FolderState(
                int(fields[b"UIDVALIDITY"]),
                int(fields[b"UIDNEXT"]) if b"UIDNEXT" in fields else None,
                int(fields[b"MESSAGES"]),
                int(fields[b"HIGHESTMODSEQ"]) if condstore and b"HIGHESTMODSEQ" in fields else None,
            )
        except (ValueError, TypeError, KeyError):
            continue  # that folder is selected instead
    return listing, states


def folder_name(client: Any, name: Any) -> str:
    """A folder name from a reply, as ``list_folders`` gives it (decoded from modified UTF-7)."""
    if isinstance(name, int):  # a name of digits, quoted by the server, reads as a number
        return str(name)
    if client.folder_encode:
        return str(decode_utf7(name))
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)


def names(listing: Any) -> list[tuple[Any, Any, str]]:
    """A ``list_folders()`` listing with each name as text."""
    return [(f, d, n.decode() if isinstance(n, bytes) else str(n)) for f, d, n in listing]


class FolderSync(PassState):
    """The folder steps of a pass (``account_pass.AccountSync``): they run on its state (``client``,
    ``condstore``, ``db``, ``account``, ``report``, ``_states``, ``_failed``)."""

    def _list_folders(self) -> list[tuple[str, str | None]]:
        result = []
        listing, self._states = list_folders_with_state(self.client, self.condstore)
        for flags, _delimiter, name in listing:
            flag_names = [f.decode() if isinstance(f, bytes) else str(f) for f in flags]
            if any(f.lower() in ("\\noselect", "\\nonexistent") for f in flag_names):
                continue
            name = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
            result.append((name, mailbox.folder_role(name, flag_names)))
        # INBOX first: the mail a user waits for.
        result.sort(key=lambda item: (item[1] != "inbox", item[0].lower()))
        with self.db.write() as session:
            for name, role in result:
                mailbox.ensure_folder(session, self.account.id, name, role)
        self.report.folders = len(result)
        return result

    def _sync_folder(self, name: str, role: str | None) -> None:
        client = self.client
        listed = self._states.get(name)  # the state LIST-STATUS gave, if it did: no SELECT needed to compare
        state = listed or state_of_select(client.select_folder(name, readonly=True), self.condstore)
        with self.db.read() as session:
            folder = mailbox.ensure_folder(session, self.account.id, name, role)
            assert folder.id is not None  # ensure_folder returns the folder stored
            folder_id = folder.id
            ref = mailbox.FolderRef(folder.id, folder.role)
            previous = (folder.uidvalidity, folder.uidnext, folder.highestmodseq)
            local = mailbox.location_count(session, folder_id, state.uidvalidity)
        unchanged = (
            previous[0] == state.uidvalidity
            and previous[1] == state.uidnext
            and state.highestmodseq is not None
            and previous[2] == state.highestmodseq
            and (state.messages == local or self.account.since is not None)
        )
        if unchanged:
            self.report.skipped_folders += 1
            return
        if listed is not None:
            if listed.messages == 0 and local == 0:
                self._record_state(folder_id, listed)  # an empty folder: nothing to fetch, nothing gone
                return
            state = state_of_select(client.select_folder(name, readonly=True), self.condstore)
        uidvalidity, exists, highest = state.uidvalidity, state.messages, state.highestmodseq
        with self.db.read() as session:
            known = mailbox.known_uids(session, folder_id, uidvalidity)
        server_all = set(client.search(["ALL"])) if exists else set()
        if self.account.since is not None and exists:
            wanted = set(client.search(["SINCE", self.account.since]))
        else:
            wanted = server_all
        if known and previous[0] == uidvalidity:
            self._update_flags(folder_id, uidvalidity, known & server_all, previous[2], highest)
        gone = known - server_all  # expunged on the server
        if gone:
            with self.db.write() as session:
                self.report.removed += mailbox.remove_locations(session, folder_id, uidvalidity, gone)
        self._fetch_new_headers(name, ref, uidvalidity, sorted(wanted - known))
        self._record_state(folder_id, state)

    def _update_flags(
        self, folder_id: int, uidvalidity: int, kept: set[int], modseq: int | None, highest: int | None
    ) -> None:
        """The flags of the copies we have (``kept``) as the server has them: with CONDSTORE only the ones
        changed since the folder's last HIGHESTMODSEQ (``modseq``; none when it is still ``highest``), else
        all of them."""
        client = self.client
        if highest is not None and modseq is not None:
            if highest != modseq:
                # imapclient keeps only the UIDs it was given (no ranges): ask for the known ones.
                uids = sorted(kept)
                for start in range(0, len(uids), 5000):
                    changed = imap_fetch.fetch(
                        client, uids[start : start + 5000], ["FLAGS"], [f"CHANGEDSINCE {modseq}"]
                    )
                    self._store_flags(folder_id, uidvalidity, changed)
        else:
            uids = sorted(kept)
            for start in range(0, len(uids), 2000):
                fetched = imap_fetch.fetch(client, uids[start : start + 2000], ["FLAGS"])
                self._store_flags(folder_id, uidvalidity, fetched)

    def _record_state(self, folder_id: int, state: FolderState) -> None:
        """The folder is in step with the server at ``state``: the next pass compares against it."""
        with self.db.write() as session:
            folder = session.get(m.MailFolder, folder_id)
            assert folder is not None  # the pass's folder (a folder goes only with its account)
            folder.uidvalidity = state.uidvalidity
            folder.uidnext = state.uidnext
            folder.highestmodseq = state.highestmodseq
            folder.synced_at = self.clock.now()

    def _store_flags(self, folder_id: int, uidvalidity: int, fetched: dict[int, dict[bytes, Any]]) -> None:
        if not fetched:
            return
        with self.db.write() as session:
            self.report.flag_changes += mailbox.update_flags(
                session,
                folder_id,
                uidvalidity,
                {
                    uid: (fetch_flags(data), fetch_modseq(data))
                    for uid, data in fetched.items()
                    if b"FLAGS" in data
                },
            )

    def _drop_old_generations(self) -> None:
        """Drop the copies of an old UIDVALIDITY once the new ones are matched: in each folder synced in full
        in this pass whose new copies all have their bodies (merged by then into the messages they are copies
        of). A folder whose sync failed, or whose bodies did not all arrive, keeps its old copies for a later
        pass: dropped now, a message whose new copy is not matched yet would go, and with it an offline change
        waiting for that copy."""
        with self.db.write() as session:
            unsettled = self._unsettled(session)
            for folder in mailbox.folders_of(session, self.account.id):
                if folder.id not in unsettled:
                    self.report.removed += mailbox.remove_stale_generations(session, folder)

    def _unsettled(self, session: Any) -> set[int]:
        """The folders (ids) not synced in full in this pass: their sync failed, or bodies are to come."""
        failed = {
            folder.id
            for folder in mailbox.folders_of(session, self.account.id)
            if folder.name in self._failed and folder.id is not None  # (stored folders: never None)
        }
        return failed | mailbox.folders_with_pending_bodies(session, self.account.id)

    # --- offline changes ---
