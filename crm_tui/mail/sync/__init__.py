"""The mail sync: one pass of an IMAP account into the local store (``sync_account``).

The IMAP protocol, in the order of a pass (``account_pass``):

- ``account_pass``: the pass itself (lock, login with CONDSTORE, the order of its steps, reconnects, report);
- ``offline_changes``: changes made offline replayed on the server first;
- ``folders``: the folders and their state (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ), flags and expunges;
- ``new_headers``: the headers of new mail (the list is usable from here);
- ``bodies``: the bodies, stored, indexed and linked;
- ``failures``: which failures stop a pass and which are one message's, in words.

The plumbing under it: ``batches`` (how work is cut), ``header_reader`` (the reader thread),
``helper_processes`` (the processes that decode and fetch beside the pass, and what loads in them first),
``body_fetcher`` (runs in a helper), ``process_tuning`` (the process-wide settings, their one owner). The
private internals of imaplib and imapclient are reached through ``mail.imap_session`` only.

The public names below load on first use: a helper process imports this package on its way to
``helper_processes`` and must not load the database layer with it (it starts in 15-20 ms).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crm_tui.mail.sync.account_pass import (
        AccountSync,
        SyncDiskFull,
        SyncReport,
        load_free_domains,
        sync_account,
    )

__all__ = ["AccountSync", "SyncDiskFull", "SyncReport", "load_free_domains", "sync_account"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from crm_tui.mail.sync import account_pass  # here: see the module's docstring

        return getattr(account_pass, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
