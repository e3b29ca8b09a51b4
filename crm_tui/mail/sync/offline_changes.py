"""Changes made offline (read, flagged, moved, archived, deleted while the server was out of reach), replayed
on the server at the start of a pass, each on every copy of its message.

A change to a copy in a folder the server renumbered since (a new UIDVALIDITY) waits until the pass has found
the copy again by identity, then is replayed; a change that cannot be made is reported in words, never
dropped without one.
"""

from __future__ import annotations

import functools

from imapclient import DELETED, FLAGGED, SEEN

from crm_tui.core.mail_identity import body_hash
from crm_tui.core.services import mailbox
from crm_tui.mail import imap_fetch
from crm_tui.mail.headers import fetch_flags
from crm_tui.mail.imap import MailConnectionError
from crm_tui.mail.sync.failures import in_words
from crm_tui.mail.sync.folders import names
from crm_tui.mail.sync.pass_state import PassState


class OfflineChanges(PassState):
    """The replay steps of a pass (``account_pass.AccountSync``): they run on its state (``client``,
    ``has_move``, ``db``, ``clock``, ``account``, ``report``, ``_retrying``, ``_unsettled``)."""

    def _replay_changes(self, waited: dict[int, set[str]] | None = None) -> dict[int, set[str]]:
        """Apply the changes made offline on the server. A change to a copy in a folder the server has
        renumbered (a new UIDVALIDITY) waits: the pass finds the copy again by identity (its body merges into
        the message the change belongs to) and then replays it (``waited``: the changes that waited so, with
        the folders they wait for). Returns the changes that wait, with those folders.

        A change waits as long as its folder is not synced in full (its sync failed, or bodies are still to
        come): the next pass tries again. Once it is, a copy not found again is looked for on the server by
        its Message-ID and body (a message older than the account's sync window is not fetched again); only
        when the server has it no more is the change reported as not made. A change whose message has no
        copy left at all is reported so too, never dropped without a word."""
        with self.db.read() as session:
            changes = mailbox.pending_changes(session, self.account.id)
            folder_ids = {folder.name: folder.id for folder in mailbox.folders_of(session, self.account.id)}
            unsettled = self._unsettled(session) if waited else set()
        waiting: dict[int, set[str]] = {}
        for change_id, message_id, action, argument, places in changes:
            expected = (waited or {}).get(change_id, set())
            if any(folder_ids.get(name) in unsettled for name in expected):
                waiting[change_id] = expected  # its folder is not synced in full: the next pass goes on
                continue
            missing = sorted(expected - {name for name, _, _ in places})
            error = None
            try:
                for name in missing:  # its folder is synced in full, and its copy is not among what came
                    found = self._retrying(functools.partial(self._find_again, message_id, name))
                    if found is None:
                        error = self._not_found_again(message_id, name)
                        break
                    place, flags = found
                    if action in ("read", "unread", "flag", "unflag"):
                        with self.db.write() as session:
                            mailbox.copy_found_again(session, self.account.id, message_id, place, flags)
                    places = [*places, place]
            except MailConnectionError:
                raise
            except Exception as exc:  # noqa: BLE001 - one bad change must not block the others
                error = f"looking for the message on the server failed: {in_words(exc)}"
            if error is None and not places:
                error = "the message is no longer on the server"
            if error is not None:
                self.report.problems.append(f"offline change {change_id} ({action}) was not made: {error}")
                with self.db.write() as session:
                    mailbox.finish_change(session, change_id, now=self.clock.now(), error=error)
                    mailbox.drop_orphans(session, [message_id])  # kept for this report only
                continue
            applied: list[tuple[str, int, int]] = []
            renumbered: set[str] = set()
            try:
                applied, renumbered = self._retrying(functools.partial(self._apply, action, argument, places))
            except MailConnectionError:
                raise
            except Exception as exc:  # noqa: BLE001 - one bad change must not block the others
                error = in_words(exc)
                self.report.problems.append(f"offline change {change_id} ({action}) failed: {error}")
            with self.db.write() as session:
                if error is None and not renumbered and action in ("move", "archive", "delete"):
                    applied = places  # every copy has left its folder (or had gone already)
                mailbox.changed_on_server(session, self.account.id, action, applied)
                if renumbered and error is None:
                    waiting[change_id] = renumbered  # not done: replayed once the copy is found again
                    continue
                mailbox.finish_change(session, change_id, now=self.clock.now(), error=error)
            self.report.replayed += 1
        return waiting

    def _find_again(self, message_id: int, folder: str) -> tuple[tuple[str, int, int], list[str]] | None:
        """A message's copy in a renumbered folder, looked for on the server by its Message-ID and checked by
        its body (``mail_identity.body_hash``): ((folder, UIDVALIDITY, UID), its flags), or None."""
        with self.db.read() as session:
            identity = mailbox.identity_of(session, message_id)
        if identity is None or not identity.message_id_header or not identity.body_hash:
            return None
        wanted = identity.message_id_header.strip("<>")
        if not wanted.isascii() or '"' in wanted:
            return None
        client = self.client
        state = client.select_folder(folder, readonly=True)
        uidvalidity = int(state[b"UIDVALIDITY"])
        candidates = sorted(client.search(["HEADER", "Message-ID", wanted]))[:20]
        if not candidates:
            return None
        for uid, data in sorted(imap_fetch.fetch(client, candidates, ["BODY.PEEK[]", "FLAGS"]).items()):
            raw = data.get(b"BODY[]") or b""
            if body_hash(raw, has_message_id=True) == identity.body_hash:
                return (folder, uidvalidity, uid), fetch_flags(data)
        return None

    def _not_found_again(self, message_id: int, folder: str) -> str:
        """Why a change waiting for its copy in a renumbered folder cannot be made, in words."""
        since = self.account.since
        if since is not None:
            with self.db.read() as session:
                identity = mailbox.identity_of(session, message_id)
            sent = identity.sent_at if identity is not None else None
            if sent is not None and sent.date() < since and not (identity and identity.message_id_header):
                return (
                    f"the message is older than the account's sync window (mail since {since:%Y-%m-%d}) "
                    f"and has no Message-ID to find it by in {folder}, which the server renumbered"
                )
        return "the message is no longer in its folder on the server (renumbered meanwhile)"

    def _apply(
        self, action: str, argument: str | None, places: list[tuple[str, int, int]]
    ) -> tuple[list[tuple[str, int, int]], set[str]]:
        """One offline change on the server, on each copy that is there. Returns the copies changed, and
        the folders renumbered since (a new UIDVALIDITY) where a copy is not found again yet."""
        client = self.client
        with self.db.read() as session:
            targets = {
                name: mailbox.target_folder(session, self.account.id, action, argument)
                for name, _, _ in places
            }
        applied = []
        renumbered: set[str] = set()
        for folder_name, uidvalidity, uid in places:
            state = client.select_folder(folder_name)
            serving = int(state[b"UIDVALIDITY"])
            if serving != uidvalidity:
                # An old numbering's copy: changed as the copy of the new one, if that is known already.
                if (folder_name, serving) not in {(f, v) for f, v, _ in places}:
                    renumbered.add(folder_name)
                continue
            if not client.search(["UID", str(uid)]):
                continue  # gone already: replaying twice is harmless
            applied.append((folder_name, uidvalidity, uid))
            if action in ("read", "unread"):
                (client.add_flags if action == "read" else client.remove_flags)([uid], [SEEN])
            elif action in ("flag", "unflag"):
                (client.add_flags if action == "flag" else client.remove_flags)([uid], [FLAGGED])
            else:
                target = targets[folder_name]
                if target == folder_name:
                    if action == "delete":
                        client.add_flags([uid], [DELETED])
                        client.uid_expunge([uid]) if b"UIDPLUS" in {
                            c.upper() for c in client.capabilities()
                        } else client.expunge()
                    continue
                if target not in {n for _, _, n in names(client.list_folders())}:
                    client.create_folder(target)
                if self.has_move:
                    client.move([uid], target)
                else:
                    client.copy([uid], target)
                    client.add_flags([uid], [DELETED])
                    client.expunge()
        return applied, renumbered
