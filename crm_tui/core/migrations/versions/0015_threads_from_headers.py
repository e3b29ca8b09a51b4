"""threads from headers; automatic mail marked; free-mail domains off organizations

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 09:30:00

Messages gain ``thread_id`` (their conversation, from Message-ID / In-Reply-To / References: ``core.mail_threads``)
and ``is_automatic`` (bounces, delivery reports, automatic replies: they never await a reply); the ids that join
a message to its thread go to ``mail_thread_key``. Every stored message is threaded here, and marked automatic
from its stored header. Organizations lose the free-mail and ISP domains of the shipped list (a lead's private
address gave its organization ``example.net``, and with it every other sender there).
"""

from __future__ import annotations

from email.parser import BytesHeaderParser
from email.policy import compat32

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from crm_tui.core import free_mail, mail_identity, mail_threads

    op.add_column("mail_message", sa.Column("thread_id", sa.Integer(), nullable=True))
    op.add_column(
        "mail_message", sa.Column("is_automatic", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.create_index("ix_mail_message_thread_id", "mail_message", ["thread_id"])
    op.create_table(
        "mail_thread_key",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["mail_message.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("key", "message_id"),
    )
    op.create_index("ix_mail_thread_key_message_id", "mail_thread_key", ["message_id"])
    op.add_column("activity", sa.Column("follow_up_of", sa.Integer(), nullable=True))
    op.create_index("ix_activity_follow_up_of", "activity", ["follow_up_of"])
    bind = op.get_bind()

    mine: set[str] = set()
    for addresses, username in bind.execute(sa.text("SELECT addresses, username FROM mail_account")):
        mine.update(a.strip().lower() for a in (addresses or "").splitlines() if a.strip())
        if "@" in (username or ""):
            mine.add(username.lower())
    mine.update(e.lower() for (e,) in bind.execute(sa.text('SELECT email FROM "user"')) if e)

    messages = [
        mail_threads.ThreadInput(
            id=row.id,
            message_id=row.message_id_header,
            in_reply_to=row.in_reply_to,
            references=row.references,
            subject_key=row.subject_key or "",
            reply=mail_threads.replying(row.subject or "", row.subject_key or ""),
            **mail_threads.correspondents(
                row.from_address or "", row.to_addresses or "", row.cc_addresses or ""
            ),
        )
        for row in bind.execute(
            sa.text(
                'SELECT id, message_id_header, in_reply_to, "references", subject_key, subject, from_address,'
                " to_addresses, cc_addresses FROM mail_message"
            )
        )
    ]
    threads = mail_threads.thread_of(messages, mine=mine)
    if threads:
        bind.execute(
            sa.text("UPDATE mail_message SET thread_id = :thread WHERE id = :id"),
            [{"thread": thread, "id": message_id} for message_id, thread in threads.items()],
        )
        keys = [{"message_id": msg.id, "key": key} for msg in messages for key in dict.fromkeys(msg.keys)]
        for start in range(0, len(keys), 2000):
            bind.execute(
                sa.text('INSERT INTO mail_thread_key (message_id, "key") VALUES (:message_id, :key)'),
                keys[start : start + 2000],
            )

    # Only each message's first 64 KiB (its header is there), a page of 500 at a time: a mailbox of many GB
    # never has to fit in memory.
    parser = BytesHeaderParser(policy=compat32)
    automatic = []
    last = 0
    while True:
        page = bind.execute(
            sa.text(
                "SELECT mail_message.id, mail_message.from_address, substr(mail_raw.raw, 1, 65536) AS head"
                " FROM mail_message JOIN mail_raw ON mail_raw.message_id = mail_message.id"
                " WHERE mail_message.id > :last ORDER BY mail_message.id LIMIT 500"
            ),
            {"last": last},
        ).all()
        if not page:
            break
        for message_id, from_address, head in page:
            last = message_id
            try:
                data = bytes(head)
                end = data.find(b"\r\n\r\n")
                header = parser.parsebytes(data[: end + 4] if end >= 0 else data)
                if mail_identity.is_automatic(header.get, from_address or ""):
                    automatic.append({"id": message_id})
            except Exception:  # noqa: BLE001, S112 - a header the parser refuses: the message stays as it was
                continue
    if automatic:
        bind.execute(sa.text("UPDATE mail_message SET is_automatic = TRUE WHERE id = :id"), automatic)

    listed = sorted(free_mail.free_domains())
    for start in range(0, len(listed), 500):
        bind.execute(
            sa.text("DELETE FROM organization_domain WHERE domain IN :domains").bindparams(
                sa.bindparam("domains", expanding=True)
            ),
            {"domains": listed[start : start + 500]},
        )


def downgrade() -> None:
    op.drop_index("ix_mail_thread_key_message_id", table_name="mail_thread_key")
    op.drop_index("ix_activity_follow_up_of", table_name="activity")
    op.drop_column("activity", "follow_up_of")
    op.drop_table("mail_thread_key")
    op.drop_index("ix_mail_message_thread_id", table_name="mail_message")
    op.drop_column("mail_message", "is_automatic")
    op.drop_column("mail_message", "thread_id")
