"""Firing due jobs, exactly once.

A batch of due jobs is fired inside one write transaction: each job is claimed with a conditional update
(``pending`` -> ``done`` only if still pending), its action runs in a savepoint, and the log row is written; the
batch commits as a whole. A process killed anywhere before the commit leaves every job of the batch pending and
nothing of their effects (the next run fires them); after the commit they are done. Two workers at once: the
write lock (SQLite ``BEGIN IMMEDIATE``, a row lock elsewhere) serializes the claims, so the second sees the job
no longer pending. An action that fails rolls back to its savepoint and the job is ``failed`` with the reason.

The texts a batch's actions fill from templates are filled first, in a read transaction (``prerender``), and
the actions take them from the FireContext: a template that runs into the sandbox's limits (2 s, 1 MiB) spends
its time while other writers go on, and the write transaction that claims and fires the batch stays short.

``CRM_TUI_AUTOMATION_KILL_AT`` (tests only) names a point where the process kills itself with SIGKILL:
``claimed``, ``fired``, ``before_commit``, ``committed``.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlmodel import Session, col

from crm_tui.core import bulk
from crm_tui.core import models as m
from crm_tui.core.automation import actions, fields, schedule
from crm_tui.core.db import Database
from crm_tui.core.errors import CrmError, DatabaseError
from crm_tui.core.services.records import record_label
from crm_tui.core.types import RecordRef, RecordType

log = logging.getLogger(__name__)

BATCH = 250
LATE_AFTER = timedelta(minutes=15)  # fired later than this after its due time: "caught up"


def _checkpoint(name: str) -> None:
    if os.environ.get("CRM_TUI_AUTOMATION_KILL_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class Fired:
    job_id: int
    rule: str
    action: str
    record: str
    outcome: str  # done | failed | skipped
    message: str
    due_at: datetime
    late_seconds: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "job": self.job_id, "rule": self.rule, "action": self.action, "record": self.record,
            "outcome": self.outcome, "message": self.message, "due_at": self.due_at,
            "late_seconds": self.late_seconds,
        }  # fmt: skip


@dataclass
class RunReport:
    items: list[Fired] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for item in self.items if item.outcome == outcome)

    @property
    def late(self) -> list[Fired]:
        """What came due more than LATE_AFTER before it was looked at (fired late, or skipped as too late)."""
        return [i for i in self.items if i.late_seconds >= LATE_AFTER.total_seconds()]

    def summary(self) -> str:
        done, failed, skipped = self.count("done"), self.count("failed"), self.count("skipped")
        text = f"{done} fired, {failed} failed, {skipped} skipped"
        caught = [i for i in self.late if i.outcome == "done"]
        if caught:
            text += f" ({len(caught)} caught up late)"
        return text


def due_job_ids(session: Session, now: datetime, *, limit: int | None = None) -> list[int]:
    query = (
        select(col(m.AutomationJob.id))
        .where(col(m.AutomationJob.state) == "pending", col(m.AutomationJob.due_at) <= now)
        .order_by(col(m.AutomationJob.due_at), col(m.AutomationJob.id))
    )
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def _label(session: Session, job: m.AutomationJob, record: Any = None) -> str:
    ref = f"{job.record_type}:{job.record_id}"
    if record is not None:
        name = getattr(record, "title", None) or getattr(record, "subject", None)
        if name:
            return f"{ref} {name}"
    try:
        return f"{ref} {record_label(session, RecordRef(RecordType(job.record_type), job.record_id))}"
    except CrmError:
        return f"{ref} (deleted)"


class _Careful(Exception):
    """An action failed in a batch fired without savepoints: the batch is rolled back and fired again with one
    savepoint per action, so the failure is kept to its own job."""


def fire_batch(
    session: Session, job_ids: list[int], ctx: actions.FireContext, *, careful: bool = True
) -> list[Fired]:
    """Claim and fire these jobs inside the caller's write transaction (those no longer pending are left).

    ``careful``: each action in its own savepoint. Without it (the fast way: two statements fewer per action)
    a failing action raises ``_Careful`` and the caller rolls the whole transaction back."""
    now = ctx.now
    claimed = set(
        session.scalars(
            update(m.AutomationJob)
            .where(col(m.AutomationJob.id).in_(job_ids), col(m.AutomationJob.state) == "pending")
            .values(state="done", fired_at=now)
            .returning(col(m.AutomationJob.id))
        )
    )
    if not claimed:
        return []
    jobs = {
        job.id: job
        for job in session.scalars(
            select(m.AutomationJob)
            .where(col(m.AutomationJob.id).in_(claimed))
            .execution_options(populate_existing=True)
        )
    }
    rules = {
        rule.id: rule
        for rule in session.scalars(
            select(m.AutomationRule).where(col(m.AutomationRule.id).in_({j.rule_id for j in jobs.values()}))
        )
    }
    _pin(session)
    # The batch's records, fetched together and held while it fires.
    records: dict[tuple[str, int], Any] = {}
    for record_type in {j.record_type for j in jobs.values()}:
        model = fields.MODELS[record_type]
        wanted = [j.record_id for j in jobs.values() if j.record_type == record_type]
        records.update(
            ((record_type, r.id), r) for r in session.scalars(select(model).where(model.id.in_(wanted)))
        )
    _checkpoint("claimed")
    fired: list[Fired] = []
    updates: list[dict[str, Any]] = []
    logs: list[dict[str, Any]] = []
    for job_id in (i for i in job_ids if i in claimed):
        job = jobs[job_id]
        rule = rules[job.rule_id]
        record = records.get((job.record_type, job.record_id))
        label = _label(session, job, record)
        outcome, message, created = _fire(session, job, rule, record, ctx, careful)
        late = max(0, int((now - job.due_at).total_seconds()))
        if late >= LATE_AFTER.total_seconds() and outcome == "done":
            message = f"{message} (fired {_duration(late)} late)"
        updates.append({"b_id": job_id, "b_state": outcome, "b_result": message, "b_ref": created})
        logs.append({
            "job_id": job_id, "rule_id": rule.id, "rule_name": rule.name, "action": rule.action,
            "record_type": job.record_type, "record_id": job.record_id, "due_at": job.due_at, "at": now,
            "outcome": outcome, "late_seconds": late, "message": message,
        })  # fmt: skip
        fired.append(Fired(job_id, rule.name, rule.action, label, outcome, message, job.due_at, late))
        _checkpoint("fired")
    session.flush()
    session.execute(
        update(bulk.table_of(m.AutomationJob))
        .where(bulk.table_of(m.AutomationJob).c.id == bindparam("b_id"))
        .values(state=bindparam("b_state"), result=bindparam("b_result"), created_ref=bindparam("b_ref")),
        updates,
    )
    session.execute(insert(m.AutomationLog), logs)
    # The ORM copies of these jobs are stale now.
    for job in jobs.values():
        session.expire(job)
    return fired


# Small tables every action reads (who, which stage, which template): held for the batch. The session's
# identity map holds rows only while something refers to them, so without this each action fetched them again.
_PINNED = (
    m.User,
    m.Pipeline,
    m.Stage,
    m.SubstateDefinition,
    m.MailAccount,
    m.EmailTemplate,
    m.CustomFieldDefinition,
)


def _pin(session: Session) -> None:
    if "automation_pinned" not in session.info:
        session.info["automation_pinned"] = [
            row for model in _PINNED for row in session.scalars(select(model))
        ]


def _fire(
    session: Session,
    job: m.AutomationJob,
    rule: m.AutomationRule,
    record: Any,
    ctx: actions.FireContext,
    careful: bool = True,
) -> tuple[str, str, str | None]:
    late = max(0, int((ctx.now - job.due_at).total_seconds()))
    if record is None:
        return "skipped", "the record was deleted", None
    if not rule.enabled:
        return "skipped", "the rule is disabled", None
    if rule.late_policy == "skip" and late > rule.late_limit_hours * 3600:
        return "skipped", f"{_duration(late)} late (the rule skips after {rule.late_limit_hours} h)", None
    if not schedule.conditions_hold(session, rule, record):
        return "skipped", "its conditions no longer hold", None
    session.info[schedule.DEPTH_KEY] = job.depth
    savepoint = session.begin_nested() if careful else None
    try:
        done = actions.run(session, rule, job, record, ctx)
        if savepoint is not None:
            savepoint.commit()
        return "done", done.message, done.created_ref
    except DatabaseError:
        raise
    except Exception as exc:  # noqa: BLE001 - one broken action must not stop the others
        if savepoint is None:
            raise _Careful from exc
        savepoint.rollback()
        if not isinstance(exc, CrmError):
            log.exception("automation job %s failed", job.id)
            return "failed", f"{type(exc).__name__}: {exc}", None
        return "failed", str(exc), None
    finally:
        session.info[schedule.DEPTH_KEY] = 0


def _duration(seconds: int) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds // 86400} days"
    if seconds >= 2 * 3600:
        return f"{seconds // 3600} h"
    return f"{max(1, seconds // 60)} min"


def run_due(
    db: Database,
    make_context: Callable[[], actions.FireContext],
    *,
    limit: int | None = None,
    batch: int = BATCH,
    on_progress: Callable[[int, int], None] | None = None,
) -> RunReport:
    """Fire every job due now (chains fired within the run, down to the depth limit). ``make_context`` is asked
    once per batch (its ``now`` is the firing time)."""
    report = RunReport()
    with db.read() as session:
        total = len(due_job_ids(session, make_context().now))
    slow: dict[tuple[Any, ...], Any] = {}  # templates too slow to fill, for the whole run
    while limit is None or len(report.items) < limit:
        ctx = make_context()
        ctx.rendered.update(slow)
        size = batch if limit is None else min(batch, limit - len(report.items))
        with db.read() as session:
            ids = due_job_ids(session, ctx.now, limit=size)
        if not ids:
            break
        prerender(db, ids, ctx)
        try:
            with db.write() as session:
                fired = fire_batch(session, ids, ctx, careful=False)
                _checkpoint("before_commit")
        except _Careful:
            # Something failed: the batch again, each action in a savepoint (the failure stays its own), with
            # the texts already filled.
            rendered, ctx = ctx.rendered, make_context()
            ctx.rendered = rendered
            with db.write() as session:
                fired = fire_batch(session, ids, ctx, careful=True)
                _checkpoint("before_commit")
        slow.update((key, value) for key, value in ctx.rendered.items() if key[0] == "too slow")
        report.items.extend(fired)
        _checkpoint("committed")
        if on_progress is not None:
            on_progress(len(report.items), max(total, len(report.items)))
    return report  # (a batch may have scheduled chained jobs due now: the loop looks again until none is due)


def prerender(db: Database, job_ids: list[int], ctx: actions.FireContext) -> None:
    """Fill the templates of these jobs' actions into ``ctx.rendered`` in a read transaction, before the
    batch takes the write lock (each render within the sandbox's limits; a failure is kept and said when the
    job fires)."""
    with db.read() as session:
        jobs = list(
            session.scalars(
                select(m.AutomationJob).where(
                    col(m.AutomationJob.id).in_(job_ids),
                    col(m.AutomationJob.state) == "pending",
                )
            )
        )
        rules = {
            rule.id: rule
            for rule in session.scalars(
                select(m.AutomationRule).where(col(m.AutomationRule.id).in_({j.rule_id for j in jobs}))
            )
        }
        _pin(session)
        # The batch's records, fetched together and held while their templates are filled.
        records: dict[tuple[str, int], Any] = {}
        for record_type in {j.record_type for j in jobs} & set(fields.MODELS):
            model = fields.MODELS[record_type]
            wanted = [j.record_id for j in jobs if j.record_type == record_type]
            records.update(
                ((record_type, r.id), r) for r in session.scalars(select(model).where(model.id.in_(wanted)))
            )
        for job in jobs:
            rule = rules.get(job.rule_id)
            record = records.get((job.record_type, job.record_id))
            if rule is not None and rule.enabled and record is not None:
                actions.prerender(session, rule, job, record, ctx)


@dataclass
class Pending:
    job_id: int
    rule: str
    action: str
    record: str
    due_at: datetime
    event: str

    def as_json(self) -> dict[str, Any]:
        return {"job": self.job_id, "rule": self.rule, "action": self.action, "record": self.record,
                "due_at": self.due_at, "event": self.event}  # fmt: skip


def pending(
    session: Session,
    *,
    due_before: datetime | None = None,
    limit: int = 500,
    record: tuple[str, int] | None = None,
) -> list[Pending]:
    query = (
        select(m.AutomationJob, m.AutomationRule)
        .join(m.AutomationRule, col(m.AutomationRule.id) == m.AutomationJob.rule_id)
        .where(col(m.AutomationJob.state) == "pending")
        .order_by(col(m.AutomationJob.due_at), col(m.AutomationJob.id))
        .limit(limit)
    )
    if due_before is not None:
        query = query.where(col(m.AutomationJob.due_at) <= due_before)
    if record is not None:
        query = query.where(
            col(m.AutomationJob.record_type) == record[0], col(m.AutomationJob.record_id) == record[1]
        )
    pending = []
    for job, rule in session.execute(query).all():
        assert job.id is not None  # read from the database
        pending.append(
            Pending(
                job.id,
                rule.name,
                actions.describe(session, rule),
                _label(session, job),
                job.due_at,
                job.event,
            )
        )
    return pending


@dataclass
class LogRow:
    at: datetime
    rule: str
    action: str
    record: str
    outcome: str
    message: str
    due_at: datetime | None
    late_seconds: int

    def as_json(self) -> dict[str, Any]:
        return {"at": self.at, "rule": self.rule, "action": self.action, "record": self.record,
                "outcome": self.outcome, "message": self.message, "due_at": self.due_at,
                "late_seconds": self.late_seconds}  # fmt: skip


def log_rows(session: Session, *, limit: int = 300, since: datetime | None = None) -> list[LogRow]:
    query = (
        select(m.AutomationLog)
        .order_by(col(m.AutomationLog.at).desc(), col(m.AutomationLog.id).desc())
        .limit(limit)
    )
    if since is not None:
        query = query.where(col(m.AutomationLog.at) >= since)
    return [
        LogRow(
            row.at,
            row.rule_name,
            row.action,
            f"{row.record_type}:{row.record_id}",
            row.outcome,
            row.message,
            row.due_at,
            row.late_seconds,
        )  # fmt: skip
        for row in session.scalars(query)
    ]
