"""The bodies of new mail: fetched after every folder's headers, parsed, stored, indexed and linked.

Many bodies go through a pipeline over processes: each helper process (``helper_processes``) fetches a batch
over its own connection and parses it (``body_fetcher``), while this process stores and links the batch before.
A few bodies are fetched and parsed here, in turn. Each batch is one transaction; a message that fails is kept
with its problem, never stops the sync.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import replace
from typing import Any

from crm_tui.core.services import mail_linking, mail_outcomes, mailbox
from crm_tui.mail import imap_fetch
from crm_tui.mail.imap import MailConnectionError
from crm_tui.mail.parse import parse_safely
from crm_tui.mail.sync import helper_processes
from crm_tui.mail.sync.batches import body_batches
from crm_tui.mail.sync.body_fetcher import fetch_and_parse
from crm_tui.mail.sync.failures import describe, environmental
from crm_tui.mail.sync.pass_state import PassState


class BodyPhase(PassState):
    """The body steps of a pass (``account_pass.AccountSync``): they run on its state (``client``, ``db``,
    ``clock``, ``account``, ``report``, ``progress``, ``free_domains``, ``_password``, ``_phase``)."""

    def _fetch_bodies(self) -> None:
        """Fetch, parse and store the bodies of provisional copies.

        Many bodies: a pipeline over two processes. The helper process fetches batch k+1 over its own
        connection, parses it and, on SQLite, writes its raw bytes into the database (``body_fetcher``) while this
        process stores and links batch k; on two cores that balances the work. A few bodies: here, in turn.
        """
        self._phase = "bodies"
        with self.db.read() as session:
            pending = mailbox.pending_bodies(session, self.account.id)
        total = len(pending)
        if not total:
            return
        batches = body_batches(pending)
        with self.db.checkpointing():
            self._fetch_batches(batches, total)

    def _fetch_batches(self, batches: list[list[mailbox.PendingBody]], total: int) -> None:
        pools = (
            helper_processes.helpers(helper_processes.HELPERS)
            if total >= helper_processes.POOL_THRESHOLD
            else []
        )
        done = 0
        if not pools:
            for batch in batches:
                self._store_fetched(batch, self._retrying(functools.partial(self._fetch_here, batch)))
                done += len(batch)
                self.progress("bodies", done, total)
            return
        submitted = itertools.count()

        raw_file = self.db.sqlite_file  # there the helpers store the bytes themselves (mail.store.raw_writer)

        def submit(batch: list[mailbox.PendingBody]) -> Any:
            index = next(submitted)
            # The batch this helper gets next (round robin): it asks the server for it ahead, if in this folder.
            following = batches[index + len(pools)] if index + len(pools) < len(batches) else None
            ahead = (
                [b.uid for b in following]
                if following
                and (following[0].folder_name, following[0].uidvalidity)
                == (batch[0].folder_name, batch[0].uidvalidity)
                else None
            )
            return pools[index % len(pools)].submit(
                fetch_and_parse,
                self.account.endpoint,
                self._password,
                batch[0].folder_name,
                batch[0].uidvalidity,
                [b.uid for b in batch],
                (raw_file, [b.message_id for b in batch]) if raw_file else None,
                ahead,
            )

        # Each helper process fetches and parses a batch while this process stores an earlier one.
        waiting = list(batches)
        in_flight = [(batch, submit(batch)) for batch in waiting[: len(pools)]]
        del waiting[: len(pools)]
        for _ in range(len(batches)):
            if waiting:
                in_flight.append((waiting[0], submit(waiting.pop(0))))
            batch, future = in_flight.pop(0)
            status, value = future.result()
            if status == "error":
                for _, later in in_flight:
                    later.cancel()
                message, kind = value
                raise MailConnectionError(message, kind)
            if status == "ok":
                self._store_fetched(batch, value)
            done += len(batch)
            self.progress("bodies", done, total)

    def _fetch_here(self, batch: list[mailbox.PendingBody]) -> Any:
        state = self.client.select_folder(batch[0].folder_name, readonly=True)
        if int(state[b"UIDVALIDITY"]) != batch[0].uidvalidity:
            return None  # changed under us: the next pass re-matches
        fetched = imap_fetch.fetch(self.client, [b.uid for b in batch], ["BODY.PEEK[]"])
        rows = []
        for item in batch:
            reply = fetched.get(item.uid)
            if reply is None or b"BODY[]" not in reply:
                continue  # expunged meanwhile
            raw = reply[b"BODY[]"] or b""  # a message of 0 bytes is one too: stored, with its problem
            data = parse_safely(raw)
            data.raw = b""
            rows.append((item.uid, raw, data))
        return rows

    def _store_fetched(
        self, batch: list[mailbox.PendingBody], rows: list[tuple[int, bytes, Any]] | None
    ) -> None:
        if not rows:
            return
        by_uid = {item.uid: item for item in batch}
        ready = []
        for uid, raw, data in rows:
            data.raw = raw
            ready.append((by_uid[uid], data))
        self._store_bodies(ready)

    def _store_bodies(self, rows: list[tuple[mailbox.PendingBody, Any]]) -> None:
        """Store, index and link a batch of bodies in one transaction (the fast path). Should that fail for
        something in a message, each message goes alone: stored and linked; else stored with the linking's
        failure as its problem; else kept as it came (bytes, header, the failure as its problem). No message
        stops the sync; an error of the database itself (locked, full) does, as before."""
        if not rows:
            return
        try:
            self._write_bodies(rows)
            return
        except Exception as exc:
            if environmental(exc):
                raise
            if len(rows) == 1:
                self._fall_back(rows[0], exc)
                return
        for row in rows:
            try:
                self._write_bodies([row])
            except Exception as exc:
                if environmental(exc):
                    raise
                self._fall_back(row, exc)

    def _fall_back(self, row: tuple[mailbox.PendingBody, Any], error: Exception) -> None:
        """A message whose store and link failed: stored without its links (the failure its problem), or else
        kept as it came (``mailbox.store_unusable``)."""
        item, data = row
        try:
            self._write_bodies([row], link_problem=f"linking: {describe(error)}")
            return
        except Exception as exc:
            if environmental(exc):
                raise
            error = exc
        try:
            with self.db.write() as session:
                kept = mailbox.store_unusable(
                    session, item.location_id, data, problem=f"storing: {describe(error)}"
                )
                self._renew(session)
        except Exception as exc:
            if environmental(exc):
                raise
            # Not even kept as it came: it waits on the server, is tried again next time, and the rest goes on.
            self.report.problems.append(f"a message could not be stored: {describe(exc)}")
            return
        if kept:
            self.report.bodies += 1
            self.report.kept_with_problems += 1

    def _write_bodies(
        self, rows: list[tuple[mailbox.PendingBody, Any]], *, link_problem: str | None = None
    ) -> None:
        """One transaction: the bodies stored and indexed, and (without ``link_problem``) linked; with it, the
        messages keep that as a problem instead of their links."""
        now = self.clock.now()
        items = [
            (
                item.location_id,
                data if link_problem is None else replace(data, problems=[*data.problems, link_problem]),
            )
            for item, data in rows
        ]
        with self.db.write() as session:
            written: dict[int, dict[str, Any]] = {}
            results = mailbox.store_bodies(session, items, now=now, written=written, mine=self.account.mine)
            made: dict[int, list[Any]] = {}
            if link_problem is None:
                made = mail_linking.link_many(
                    session,
                    sorted({message_id for message_id, _ in results}),
                    mine=self.account.mine,
                    free_domains=self.free_domains,
                    now=now,
                    known=written,
                )
                # Bounces and replies of the mail we sent (a failure here keeps the messages, flagged).
                mail_outcomes.note_arrivals(session, [data for _, data in items], now=now)
            self._renew(session)
        self.report.bodies += len(results)
        self.report.merged += sum(1 for _, merged in results if merged)
        self.report.linked += sum(len(links) for links in made.values())
        self.report.kept_with_problems += sum(1 for row in written.values() if row.get("parse_problems"))
