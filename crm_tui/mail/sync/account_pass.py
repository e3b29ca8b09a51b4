"""One sync pass of an IMAP account into the local store.

Order of a pass: take the account's lock (logging in meanwhile); replay changes made offline; list folders
(with each folder's state in the same round trip where the server offers LIST-STATUS); per folder, read its
state (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ with CONDSTORE; from the listing, or by selecting it) and skip it
when nothing changed, else update flags, drop expunged copies and store the headers of new mail (the list is
usable from here); then fetch the bodies of provisional copies, merge copies of one message, link every
completed message to its records; last, drop copies of an old UIDVALIDITY once the new ones are matched.
Every batch is its own short transaction, so a kill at any point loses nothing: the next pass goes on where
this one stopped, and exactly one message results per message (locations are unique, copies merge by
identity).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import imapclient  # noqa: F401 - loaded with the sync (40 ms), not on the way to its login (mail.imap.connect)

from crm_tui.core import holders
from crm_tui.core.clock import Clock
from crm_tui.core.db import Database
from crm_tui.core.errors import DatabaseError
from crm_tui.core.free_mail import free_domains
from crm_tui.core.services import mail_accounts, mailbox
from crm_tui.core.wording import plural, plural_of
from crm_tui.mail.imap import Endpoint, Login, MailConnectionError, connect, login_of, logout
from crm_tui.mail.sync import helper_processes
from crm_tui.mail.sync.bodies import BodyPhase
from crm_tui.mail.sync.failures import describe, disk_full, environmental
from crm_tui.mail.sync.folders import FolderState, FolderSync
from crm_tui.mail.sync.new_headers import NewHeaders
from crm_tui.mail.sync.offline_changes import OfflineChanges
from crm_tui.mail.sync.process_tuning import tuned_for_a_pass

MAX_RECONNECTS = 2

Progress = Callable[[str, int, int], None]  # (what, done, total)


class SyncDiskFull(DatabaseError):
    """The disk filled up during a sync. Every batch stored before that is kept (each is its own transaction);
    the message says how much, and the next sync, once there is space, goes on from there."""

    kind = "disk"

    def __init__(self, message: str, report: SyncReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class SyncReport:
    account: str
    folders: int = 0
    skipped_folders: int = 0
    new: int = 0
    bodies: int = 0
    merged: int = 0
    flag_changes: int = 0
    removed: int = 0
    replayed: int = 0
    linked: int = 0
    problems: list[str] = field(default_factory=list)
    kept_with_problems: int = 0  # messages stored with a problem (``mail_message.parse_problems``)
    failed_folders: list[str] = field(default_factory=list)  # "folder: why" of each folder not synced
    seconds: float = 0.0

    def summary(self) -> str:
        parts = [f"{self.account}: {self.new} new", plural(self.bodies, "body")]
        if self.merged:
            parts.append(f"{plural(self.merged, 'copy')} merged")
        if self.flag_changes:
            parts.append(plural(self.flag_changes, "flag change"))
        if self.removed:
            parts.append(f"{self.removed} removed")
        if self.replayed:
            parts.append(f"{plural(self.replayed, 'offline change')} sent")
        parts.append(f"{plural(self.linked, 'link')} made")
        parts.append(f"{plural(self.folders, 'folder')} ({self.skipped_folders} unchanged)")
        text = ", ".join(parts) + f" in {self.seconds:.1f} s"
        if self.kept_with_problems:
            text += f"; {self.kept_with_problems} kept with problems (crm-tui mail problems)"
        if self.failed_folders:
            text += f"; {plural(len(self.failed_folders), 'folder')} not synced: {self.failed_folders[0]}"
        if self.problems:
            text += f"; {plural(len(self.problems), 'problem')}: {self.problems[0]}"
        return text


def load_free_domains() -> frozenset[str]:
    """The free-mail domains (``core.free_mail``: one shipped list, read once per process)."""
    return free_domains()


@dataclass
class _Account:
    id: int
    name: str
    login: Login
    since: Any
    first: bool  # no folder of it was ever synced: a first sync, which brings much mail
    mine: set[str] = field(default_factory=set)  # my addresses: each pass reads them while it logs in

    @property
    def endpoint(self) -> Endpoint:
        return self.login.endpoint


def _load_account(db: Database, name: str) -> _Account:
    with db.read() as session:
        account = mail_accounts.account_row(session, name)  # no ORM yet: the login starts sooner
        return _Account(
            id=account.id,
            name=account.name,
            login=login_of(account),
            since=account.sync_since,
            first=not mailbox.ever_synced(session, account.id),
        )


class AccountSync(FolderSync, NewHeaders, BodyPhase, OfflineChanges):
    """A sync pass; ``run`` does it. Kept as an object so the app's worker can reuse the connection.

    The pass's order and its state are here (the connection and its reconnects, the account's lock, the
    report); its steps are in the protocol's modules, each a part of this class: ``folders.FolderSync``,
    ``new_headers.NewHeaders``, ``bodies.BodyPhase``, ``offline_changes.OfflineChanges``."""

    def __init__(
        self,
        db: Database,
        account_name: str,
        *,
        clock: Clock,
        progress: Progress | None = None,
        password: str | None = None,
        free_domains: set[str] | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.account = _load_account(db, account_name)
        self.progress = progress or (lambda what, done, total: None)
        self._password = password
        self.free_domains = free_domains if free_domains is not None else load_free_domains()
        self.holder = holders.holder()
        self._renewed = clock.now()  # when this pass last took or renewed the account's lock
        self.client: Any = None
        self.condstore = False
        self._states: dict[str, FolderState] = {}  # folder states from the last listing (LIST-STATUS)
        self.report = SyncReport(account_name)
        self._phase = "headers"  # then "bodies": what a full disk stopped (``_kept_on_full_disk``)
        self._failed: set[str] = set()  # the folders whose sync failed in this pass

    # --- connection ---

    def _connect(self) -> None:
        if self._password is None:
            self._password = self.account.login.password()
        self.client = connect(self.account.endpoint, self._password)
        capabilities = {c.upper() for c in self.client.capabilities()}
        self.condstore = b"CONDSTORE" in capabilities
        if self.condstore and b"ENABLE" in capabilities:
            try:
                self.client.enable("CONDSTORE")
            except Exception:  # noqa: BLE001 - CONDSTORE is an optimisation
                self.condstore = False
        self.has_move = b"MOVE" in capabilities

    def _logout(self) -> None:
        if self.client is not None:
            logout(self.client)
            self.client = None

    def _reconnect(self) -> None:
        self._logout()
        self._connect()

    def _retrying(self, step: Callable[[], Any]) -> Any:
        """Run a step; if the connection drops, reconnect and run it again (a few times).

        A plain IMAP ``error`` may be a link cut mid-reply (the reply reads as garbage) or the server's NO to
        the command (a folder that went away between LIST and SELECT): after one reconnect the same error is
        the command's, raised as it is, so that only that folder fails, not the whole account."""
        for attempt in range(MAX_RECONNECTS + 1):
            try:
                return step()
            except (OSError, EOFError) as exc:
                if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise  # a full disk is not a dropped connection: reconnecting would not help
                error: Exception = exc
            except Exception as exc:  # imaplib.IMAP4.abort and friends
                name = type(exc).__name__
                if name not in ("abort", "IMAPClientAbortError", "error"):
                    raise
                if name == "error" and attempt > 0 and type(error).__name__ == "error":
                    raise  # refused again on a fresh connection: the server means it
                error = exc
            if attempt == MAX_RECONNECTS:
                raise MailConnectionError(
                    f"{self.account.name}: the connection dropped ({error}); what arrived is kept", "dropped"
                )
            time.sleep(0.2 * (attempt + 1))
            self._reconnect()
        return None

    # --- the pass ---

    def run(self) -> SyncReport:
        with tuned_for_a_pass():  # the process-wide settings, for this pass (``process_tuning``)
            try:
                return self._run()
            except BaseException as exc:
                # A helper still starting when a CLI process ends prints multiprocessing's traceback: let it start.
                helper_processes.wait_for_starts()
                if disk_full(exc):
                    raise SyncDiskFull(self._kept_on_full_disk(), self.report) from None
                raise

    def _kept_on_full_disk(self) -> str:
        """What a sync stopped by a full disk kept, in words: "the disk is full: 2,345 headers and 120 bodies
        were saved, the bodies of 1,200 messages were not; ..." (headers: "the rest of the new mail was not")."""
        report = self.report
        waiting: int | None = None
        if self._phase == "bodies":
            with contextlib.suppress(Exception):  # reading may fail too; then it is "the rest"
                with self.db.read() as session:
                    pending = mailbox.pending_bodies(session, self.account.id)
                waiting = len({item.message_id for item in pending})
        parts = [
            f"{count:,} {noun if count == 1 else plural_of(noun)}"
            for count, noun in ((report.new, "header"), (report.bodies, "body"))
            if count
        ]
        single = len(parts) == 1 and (report.new or report.bodies) == 1
        saved = (
            " and ".join(parts) + (" was saved" if single else " were saved")
            if parts
            else "nothing new was saved"
        )
        if waiting:
            lost = f"the bodies of {waiting:,} {'message was' if waiting == 1 else 'messages were'} not"
        elif self._phase == "bodies":
            lost = "the remaining bodies were not"
        else:
            lost = "the rest of the new mail was not"
        return f"{self.account.name}: the disk is full: {saved}, {lost}; free some space and sync again"

    def _run(self) -> SyncReport:
        started = time.perf_counter()
        if self.account.first:
            # A first sync brings much mail: start the parse process now, so that its start-up (an interpreter,
            # its imports) runs while we log in and list folders rather than when the first batch waits for it.
            helper_processes.warm_first()
        # Log in while the lock is taken and the store is read: the server's round trips overlap them.
        login = ThreadPoolExecutor(1, thread_name_prefix="crm-tui login")
        connecting = login.submit(self._connect)
        login.shutdown(wait=False)  # the login still runs; no thread is left behind after it
        try:
            self._take_lock()
        except BaseException:
            wait([connecting])  # its own failure, if any, matters less than this one
            self._logout()
            raise
        try:
            with self.db.read() as session:
                self.account.mine = mail_accounts.my_addresses(session)
            try:
                connecting.result()
            except BaseException:
                self._logout()  # connected, then the capabilities failed
                raise
            try:
                waiting = self._replay_changes()
                folders = self._retrying(self._list_folders)
                for index, (name, role) in enumerate(folders):
                    self.progress(f"headers {name}", index, len(folders))
                    try:
                        self._retrying(functools.partial(self._sync_folder, name, role))
                    except Exception as exc:
                        if environmental(exc):
                            raise
                        # This folder only (the server refused it, say): the others are synced all the same.
                        self.report.failed_folders.append(f"{name}: {describe(exc)}")
                        self._failed.add(name)
                self._fetch_bodies()
                self._drop_old_generations()
                if waiting:
                    self._replay_changes(waiting)  # the renumbered folders' copies are found again by now
            finally:
                self._logout()
        finally:
            with self.db.write() as session:
                mailbox.release_lock(session, self.account.id, self.holder)
        self.report.seconds = time.perf_counter() - started
        return self.report

    def _take_lock(self) -> None:
        """Take the account's sync lock, or raise SyncBusy (another sync of it runs)."""
        with self.db.write() as session:
            holder = mailbox.lock_holder(session, self.account.id)
            self._renewed = self.clock.now()
            mailbox.acquire_lock(
                session, self.account.id, self.holder, now=self._renewed, alive=holders.holder_alive(holder)
            )

    def _renew(self, session: Any) -> None:
        """Renew the account's lock with this write when it is due (a statement per batch cost 1 ms)."""
        now = self.clock.now()
        if now - self._renewed >= mailbox.LOCK_RENEWAL:
            mailbox.renew_lock(session, self.account.id, self.holder, now=now)
            self._renewed = now

    def _unsettled(self, session: Any) -> set[int]:
        """The folders (ids) not synced in full in this pass: their sync failed, or bodies are to come."""
        failed = {
            folder.id
            for folder in mailbox.folders_of(session, self.account.id)
            if folder.name in self._failed and folder.id is not None  # (stored folders: never None)
        }
        return failed | mailbox.folders_with_pending_bodies(session, self.account.id)


def sync_account(
    db: Database,
    account_name: str,
    *,
    clock: Clock,
    progress: Progress | None = None,
    password: str | None = None,
) -> SyncReport:
    return AccountSync(db, account_name, clock=clock, progress=progress, password=password).run()
