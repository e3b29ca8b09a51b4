"""What a sync pass's steps share: the state ``account_pass.AccountSync`` sets up and the steps it offers.

The steps live in their protocol's modules (``folders``, ``new_headers``, ``bodies``, ``offline_changes``),
each a part of ``AccountSync``; this base says what they may use of the whole. Annotations only: nothing is
set here, ``AccountSync.__init__`` (and its connection) sets it all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crm_tui.core.clock import Clock
    from crm_tui.core.db import Database
    from crm_tui.core.services import mailbox
    from crm_tui.mail.sync.account_pass import Progress, SyncReport, _Account
    from crm_tui.mail.sync.folders import FolderState


class PassState:
    db: Database
    clock: Clock
    account: _Account
    progress: Progress
    free_domains: set[str] | frozenset[str]
    client: Any  # an imapclient.IMAPClient (untyped library)
    condstore: bool
    has_move: bool  # set once connected
    report: SyncReport
    _password: str | None
    _phase: str
    _states: dict[str, FolderState]
    _failed: set[str]
    # Steps one part runs and another defines (AccountSync or a part).
    _retrying: Callable[[Callable[[], Any]], Any]
    _renew: Callable[[Any], None]
    _unsettled: Callable[[Any], set[int]]
    _fetch_new_headers: Callable[[str, mailbox.FolderRef, int, list[int]], None]
