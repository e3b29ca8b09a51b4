"""Body batches stay bounded in bytes, not only in count: a mailbox of huge attachments cannot exhaust memory."""

from __future__ import annotations

from crm_tui.core.services.mailbox import PendingBody
from crm_tui.mail.sync import BATCH_BYTES, BODY_BATCH, _batches_by_size


def test_batches_are_bounded_by_count_and_by_bytes() -> None:
    small = [PendingBody(i, 1, "INBOX", 7, i, 10_000) for i in range(BODY_BATCH * 2 + 5)]
    huge = [PendingBody(9000 + i, 1, "INBOX", 7, 9000 + i, BATCH_BYTES + 1) for i in range(3)]
    batches = _batches_by_size(small + huge)
    assert [len(b) for b in batches] == [BODY_BATCH, BODY_BATCH, 5, 1, 1, 1]
    assert all(sum(i.size for i in b) <= BATCH_BYTES for b in batches if len(b) > 1)
    assert [i.uid for b in batches for i in b] == [i.uid for i in small + huge], "order and completeness kept"
