"""a deal's followers (users added to it) and named groups of users, for automation mail to the team or a group

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 19:45:00

New tables only (``opportunity_follower``, ``user_group``, ``user_group_member``): old databases open unchanged,
with no followers and no groups.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import crm_tui.core.columns

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "opportunity_follower",
        sa.Column(
            "opportunity_id",
            sa.Integer(),
            sa.ForeignKey("opportunity.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("user.id", ondelete="CASCADE"), nullable=False),
        sa.Column("added_at", crm_tui.core.columns.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("opportunity_id", "user_id"),
    )
    op.create_index("ix_opportunity_follower_user_id", "opportunity_follower", ["user_id"])
    op.create_table(
        "user_group",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(), nullable=False, unique=True),
        sa.Column("created_at", crm_tui.core.columns.UTCDateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "user_group_member",
        sa.Column(
            "group_id", sa.Integer(), sa.ForeignKey("user_group.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("user.id", ondelete="CASCADE"), nullable=False),
        sa.PrimaryKeyConstraint("group_id", "user_id"),
    )
    op.create_index("ix_user_group_member_user_id", "user_group_member", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_user_group_member_user_id", table_name="user_group_member")
    op.drop_table("user_group_member")
    op.drop_table("user_group")
    op.drop_index("ix_opportunity_follower_user_id", table_name="opportunity_follower")
    op.drop_table("opportunity_follower")
