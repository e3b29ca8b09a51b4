"""The local mail store as a sync sees it: folders, copies on the server (locations), provisional messages
that become whole when their body arrives, flags, expunges, the per-account sync lock and offline changes.

Every function works inside the caller's transaction and does a small, bounded piece of work, so a sync can
commit often and a kill at any point leaves a store the next sync completes: a location is unique per
(folder, UIDVALIDITY, UID), a provisional message is finished by the next body pass, and copies merge by
identity (Message-ID + body hash, see ``core.mail_identity``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import delete, func, insert, select, true, update
from sqlmodel import Session, col

from crm_tui.core import bulk, mail_identity, mail_threads, search_index
from crm_tui.core import models as m
from crm_tui.core.errors import CrmError, NotFound
from crm_tui.core.mail_data import HEADER_COLUMNS, header_values
from crm_tui.core.services.mail_store import MessageData
from crm_tui.core.services.rows import id_of, rows_affected, stored_ids

LOCK_LEASE = timedelta(minutes=2)  # a lock not renewed for this long is stale
LOCK_RENEWAL = LOCK_LEASE / 4  # a sync renews its lock when it is this old, at its next write
ROLE_FLAGS = {
    "\\sent": "sent",
    "\\trash": "trash",
    "\\drafts": "drafts",
    "\\archive": "archive",
    "\\all": "all",
    "\\junk": "junk",
}
ROLE_NAMES = {
    "inbox": "inbox",
    "sent": "sent",
    "sent items": "sent",
    "sent messages": "sent",
    "gesendet": "sent",
    "trash": "trash",
    "deleted items": "trash",
    "deleted messages": "trash",
    "papierkorb": "trash",
    "drafts": "drafts",
    "entwürfe": "drafts",
    "archive": "archive",
    "archiv": "archive",
    "junk": "junk",
    "spam": "junk",
}


class SyncBusy(CrmError):
    """Another sync of this account is running."""


def folder_role(name: str, flags: Iterable[str]) -> str | None:
    for flag in flags:
        role = ROLE_FLAGS.get(flag.lower())
        if role:
            return role
    leaf = name.replace("\\", "/").split("/")[-1].split(".")[-1].strip().lower()
    return ROLE_NAMES.get(leaf) if name.upper() != "INBOX" else "inbox"


def ensure_folder(session: Session, account_id: int, name: str, role: str | None) -> m.MailFolder:
    folder = session.scalars(
        select(m.MailFolder).where(col(m.MailFolder.account_id) == account_id, col(m.MailFolder.name) == name)
    ).first()
    if folder is None:
        folder = m.MailFolder(account_id=account_id, name=name, role=role)
        session.add(folder)
        session.flush()
    elif role and folder.role != role:
        folder.role = role
    return folder


def folders_of(session: Session, account_id: int) -> list[m.MailFolder]:
    return list(
        session.scalars(
            select(m.MailFolder)
            .where(col(m.MailFolder.account_id) == account_id)
            .order_by(col(m.MailFolder.name))
        )
    )


def ever_synced(session: Session, account_id: int) -> bool:
    """Whether any folder of the account was ever synced (a sync records its UIDVALIDITY). Read without the
    ORM, like ``mail_accounts.account_row``: the sync asks before its login starts."""
    table = bulk.table_of(m.MailFolder)
    synced = select(table.c.id).where(table.c.account_id == account_id, table.c.uidvalidity.is_not(None))
    return session.execute(synced.limit(1)).first() is not None


def folder_by_role(session: Session, account_id: int, role: str) -> m.MailFolder | None:
    return session.scalars(
        select(m.MailFolder).where(col(m.MailFolder.account_id) == account_id, col(m.MailFolder.role) == role)
    ).first()


def known_uids(session: Session, folder_id: int, uidvalidity: int) -> set[int]:
    return set(
        session.scalars(
            select(col(m.MailLocation.uid)).where(
                col(m.MailLocation.folder_id) == folder_id, col(m.MailLocation.uidvalidity) == uidvalidity
            )
        )
    )


def _flags_text(flags: Iterable[str]) -> str:
    return " ".join(sorted({f for f in flags if f and f.lower() != "\\recent"}))


def _apply_flags_to_message(session: Session, message_id: int) -> None:
    """A message is read / flagged as its copies are (read if any copy is, as mail clients show it)."""
    rows = list(
        session.scalars(select(col(m.MailLocation.flags)).where(col(m.MailLocation.message_id) == message_id))
    )
    if not rows:
        return
    seen = any("\\Seen" in flags.split() for flags in rows)
    flagged = any("\\Flagged" in flags.split() for flags in rows)
    session.execute(
        update(m.MailMessage)
        .where(col(m.MailMessage.id) == message_id)
        .values(is_read=seen, is_flagged=flagged)
    )


@dataclass(frozen=True)
class FolderRef:
    """What storing a folder's headers needs of it, without loading the folder (the sync's batches)."""

    id: int
    role: str | None


@dataclass
class HeaderRow:
    uid: int
    flags: list[str]
    modseq: int | None
    values: tuple[Any, ...]  # the header columns' values (``mail_data.header_values``)
    size: int = 0  # RFC822.SIZE: the whole message's


_HEADER_FIELDS = tuple(name for name in HEADER_COLUMNS if name != "parse_problems")  # the body adds problems
# A provisional message: header columns, then these (no body yet), then size, direction, flags and arrival.
_PROVISIONAL = ("", False, "", None, False)
_HEADER_INSERT = (
    *HEADER_COLUMNS,
    "body_text",
    "has_attachments",
    "attachments",
    "body_hash",
    "has_body",
    "size",
    "is_outgoing",
    "is_read",
    "is_flagged",
    "received_at",
)


def store_headers(
    session: Session,
    folder: m.MailFolder | FolderRef,
    uidvalidity: int,
    rows: list[HeaderRow],
    *,
    now: datetime,
) -> int:
    """``store_header`` for a batch, in a few statements (the sync's fast path). Returns how many were new."""
    if not rows:
        return 0
    uids = [r.uid for r in rows]
    existing = set(
        session.scalars(  # by range: three parameters rather than one per row (a sync's batch is a UID run)
            select(col(m.MailLocation.uid)).where(
                col(m.MailLocation.folder_id) == folder.id,
                col(m.MailLocation.uidvalidity) == uidvalidity,
                col(m.MailLocation.uid).between(min(uids), max(uids)),
            )
        )
    )
    fresh = [r for r in rows if r.uid not in existing]
    if not fresh:
        return 0
    outgoing = folder.role in ("sent", "drafts")
    flags = [_flags_text(row.flags) for row in fresh]
    values: list[Sequence[Any]] = []
    for row, text in zip(fresh, flags, strict=True):
        names = text.split()
        values.append(
            row.values + _PROVISIONAL + (row.size, outgoing, "\\Seen" in names, "\\Flagged" in names, now)
        )
    # Straight to the driver (``core.bulk``), not through the ORM: this runs for every synced batch.
    ids = bulk.insert_tuples(session, bulk.table_of(m.MailMessage), _HEADER_INSERT, values)
    bulk.insert_tuples(
        session,
        bulk.table_of(m.MailLocation),
        ("message_id", "folder_id", "uidvalidity", "uid", "flags", "modseq", "pending_move"),
        [
            (message_id, folder.id, uidvalidity, row.uid, text, row.modseq, None)
            for message_id, row, text in zip(ids, fresh, flags, strict=True)
        ],
    )
    # No thread yet (NULL): until its body comes and ``store_bodies`` threads it, the views treat it as a thread
    # of its own (a NULL thread_id matches no other mail).
    return len(fresh)


def _thread_input(row: dict[str, Any]) -> mail_threads.ThreadInput:
    """A message as written (``store_bodies``' rows, ``store_unusable``'s header), as threading sees it."""
    return mail_threads.ThreadInput(
        id=row["id"],
        message_id=row["message_id_header"],
        in_reply_to=row["in_reply_to"],
        references=row["references"],
        subject_key=row["subject_key"] or "",
        reply=mail_threads.replying(row["subject"] or "", row["subject_key"] or ""),
        **mail_threads.correspondents(
            row["from_address"] or "", row["to_addresses"] or "", row["cc_addresses"] or ""
        ),
    )


@dataclass
class PendingBody:
    location_id: int
    message_id: int
    folder_id: int
    folder_name: str
    uidvalidity: int
    uid: int
    size: int = 0  # RFC822.SIZE as the server gave it with the header


def pending_bodies(session: Session, account_id: int, *, limit: int | None = None) -> list[PendingBody]:
    """Locations (of this account, current UIDVALIDITY) whose message has no body yet, by folder and UID."""
    query = (
        select(
            col(m.MailLocation.id),
            col(m.MailLocation.message_id),
            col(m.MailLocation.folder_id),
            col(m.MailFolder.name),
            col(m.MailLocation.uidvalidity),
            col(m.MailLocation.uid),
            col(m.MailMessage.size),
        )
        .join(m.MailFolder, col(m.MailFolder.id) == col(m.MailLocation.folder_id))
        .join(m.MailMessage, col(m.MailMessage.id) == col(m.MailLocation.message_id))
        .where(
            col(m.MailFolder.account_id) == account_id,
            col(m.MailMessage.has_body).is_(False),
            col(m.MailLocation.uidvalidity) == col(m.MailFolder.uidvalidity),
        )
        .order_by(col(m.MailLocation.folder_id), col(m.MailLocation.uid))
    )
    if limit is not None:
        query = query.limit(limit)
    return [PendingBody(*row) for row in session.execute(query)]


def store_body(session: Session, location_id: int, data: MessageData, *, now: datetime) -> tuple[int, bool]:
    """The body of one provisional copy arrived (``store_bodies`` for one). Returns (message id, merged)."""
    results = store_bodies(session, [(location_id, data)], now=now)
    if not results:
        raise NotFound(f"location {location_id} is gone")
    return results[0]


def store_bodies(
    session: Session,
    items: list[tuple[int, MessageData]],
    *,
    now: datetime,
    written: dict[int, dict[str, object]] | None = None,
    mine: set[str] | None = None,
) -> list[tuple[int, bool]]:
    """``store_body`` for a batch of (location id, parsed message), in a few statements: completes the
    provisional messages, merges copies into the stored message of the same identity (also within the batch).
    Returns (message id, merged) per item whose location still exists. ``written``, if given, receives the
    values written per completed message (linking then need not read them back).

    The raw bytes go to ``mail_raw`` with the rest. An item whose ``raw`` is empty has had them written there
    already (the sync's helper does that, ``mail.store.raw_writer``): its ``size`` says how many there were."""
    if not items:
        return []
    location_ids = [location_id for location_id, _ in items]
    owner = dict(
        session.execute(
            select(col(m.MailLocation.id), col(m.MailLocation.message_id)).where(
                bulk.among(session, col(m.MailLocation.id), location_ids)
            )
        ).all()
    )
    complete = set(
        stored_ids(
            session.scalars(
                select(col(m.MailMessage.id)).where(
                    bulk.among(session, col(m.MailMessage.id), list(owner.values())),
                    col(m.MailMessage.has_body).is_(True),
                )
            )
        )
    )
    digests = [
        data.body_hash or mail_identity.body_hash(data.raw, has_message_id=bool(data.message_id))
        for _, data in items
    ]  # the sync's helper process hashes as it parses
    # Stored whole messages of the same identity, found through the identity index (Message-ID, body hash);
    # a lookup by hash alone would scan the table for every batch.
    known: dict[tuple[str | None, str], int] = {}
    wanted = {(data.message_id, digest) for (_, data), digest in zip(items, digests, strict=True)}
    headers = sorted({header for header, _ in wanted if header is not None})
    bare = sorted({digest for header, digest in wanted if header is None})
    queries = [
        bulk.among(session, col(m.MailMessage.message_id_header), headers[start : start + 500])
        for start in range(0, len(headers), 500)
    ] + [
        col(m.MailMessage.message_id_header).is_(None)
        & bulk.among(session, col(m.MailMessage.body_hash), bare[start : start + 500])
        for start in range(0, len(bare), 500)
    ]
    for condition in queries:
        for message_id, header, digest in session.execute(
            select(
                col(m.MailMessage.id), col(m.MailMessage.message_id_header), col(m.MailMessage.body_hash)
            ).where(
                condition,
                col(m.MailMessage.has_body).is_(True),
            )
        ):
            if (header, digest) in wanted:
                known.setdefault((header, digest), message_id)
    results: list[tuple[int, bool]] = []
    updates: list[dict[str, Any]] = []
    completed_rows: list[dict[str, Any]] = []  # provisional messages this batch completes, as written
    raws: list[tuple[int, bytes]] = []
    # Before the merges drop the sources' bytes: the copies about to merge keep theirs where they differ.
    _keep_copy_bytes(session, items, digests, owner, complete, known)
    for (location_id, data), digest in zip(items, digests, strict=True):
        message_id = owner.get(location_id)
        if message_id is None:
            continue
        if message_id in complete:
            results.append((message_id, False))
            continue
        twin = known.get((data.message_id, digest))
        if twin is not None and twin != message_id:
            if updates:  # the twin may be completed in this batch: write those first
                _update_messages(session, updates)
                updates = []
            merge_into(session, message_id, twin)
            _apply_flags_to_message(session, twin)
            results.append((twin, True))
            continue
        known[(data.message_id, digest)] = message_id
        complete.add(message_id)
        completed_rows.append(
            {
                "id": message_id,
                **dict(zip(HEADER_COLUMNS, header_values(data), strict=True)),
                "body_text": data.body_text,
                "has_attachments": data.has_attachments,
                "attachments": "\n".join(f"{n}\t{t}\t{z}" for n, t, z in data.attachments),
                "size": len(data.raw) or data.size,
                "has_body": True,
                "body_hash": digest,
                "is_automatic": data.automatic,
            }
        )
        updates.append(completed_rows[-1])
        if data.raw or not data.size:  # (no bytes and no size: a message of 0 bytes, kept as such)
            raws.append((message_id, bytes(data.raw)))
        results.append((message_id, False))
    if updates:
        _update_messages(session, updates)
    store_raw(session, raws)
    if written is not None:
        written.update({row["id"]: row for row in completed_rows})
    search_index.index_messages(
        session.connection(),
        [
            (
                row["id"],
                row["subject"],
                search_index.mail_addresses(
                    row["from_name"], row["from_address"], row["to_addresses"], row["cc_addresses"]
                ),
                row["body_text"],
            )
            for row in sorted(completed_rows, key=lambda row: row["id"])
        ],
    )
    if completed_rows:
        # Threads once the body is here (off the header pass the list waits for); a message not threaded yet
        # is a thread of its own.
        mail_threads.assign(session, [_thread_input(row) for row in completed_rows], mine=mine)
        mail_threads.close_answered_follow_ups(session, now=now)
    return results


def storable(text: str) -> str:
    """Text any database column takes: no NUL (PostgreSQL refuses it), no lone surrogate (no encoder takes
    it), as U+FFFD and "?"."""
    return mail_identity.no_nul(text).encode("utf-8", "replace").decode("utf-8")


def storable_header_values(values: tuple[Any, ...], problem: str) -> tuple[Any, ...]:
    """A header row the database refused, as it can be stored: its text made ``storable``, what is no text
    or date dropped, and ``problem`` added to its problems (``HEADER_COLUMNS`` order)."""
    kept: list[Any] = []
    for name, value in zip(HEADER_COLUMNS, values, strict=True):
        if name == "sent_at":
            kept.append(value if isinstance(value, datetime) else None)
        elif isinstance(value, str):
            kept.append(storable(value))
        else:
            kept.append(None if name in ("message_id_header", "in_reply_to", "references") else "")
    problems = [line for line in (kept[-1] or "").splitlines() if line]
    kept[-1] = "\n".join([*problems, storable(problem)])
    return tuple(kept)


def store_unusable(session: Session, location_id: int, data: MessageData, *, problem: str) -> bool:
    """Keep a message whose body could not be stored as usual (``problem`` says why): completed with its
    bytes and the header as the header pass stored it, without text, with the problem; indexed by its header
    where that works. No copies merge into it. False when the copy is gone or the message complete."""
    message_id = session.scalar(
        select(col(m.MailLocation.message_id)).where(col(m.MailLocation.id) == location_id)
    )
    if message_id is None:
        return False
    row = session.execute(
        select(
            col(m.MailMessage.has_body),
            col(m.MailMessage.parse_problems),
            col(m.MailMessage.subject),
            col(m.MailMessage.from_name),
            col(m.MailMessage.from_address),
            col(m.MailMessage.to_addresses),
            col(m.MailMessage.cc_addresses),
            col(m.MailMessage.message_id_header),
            col(m.MailMessage.in_reply_to),
            col(m.MailMessage.references),
            col(m.MailMessage.subject_key),
        ).where(col(m.MailMessage.id) == message_id)
    ).first()
    if row is None or row.has_body:
        return False
    try:
        with session.begin_nested():  # threaded by its header, as a whole message is by its body
            mail_threads.assign(session, [_thread_input({"id": message_id, **row._asdict()})])
    except Exception:  # noqa: BLE001, S110 - the message is kept all the same, a thread of its own
        pass
    raw = bytes(data.raw)
    digest = data.body_hash
    if digest is None:
        try:
            digest = mail_identity.body_hash(raw, has_message_id=False)
        except Exception:  # noqa: BLE001 - the identity is a nicety here; the bytes are what is kept
            digest = ""
    problems = [line for line in (row.parse_problems or "").splitlines() if line] + [storable(problem)]
    try:
        with session.begin_nested():  # a savepoint: should the index refuse it too, the rest is kept
            search_index.index_messages(
                session.connection(),
                [
                    (
                        message_id,
                        row.subject,
                        search_index.mail_addresses(
                            row.from_name, row.from_address, row.to_addresses, row.cc_addresses
                        ),
                        "",
                    )
                ],
            )
    except Exception as exc:  # noqa: BLE001 - kept and listed, only not found by search
        problems.append(storable(f"search: not indexed ({type(exc).__name__}: {exc})"[:300]))
    session.execute(
        update(m.MailMessage)
        .where(col(m.MailMessage.id) == message_id)
        .values(
            has_body=True,
            body_text="",
            body_hash=digest,
            size=len(raw) or data.size,
            parse_problems="\n".join(problems),
            # A bounce is often the mail no parser takes: its sender still says what it is.
            is_automatic=bool(data.automatic)
            or mail_identity.is_automatic(lambda name: None, row.from_address),
        )
    )
    if raw or not data.size:
        store_raw(session, [(message_id, raw)])
    return True


def store_raw(session: Session, raws: list[tuple[int, bytes]]) -> None:
    """(message id, raw bytes) into ``mail_raw``, replacing what a message had there (a helper's write for a
    body whose store was interrupted, say)."""
    if not raws:
        return
    session.execute(
        delete(m.MailRaw).where(bulk.among(session, col(m.MailRaw.message_id), [i for i, _ in raws]))
    )
    session.execute(insert(m.MailRaw), [{"message_id": i, "raw": raw} for i, raw in raws])


def raw_of(session: Session, message_id: int) -> bytes | None:
    """A message's bytes as the server sent them, or None while its body has not arrived."""
    raw = session.scalar(select(col(m.MailRaw.raw)).where(col(m.MailRaw.message_id) == message_id))
    return bytes(raw) if raw is not None else None


# --- each copy's own bytes ----------------------------------------------------------------------------


def _keep_copy_bytes(
    session: Session,
    items: list[tuple[int, MessageData]],
    digests: list[str],
    owner: dict[int, int],
    complete: set[int],
    known: dict[tuple[str | None, str], int],
) -> None:
    """The copies of a ``store_bodies`` batch that will merge into a twin (the batch's own decisions, made
    ahead without writing): their bytes into ``mail_location_raw`` where they differ from the twin's, in a
    few statements for the batch. On Gmail (INBOX and All Mail) nearly every message merges and its copies are
    mostly alike: compared first, nothing is written for those (they were written, then deleted again).

    A copy's bytes are its ``data.raw``, or, where a sync helper wrote them under the copy's provisional
    message (``mail.store.raw_writer``; ``data.raw`` empty, ``data.size`` set), read from ``mail_raw``; the twin's
    are those of the message it completed in this batch, or its stored ones."""
    complete = set(complete)
    known = dict(known)
    batch_raw: dict[int, bytes] = {}  # messages this batch completes with their bytes in hand
    merging: list[tuple[int, int, int, bytes | None]] = []  # (location, its message, twin, bytes in hand)
    for (location_id, data), digest in zip(items, digests, strict=True):
        message_id = owner.get(location_id)
        if message_id is None or message_id in complete:
            continue
        in_hand = bytes(data.raw) if data.raw or not data.size else None
        twin = known.get((data.message_id, digest))
        if twin is not None and twin != message_id:
            merging.append((location_id, message_id, twin, in_hand))
            continue
        known[(data.message_id, digest)] = message_id
        complete.add(message_id)
        if in_hand is not None:
            batch_raw[message_id] = in_hand
    if not merging:
        return
    wanted = sorted(
        {twin for _, _, twin, _ in merging if twin not in batch_raw}
        | {source for _, source, _, in_hand in merging if in_hand is None}
    )
    stored: dict[int, bytes | None] = {}
    for start in range(0, len(wanted), 500):
        stored.update(
            (message_id, bytes(raw) if raw is not None else None)
            for message_id, raw in session.execute(
                select(col(m.MailRaw.message_id), col(m.MailRaw.raw)).where(
                    bulk.among(session, col(m.MailRaw.message_id), wanted[start : start + 500])
                )
            )
        )
    own = []
    for location_id, source, twin, in_hand in merging:
        mine = in_hand if in_hand is not None else stored.get(source)  # None: not known (fetched if asked)
        theirs = batch_raw[twin] if twin in batch_raw else stored.get(twin)
        if mine is None or theirs is None or mine != theirs:
            own.append({"location_id": location_id, "raw": mine})
    table = bulk.table_of(m.MailLocationRaw)
    session.execute(
        delete(table).where(bulk.among(session, table.c.location_id, [location for location, *_ in merging]))
    )
    if own:
        session.execute(insert(table), own)


def _drop_same_copy_bytes(session: Session, location_ids: list[int]) -> None:
    """Of the merged copies' bytes, those equal to their message's go: such a copy reads its message's."""
    if not location_ids:
        return
    table = bulk.table_of(m.MailLocationRaw)
    message_bytes = (
        select(col(m.MailRaw.raw))
        .join(m.MailLocation, col(m.MailLocation.message_id) == col(m.MailRaw.message_id))
        .where(col(m.MailLocation.id) == table.c.location_id)
        .scalar_subquery()
    )
    for start in range(0, len(location_ids), 500):
        chunk = location_ids[start : start + 500]
        session.execute(delete(table).where(table.c.location_id.in_(chunk), table.c.raw == message_bytes))


def copy_raw(session: Session, location_id: int) -> bytes | None:
    """One copy's bytes as the server sent them: its own where they differ from its message's, else its
    message's. None when they are not here: the body has not arrived, or the copy was merged before copies
    kept their own bytes (then only the server knows them; ``keep_copy_raw`` stores what it sends)."""
    row = session.execute(
        select(col(m.MailLocationRaw.raw), col(m.MailLocationRaw.location_id)).where(
            col(m.MailLocationRaw.location_id) == location_id
        )
    ).first()
    if row is not None:
        return bytes(row.raw) if row.raw is not None else None
    message_id = session.scalar(
        select(col(m.MailLocation.message_id)).where(col(m.MailLocation.id) == location_id)
    )
    if message_id is None:
        raise NotFound(f"no copy {location_id}")
    return raw_of(session, message_id)


def keep_copy_raw(session: Session, location_id: int, raw: bytes) -> None:
    """A copy's bytes fetched from the server (``copy_raw`` had none): kept as its own where they differ
    from its message's."""
    table = bulk.table_of(m.MailLocationRaw)
    session.execute(delete(table).where(table.c.location_id == location_id))
    session.execute(insert(table).values(location_id=location_id, raw=bytes(raw)))
    _drop_same_copy_bytes(session, [location_id])


def _update_messages(session: Session, updates: list[dict[str, object]]) -> None:
    """One executemany UPDATE ... WHERE id = ? (``core.bulk``: this runs for every synced batch)."""
    # The header columns were written with the headers: the same values, unless the body's parse differs.
    bulk.update_rows(session, bulk.table_of(m.MailMessage), updates, expected=_HEADER_FIELDS)


_Mark = TypeVar("_Mark", m.MailLink, m.MailUnlink)


def _move_marks(session: Session, model: type[_Mark], source_id: int, target_id: int) -> None:
    """The source's links (or unlinks) move to the target, but those the target has already."""
    have = {
        (row.record_type, row.record_id)
        for row in session.execute(
            select(col(model.record_type), col(model.record_id)).where(col(model.message_id) == target_id)
        )
    }
    for row in list(session.scalars(select(model).where(col(model.message_id) == source_id))):
        if (row.record_type, row.record_id) in have:
            session.delete(row)
        else:
            row.message_id = target_id


def merge_into(session: Session, source_id: int, target_id: int) -> None:
    """Make ``source`` part of ``target``: its locations, links, unlinks and queued changes move; it goes."""
    session.execute(
        update(m.MailLocation).where(col(m.MailLocation.message_id) == source_id).values(message_id=target_id)
    )
    session.execute(
        update(m.MailChange).where(col(m.MailChange.message_id) == source_id).values(message_id=target_id)
    )
    session.execute(  # a follow-up watches the message that stays
        update(m.Activity).where(col(m.Activity.follow_up_of) == source_id).values(follow_up_of=target_id)
    )
    _move_marks(session, m.MailLink, source_id, target_id)
    _move_marks(session, m.MailUnlink, source_id, target_id)
    session.flush()
    session.execute(delete(m.MailMessage).where(col(m.MailMessage.id) == source_id))
    session.flush()


def update_flags(
    session: Session,
    folder_id: int,
    uidvalidity: int,
    flags_by_uid: dict[int, tuple[Iterable[str], int | None]],
) -> int:
    """Flags as the server has them now. Returns how many copies changed."""
    if not flags_by_uid:
        return 0
    changed = 0
    touched: set[int] = set()
    uids = list(flags_by_uid)
    for start in range(0, len(uids), 500):
        chunk = uids[start : start + 500]
        rows = session.execute(
            select(
                col(m.MailLocation.id),
                col(m.MailLocation.uid),
                col(m.MailLocation.flags),
                col(m.MailLocation.message_id),
            ).where(
                col(m.MailLocation.folder_id) == folder_id,
                col(m.MailLocation.uidvalidity) == uidvalidity,
                col(m.MailLocation.uid).in_(chunk),
            )
        ).all()
        for location_id, uid, old, message_id in rows:
            flags, modseq = flags_by_uid[uid]
            text = _flags_text(flags)
            if text != old:
                session.execute(
                    update(m.MailLocation)
                    .where(col(m.MailLocation.id) == location_id)
                    .values(flags=text, modseq=modseq)
                )
                touched.add(message_id)
                changed += 1
    for message_id in touched:
        _apply_flags_to_message(session, message_id)
    return changed


def remove_locations(session: Session, folder_id: int, uidvalidity: int, uids: Iterable[int]) -> int:
    """Copies the server no longer has (expunged, moved away). Messages left with no copy and no record link
    are removed; a message filed on a record stays (the CRM keeps what was filed)."""
    uids = list(uids)
    removed = 0
    messages: set[int] = set()
    for start in range(0, len(uids), 500):
        chunk = uids[start : start + 500]
        condition = (
            (col(m.MailLocation.folder_id) == folder_id)
            & (col(m.MailLocation.uidvalidity) == uidvalidity)
            & col(m.MailLocation.uid).in_(chunk)
        )
        messages.update(session.scalars(select(col(m.MailLocation.message_id)).where(condition)))
        removed += rows_affected(session.execute(delete(m.MailLocation).where(condition)))
    drop_orphans(session, messages)
    for message_id in messages:
        _apply_flags_to_message(session, message_id)
    return removed


def remove_stale_generations(session: Session, folder: m.MailFolder) -> int:
    """After a UIDVALIDITY change has been re-matched: the copies under the old UIDVALIDITY go."""
    messages = set(
        session.scalars(
            select(col(m.MailLocation.message_id)).where(
                col(m.MailLocation.folder_id) == folder.id,
                col(m.MailLocation.uidvalidity) != folder.uidvalidity,
            )
        )
    )
    removed = rows_affected(
        session.execute(
            delete(m.MailLocation).where(
                col(m.MailLocation.folder_id) == folder.id,
                col(m.MailLocation.uidvalidity) != folder.uidvalidity,
            )
        )
    )
    drop_orphans(session, messages)
    return removed


def drop_orphans(session: Session, message_ids: Iterable[int], *, keep_waiting: bool = True) -> None:
    """Of these messages, those left with no copy on a server and no record link go. One with an offline
    change not yet made stays until the sync has said that change could not be made (``pending_changes``
    gives it with no copy; the sync then finishes the change and drops the message): deleting the message
    would delete its change without a word. ``keep_waiting`` False: those go too (their account is removed)."""
    ids = list(message_ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        located = select(col(m.MailLocation.message_id)).where(col(m.MailLocation.message_id).in_(chunk))
        linked = select(col(m.MailLink.message_id)).where(col(m.MailLink.message_id).in_(chunk))
        waiting = select(col(m.MailChange.message_id)).where(
            col(m.MailChange.message_id).in_(chunk),
            col(m.MailChange.done_at).is_(None),
        )
        session.execute(
            delete(m.MailMessage).where(
                col(m.MailMessage.id).in_(chunk),
                col(m.MailMessage.id).not_in(located),
                col(m.MailMessage.id).not_in(linked),
                col(m.MailMessage.id).not_in(waiting) if keep_waiting else true(),
                col(m.MailMessage.is_outgoing).is_(False),
            )
        )
    session.flush()


def location_count(session: Session, folder_id: int, uidvalidity: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(m.MailLocation)
            .where(col(m.MailLocation.folder_id) == folder_id, col(m.MailLocation.uidvalidity) == uidvalidity)
        )
        or 0
    )


# --- the per-account sync lock --------------------------------------------------------------------


def acquire_lock(
    session: Session, account_id: int, holder: str, *, now: datetime, alive: bool | None = None
) -> None:
    """Take the account's sync lock, or raise SyncBusy. A lock older than the lease, or one whose holder
    process is known to be dead (``alive`` False, checked by the caller on this host), is taken over."""
    lock = session.get(m.MailSyncLock, account_id)
    if lock is not None and lock.holder != holder:
        fresh = now - lock.renewed_at < LOCK_LEASE
        if fresh and alive is not False:
            raise SyncBusy(f"a sync of this account is already running ({lock.holder})")
        session.delete(lock)
        session.flush()
        lock = None
    if lock is None:
        session.add(m.MailSyncLock(account_id=account_id, holder=holder, renewed_at=now))
    else:
        lock.renewed_at = now
    session.flush()


def lock_holder(session: Session, account_id: int) -> str | None:
    lock = session.get(m.MailSyncLock, account_id)
    return lock.holder if lock else None


def renew_lock(session: Session, account_id: int, holder: str, *, now: datetime) -> None:
    session.execute(
        update(m.MailSyncLock)
        .where(col(m.MailSyncLock.account_id) == account_id, col(m.MailSyncLock.holder) == holder)
        .values(renewed_at=now)
    )


def release_lock(session: Session, account_id: int, holder: str) -> None:
    session.execute(
        delete(m.MailSyncLock).where(
            col(m.MailSyncLock.account_id) == account_id, col(m.MailSyncLock.holder) == holder
        )
    )


# --- offline changes --------------------------------------------------------------------------------

CHANGE_ACTIONS = ("read", "unread", "flag", "unflag", "move", "archive", "delete")


def queue_change(
    session: Session, message_id: int, action: str, argument: str | None = None, *, now: datetime
) -> m.MailChange:
    """Apply a change locally at once and queue it for the server (the next sync replays it)."""
    if action not in CHANGE_ACTIONS:
        raise CrmError(f"unknown mail action {action!r}")
    message = session.get(m.MailMessage, message_id)
    if message is None:
        raise NotFound(f"no message {message_id}")
    if action in ("read", "unread"):
        message.is_read = action == "read"
    elif action in ("flag", "unflag"):
        message.is_flagged = action == "flag"
    else:
        if action == "move" and not argument:
            raise CrmError("a move needs the folder to move to")
        # Each copy shows where it is going at once; the server move happens on the next sync.
        for location, folder in session.execute(
            select(m.MailLocation, m.MailFolder)
            .join(m.MailFolder, col(m.MailFolder.id) == col(m.MailLocation.folder_id))
            .where(col(m.MailLocation.message_id) == message_id)
        ).all():
            location.pending_move = target_folder(session, folder.account_id, action, argument)
    change = m.MailChange(message_id=message_id, action=action, argument=argument, created_at=now)
    session.add(change)
    session.flush()
    return change


def target_folder(session: Session, account_id: int, action: str, argument: str | None) -> str:
    """The folder a move, archive or delete sends a copy to on this account."""
    if action == "move":
        return argument or "INBOX"
    role = "archive" if action == "archive" else "trash"
    folder = folder_by_role(session, account_id, role)
    return folder.name if folder is not None else ("Archive" if role == "archive" else "Trash")


def pending_changes(
    session: Session, account_id: int
) -> list[tuple[int, int, str, str | None, list[tuple[str, int, int]]]]:
    """(change id, message id, action, argument, [(folder name, uidvalidity, uid)]) for this account's copies.
    A change whose message has no copy on any server any more (and was not sent from here) comes with no
    place: the sync says it could not be made."""
    result: list[tuple[int, int, str, str | None, list[tuple[str, int, int]]]] = []
    changes = session.scalars(
        select(m.MailChange).where(col(m.MailChange.done_at).is_(None)).order_by(col(m.MailChange.id))
    )
    for change in changes:
        places = session.execute(
            select(col(m.MailFolder.name), col(m.MailLocation.uidvalidity), col(m.MailLocation.uid))
            .join(m.MailFolder, col(m.MailFolder.id) == col(m.MailLocation.folder_id))
            .where(
                col(m.MailLocation.message_id) == change.message_id,
                col(m.MailFolder.account_id) == account_id,
            )
        ).all()
        if places or _nowhere(session, change.message_id):
            result.append(
                (
                    id_of(change),
                    change.message_id,
                    change.action,
                    change.argument,
                    [(name, validity, uid) for name, validity, uid in places],
                )
            )
    return result


def _nowhere(session: Session, message_id: int) -> bool:
    """Whether a message has no copy on any server, and was not sent from here (an outgoing message waits
    for its Sent copy)."""
    located = session.scalar(
        select(col(m.MailLocation.id)).where(col(m.MailLocation.message_id) == message_id).limit(1)
    )
    outgoing = session.scalar(
        select(col(m.MailMessage.is_outgoing)).where(col(m.MailMessage.id) == message_id)
    )
    return located is None and outgoing is False


def folders_with_pending_bodies(session: Session, account_id: int) -> set[int]:
    """The folders (ids) of this account with copies whose body has not arrived yet (``pending_bodies``)."""
    return set(
        session.scalars(
            select(col(m.MailLocation.folder_id))
            .join(m.MailFolder, col(m.MailFolder.id) == col(m.MailLocation.folder_id))
            .join(m.MailMessage, col(m.MailMessage.id) == col(m.MailLocation.message_id))
            .where(
                col(m.MailFolder.account_id) == account_id,
                col(m.MailMessage.has_body).is_(False),
                col(m.MailLocation.uidvalidity) == col(m.MailFolder.uidvalidity),
            )
            .distinct()
        )
    )


@dataclass
class Identity:
    """What finds a message again on a server: its Message-ID and body hash (``mail_identity``), its date."""

    message_id_header: str | None
    body_hash: str | None
    sent_at: datetime | None


def identity_of(session: Session, message_id: int) -> Identity | None:
    row = session.execute(
        select(
            col(m.MailMessage.message_id_header), col(m.MailMessage.body_hash), col(m.MailMessage.sent_at)
        ).where(col(m.MailMessage.id) == message_id)
    ).first()
    return Identity(*row) if row is not None else None


def copy_found_again(
    session: Session, account_id: int, message_id: int, place: tuple[str, int, int], flags: Iterable[str]
) -> None:
    """A message's copy found on the server by its identity (outside what the sync fetches: older than the
    account's sync window) is its copy again: (folder name, UIDVALIDITY, UID) with its flags."""
    folder = session.scalar(
        select(m.MailFolder).where(
            col(m.MailFolder.account_id) == account_id, col(m.MailFolder.name) == place[0]
        )
    )
    if folder is None:
        return
    exists = session.scalar(
        select(col(m.MailLocation.id)).where(
            col(m.MailLocation.folder_id) == folder.id,
            col(m.MailLocation.uidvalidity) == place[1],
            col(m.MailLocation.uid) == place[2],
        )
    )
    if exists is None:
        session.add(
            m.MailLocation(
                message_id=message_id,
                folder_id=id_of(folder),
                uidvalidity=place[1],
                uid=place[2],
                flags=_flags_text(flags),
            )
        )
        session.flush()
        _apply_flags_to_message(session, message_id)


def changed_on_server(
    session: Session, account_id: int, action: str, places: list[tuple[str, int, int]]
) -> None:
    """An offline change was made on the server to these copies (folder name, UIDVALIDITY, UID): a read or
    flag change shows in their flags at once (not only after the next flag fetch: a copy found again after a
    renumbering came with the server's old flags); a moved or deleted copy has left its folder (the message
    stays; its copy in the target folder comes with that folder's sync)."""
    if not places:
        return
    folders = {folder.name: folder.id for folder in folders_of(session, account_id)}
    touched: set[int] = set()
    for name, uidvalidity, uid in places:
        where = (
            (col(m.MailLocation.folder_id) == folders.get(name))
            & (col(m.MailLocation.uidvalidity) == uidvalidity)
            & (col(m.MailLocation.uid) == uid)
        )
        if action in ("move", "archive", "delete"):
            session.execute(delete(m.MailLocation).where(where))
            continue
        flag = "\\Seen" if action in ("read", "unread") else "\\Flagged"
        for location_id, message_id, flags in session.execute(
            select(col(m.MailLocation.id), col(m.MailLocation.message_id), col(m.MailLocation.flags)).where(
                where
            )
        ).all():
            names = set(flags.split()) - {flag}
            if action in ("read", "flag"):
                names.add(flag)
            session.execute(
                update(m.MailLocation)
                .where(col(m.MailLocation.id) == location_id)
                .values(flags=_flags_text(names))
            )
            touched.add(message_id)
    for message_id in touched:
        _apply_flags_to_message(session, message_id)


def finish_change(session: Session, change_id: int, *, now: datetime, error: str | None = None) -> None:
    session.execute(
        update(m.MailChange).where(col(m.MailChange.id) == change_id).values(done_at=now, error=error)
    )
