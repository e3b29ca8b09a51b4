"""automation

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22 13:20:00

Automation rules, the stays (entries) of records in stages, sub-states and statuses, scheduled jobs and their
log; a copied deal remembers its original.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import crm_tui.core.columns

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_text = sqlmodel.sql.sqltypes.AutoString
_when = crm_tui.core.columns.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "automation_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_type", _text(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("scope", _text(), nullable=False),
        sa.Column("key", _text(), nullable=False),
        sa.Column("entered_at", _when(timezone=True), nullable=False),
        sa.Column("left_at", _when(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_automation_entry_record", "automation_entry", ["record_type", "record_id", "scope", "left_at"]
    )
    op.create_table(
        "automation_rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", _text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("entity", _text(), nullable=False),
        sa.Column("scope", _text(), nullable=False),
        sa.Column("pipeline_id", sa.Integer(), nullable=True),
        sa.Column("stage_id", sa.Integer(), nullable=True),
        sa.Column("substate_id", sa.Integer(), nullable=True),
        sa.Column("status", _text(), nullable=True),
        sa.Column("trigger", _text(), nullable=False),
        sa.Column("delay_value", sa.Integer(), nullable=False),
        sa.Column("delay_unit", _text(), nullable=False),
        sa.Column("date_field", _text(), nullable=True),
        sa.Column("at_time", _text(), nullable=True),
        sa.Column("zone", _text(), nullable=False),
        sa.Column("watch_field", _text(), nullable=True),
        sa.Column("conditions", sa.Text(), nullable=False),
        sa.Column("action", _text(), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("late_policy", _text(), nullable=False),
        sa.Column("late_limit_hours", sa.Integer(), nullable=False),
        sa.Column("survives_exit", sa.Boolean(), nullable=False),
        sa.Column("cursor", sa.Integer(), nullable=False),
        sa.Column("created_at", _when(timezone=True), nullable=False),
        sa.Column("updated_at", _when(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["pipeline_id"], ["pipeline.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["stage_id"], ["stage.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["substate_id"], ["substate_definition.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    for column in ("pipeline_id", "stage_id", "substate_id"):
        op.create_index(op.f(f"ix_automation_rule_{column}"), "automation_rule", [column])
    op.create_table(
        "automation_job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=True),
        sa.Column("key", _text(), nullable=False),
        sa.Column("record_type", _text(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("due_at", _when(timezone=True), nullable=False),
        sa.Column("state", _text(), nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("event", _text(), nullable=False),
        sa.Column("created_ref", _text(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("created_at", _when(timezone=True), nullable=False),
        sa.Column("fired_at", _when(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["entry_id"], ["automation_entry.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["rule_id"], ["automation_rule.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("rule_id", "key"),
    )
    op.create_index("ix_automation_job_due", "automation_job", ["state", "due_at"])
    op.create_index(op.f("ix_automation_job_entry_id"), "automation_job", ["entry_id"])
    op.create_index(op.f("ix_automation_job_rule_id"), "automation_job", ["rule_id"])
    op.create_table(
        "automation_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("rule_id", sa.Integer(), nullable=True),
        sa.Column("rule_name", _text(), nullable=False),
        sa.Column("action", _text(), nullable=False),
        sa.Column("record_type", _text(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("due_at", _when(timezone=True), nullable=True),
        sa.Column("at", _when(timezone=True), nullable=False),
        sa.Column("outcome", _text(), nullable=False),
        sa.Column("late_seconds", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["automation_job.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["rule_id"], ["automation_rule.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    for column in ("at", "job_id", "rule_id"):
        op.create_index(op.f(f"ix_automation_log_{column}"), "automation_log", [column])
    with op.batch_alter_table("opportunity") as batch:
        batch.add_column(sa.Column("copied_from_id", sa.Integer(), nullable=True))
        batch.create_index(batch.f("ix_opportunity_copied_from_id"), ["copied_from_id"], unique=False)
        batch.create_foreign_key(
            "fk_opportunity_copied_from_id_opportunity",
            "opportunity",
            ["copied_from_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("opportunity") as batch:
        batch.drop_constraint("fk_opportunity_copied_from_id_opportunity", type_="foreignkey")
        batch.drop_index(batch.f("ix_opportunity_copied_from_id"))
        batch.drop_column("copied_from_id")
    op.drop_table("automation_log")
    op.drop_table("automation_job")
    op.drop_table("automation_rule")
    op.drop_table("automation_entry")
