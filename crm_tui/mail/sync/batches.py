"""How a pass cuts its work into batches: each batch is one FETCH and one short transaction, so a kill at
any point loses nothing (the next pass goes on where this one stopped) and memory stays bounded."""

from __future__ import annotations

from crm_tui.core.services.mailbox import PendingBody

HEADER_BATCH = 500
FIRST_HEADER_BATCH = 100  # the first rows show sooner; the pipeline (read, parse, store) fills sooner
BODY_BATCH = 400
FIRST_BODY_BATCH = 100
BATCH_BYTES = 24 * 2**20  # a body batch holds at most this much mail (one huge message goes alone)


def header_batches(new: list[int]) -> list[list[int]]:
    """The UIDs of new mail in header batches: a small first one, then HEADER_BATCH at a time."""
    batches = [new[:FIRST_HEADER_BATCH]] if new else []
    batches += [
        new[start : start + HEADER_BATCH] for start in range(FIRST_HEADER_BATCH, len(new), HEADER_BATCH)
    ]
    return batches


def body_batches(pending: list[PendingBody]) -> list[list[PendingBody]]:
    """The bodies to fetch in batches of one folder each (``batches_by_size``), the first one small: the store
    starts on it while the helpers fetch the next ones."""
    batches: list[list[PendingBody]] = []
    by_folder: dict[str, list[PendingBody]] = {}
    for item in pending:
        by_folder.setdefault(item.folder_name, []).append(item)
    for items in by_folder.values():
        batches.extend(batches_by_size(items))
    if batches and len(batches[0]) > FIRST_BODY_BATCH:
        batches[:1] = [batches[0][:FIRST_BODY_BATCH], batches[0][FIRST_BODY_BATCH:]]
    return batches


def batches_by_size(items: list[PendingBody]) -> list[list[PendingBody]]:
    """Batches of at most BODY_BATCH messages and BATCH_BYTES bytes: memory stays bounded whatever the mail
    (a mailbox of 50 MB attachments must not be fetched 400 at a time)."""
    batches: list[list[PendingBody]] = []
    current: list[PendingBody] = []
    size = 0
    for item in items:
        if current and (len(current) >= BODY_BATCH or size + item.size > BATCH_BYTES):
            batches.append(current)
            current, size = [], 0
        current.append(item)
        size += item.size
    if current:
        batches.append(current)
    return batches
