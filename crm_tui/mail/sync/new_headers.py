"""The headers of new mail: read in batches (``header_reader``), decoded by the first helper process once it is
up (``mail.headers.header_rows``), stored one batch a transaction. The message list is usable from the first
batch; the bodies come after every folder's headers (``bodies``)."""

from __future__ import annotations

import contextlib

from crm_tui.core.services import mailbox
from crm_tui.mail.headers import HEADER_SECTION, header_rows
from crm_tui.mail.sync import helper_processes
from crm_tui.mail.sync.batches import header_batches
from crm_tui.mail.sync.failures import describe, environmental
from crm_tui.mail.sync.header_reader import read_header_batches
from crm_tui.mail.sync.pass_state import PassState
from crm_tui.mail.sync.process_tuning import quick_handoffs


class NewHeaders(PassState):
    """The header steps of a pass (``account_pass.AccountSync``): they run on its state (``client``,
    ``condstore``, ``db``, ``clock``, ``account``, ``report``, ``progress``)."""

    def _fetch_new_headers(self, name: str, ref: mailbox.FolderRef, uidvalidity: int, new: list[int]) -> None:
        """Read, decode and store the headers of ``new`` (UIDs of folder ``name``, in ``uidvalidity``)."""
        items = [f"BODY.PEEK[{HEADER_SECTION}]", "RFC822.SIZE", "FLAGS"] + (
            ["MODSEQ"] if self.condstore else []
        )
        if len(new) >= helper_processes.POOL_THRESHOLD:
            helper_processes.warm_first()  # used from the first batch it is ready for; till then headers parse here
        batches = header_batches(new)
        stored = 0
        pooled = len(new) >= helper_processes.POOL_THRESHOLD
        for uids, replies, parsed in quick_handoffs(
            read_header_batches(
                self.client,
                batches,
                items,
                use_pool=pooled,
                after_last=self._prepare_fetcher if pooled else None,
            )
        ):
            rows = [
                mailbox.HeaderRow(*row)
                for row in (parsed.result() if parsed is not None else header_rows(replies, uids))
            ]
            self._store_headers(ref, uidvalidity, rows)
            stored += len(uids)
            self.progress(f"headers {name}", stored, len(new))

    def _store_headers(self, ref: mailbox.FolderRef, uidvalidity: int, rows: list[mailbox.HeaderRow]) -> None:
        """Store a batch of new mail's headers. Should the batch fail for something in a message (a value the
        database refuses), each message is stored alone, and one that fails alone is stored with what can be
        kept of its header and the failure as its problem: no message stops the sync."""

        def store(batch: list[mailbox.HeaderRow]) -> Exception | None:
            """One transaction; the failure of something in its messages is returned, the database's raised."""
            try:
                with self.db.write() as session:
                    stored = mailbox.store_headers(session, ref, uidvalidity, batch, now=self.clock.now())
                    self._renew(session)
                self.report.new += stored  # once committed: a commit the full disk refused saved nothing
                return None
            except Exception as exc:
                if environmental(exc):
                    raise
                return exc

        if store(rows) is None:
            return
        for row in rows:
            failure = store([row])
            if failure is None:
                continue
            row.values = mailbox.storable_header_values(row.values, f"header: {describe(failure)}")
            failure = store([row])
            if failure is not None:
                self.report.problems.append(f"a header could not be stored: {describe(failure)}")

    def _prepare_fetcher(self) -> None:
        """The bodies come next: the first helper, done with the header replies once it has parsed the last
        batch, loads the body fetcher and logs in meanwhile (the second helper starts with the bodies)."""
        helper = helper_processes.first_helper()
        if helper is not None:
            with contextlib.suppress(Exception):  # a helper that is gone is the body phase's to report
                helper.submit(helper_processes.prepare_fetcher, self.account.endpoint, self._password)
