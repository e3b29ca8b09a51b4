"""Texts filled for an automation job: the merge fields of its record, and templates filled once per job (before
the engine takes the write lock, see ``actions.prerender``) and kept in the FireContext. Both the actions and the
PDF reports fill their templates here."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from sqlmodel import Session

from crm_tui.core import models as m
from crm_tui.core.services import email_templates
from crm_tui.core.types import RecordRef, RecordType

if TYPE_CHECKING:
    from crm_tui.core.automation.actions import FireContext


def job_ref(job: m.AutomationJob) -> RecordRef:
    """The record a job is for."""
    return RecordRef(RecordType(job.record_type), job.record_id)


def merge_context(session: Session, job: m.AutomationJob, ctx: FireContext) -> dict[str, Any]:
    """What a template filled for the job's record can use (the merge fields of email templates)."""
    today = ctx.now.astimezone(ctx.zone).date() if ctx.zone else ctx.now.date()
    return email_templates.merge_context(session, [job_ref(job)], me_id=ctx.me_id, today=today)


def rendered(
    ctx: FireContext,
    job: m.AutomationJob,
    source: tuple[str, str],
    context: Callable[[], dict[str, Any]],
    *,
    name: str,
    kind: str = "mail",
    ahead: bool = False,
) -> tuple[str, str]:
    """(subject, body) of a template filled for this job: as ``prerender`` filled it before the write lock
    (``ahead``: any template that may run long, one with a loop, a call or a filter), else filled now (one of
    field lookups only takes microseconds); within the sandbox's limits either way. A template too slow to
    fill for one record is not filled again for the others in this run."""
    key = (job.id, kind, name, source)
    slow = ("too slow", kind, name, source)
    if ahead and key not in ctx.rendered and not email_templates.may_run_long(*source):
        return "", ""  # filled where it is used, in the write: as quick as a lookup, and no field read twice
    if key not in ctx.rendered:
        if slow in ctx.rendered:
            ctx.rendered[key] = ctx.rendered[slow]
        else:
            try:
                ctx.rendered[key] = email_templates.render(source, context(), name=name)
            except email_templates.TemplateFieldError as exc:
                ctx.rendered[key] = exc
                if getattr(exc, "too_slow", False):
                    ctx.rendered[slow] = exc
    result = ctx.rendered[key]
    if isinstance(result, Exception):
        raise result
    return cast("tuple[str, str]", result)  # a filled (subject, body): the errors were raised above
