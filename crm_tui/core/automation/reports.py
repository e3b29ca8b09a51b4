"""PDF reports from Jinja2 report templates (files ``NAME.j2``: the user's folder first, then the shipped ones).

A template renders to light text markup: ``# title``, ``## heading``, ``| a | b |`` table rows, ``- `` list
items, ``---`` a rule, other lines as paragraphs. fpdf2 lays it out; a Unicode font (DejaVu) is used where the
system has one, otherwise the PDF core font with the characters it lacks replaced.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from crm_tui.core import models as m
from crm_tui.core.automation.rendering import merge_context, rendered
from crm_tui.core.errors import CrmError
from crm_tui.core.services import email_templates

FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/share/fonts/TTF"),
    Path("/Library/Fonts"),
)


def template_names(dirs: list[Path]) -> list[str]:
    names: dict[str, None] = {}
    for folder in dirs:
        if folder.is_dir():
            names.update(dict.fromkeys(sorted(p.stem for p in folder.glob("*.j2"))))
    return list(names)


def find_template(name: str, dirs: list[Path]) -> Path:
    for folder in dirs:
        candidate = folder / f"{name}.j2"
        if candidate.is_file():
            return candidate
    raise CrmError(f"no report template {name!r} (looked in {', '.join(str(d) for d in dirs) or 'nowhere'})")


def _extras(session: Session, job: m.AutomationJob, record: Any, zone: Any) -> dict[str, Any]:
    def day(value: datetime | None) -> str:
        return (
            value.astimezone(zone).strftime("%d.%m.%Y")
            if value and zone
            else (value.strftime("%d.%m.%Y") if value else "")
        )

    column = {
        "opportunity": m.Activity.opportunity_id,
        "lead": m.Activity.lead_id,
        "ticket": m.Activity.ticket_id,
    }[job.record_type]
    activities = [
        {"date": day(a.start_at), "type": a.type, "subject": a.subject, "status": a.status}
        for a in session.scalars(
            select(m.Activity).where(column == record.id).order_by(col(m.Activity.start_at))
        )
    ]
    contacts: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    if job.record_type == "opportunity":
        for contact, primary in session.execute(
            select(m.Contact, col(m.OpportunityContact.is_primary))
            .join(m.OpportunityContact, col(m.OpportunityContact.contact_id) == m.Contact.id)
            .where(m.OpportunityContact.opportunity_id == record.id)
            .order_by(col(m.OpportunityContact.is_primary).desc(), col(m.Contact.last_name))
        ):
            email = session.scalars(
                select(col(m.ContactEmail.address))
                .where(m.ContactEmail.contact_id == contact.id)
                .order_by(col(m.ContactEmail.position))
            ).first()
            contacts.append({"name": contact.name, "email": email, "primary": primary})
        stages = {s.id: s.name for s in session.scalars(select(m.Stage))}
        for row in session.scalars(
            select(m.OpportunityHistory)
            .where(
                col(m.OpportunityHistory.opportunity_id) == record.id,
                col(m.OpportunityHistory.kind) == "stage",
            )
            .order_by(col(m.OpportunityHistory.changed_at), col(m.OpportunityHistory.id))
        ):
            text = (
                f"{stages.get(row.from_stage_id, '-')} -> {stages.get(row.to_stage_id, '-')}"
                if row.from_stage_id
                else f"created in {stages.get(row.to_stage_id, '-')}"
            )
            history.append({"date": day(row.changed_at), "text": text})
    return {"activities": activities, "contacts": contacts, "history": history}


def render_text(
    session: Session, name: str, job: m.AutomationJob, record: Any, ctx: Any, *, ahead: bool = False
) -> str:
    """The report template filled for the job's record (once per job: the engine fills it before it takes the
    write lock, see actions.prerender)."""
    source = find_template(name, ctx.report_dirs).read_text(encoding="utf-8")

    def context() -> dict[str, Any]:
        values = email_templates.allowing_empty(merge_context(session, job, ctx))
        values.update(_extras(session, job, record, ctx.zone))
        return values

    return rendered(ctx, job, ("", source), context, name=name, kind="report", ahead=ahead)[1]


def _font(pdf: Any) -> str:
    for folder in FONT_DIRS:
        regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
        if regular.is_file():
            pdf.add_font("body", "", str(regular))
            pdf.add_font("body", "B", str(bold if bold.is_file() else regular))
            return "body"
    return "helvetica"


def to_pdf(text: str, *, title: str, now: datetime) -> bytes:
    # fpdf2 loads slowly: only when a report is made
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(True, margin=15)
    pdf.set_title(title)
    pdf.set_creator("crm-tui")
    pdf.set_creation_date(now)
    family = _font(pdf)
    unicode_font = family == "body"

    def clean(value: str) -> str:
        return value if unicode_font else value.encode("latin-1", "replace").decode("latin-1")

    pdf.add_page()
    table: list[list[str]] = []

    def flush_table() -> None:
        if not table:
            return
        pdf.set_font(family, size=9)
        with pdf.table(first_row_as_headings=True, text_align="LEFT") as grid:
            for cells in table:
                row = grid.row()
                for cell in cells:
                    row.cell(clean(cell))
        table.clear()
        pdf.ln(2)

    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("|") and stripped.endswith("|") and len(stripped) > 1:
            cells = [c.strip() for c in stripped[1:-1].split("|")]
            if all(set(c) <= set("-: ") for c in cells):
                continue
            if table and len(cells) != len(table[0]):
                cells = (cells + [""] * len(table[0]))[: len(table[0])]
            table.append(cells)
            continue
        flush_table()
        if stripped.startswith("# "):
            pdf.set_font(family, "B", 16)
            pdf.multi_cell(0, 9, clean(stripped[2:]), new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)
        elif stripped.startswith("## "):
            pdf.ln(2)
            pdf.set_font(family, "B", 12)
            pdf.multi_cell(0, 7, clean(stripped[3:]), new_x="LMARGIN", new_y="NEXT")
        elif stripped == "---":
            pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
            pdf.ln(3)
        elif not stripped:
            pdf.ln(3)
        else:
            pdf.set_font(family, size=10)
            text_line = (
                ("\u2022 " if unicode_font else "- ") + stripped[2:]
                if stripped.startswith("- ")
                else stripped
            )
            pdf.multi_cell(0, 5.5, clean(text_line), new_x="LMARGIN", new_y="NEXT")
    flush_table()
    return bytes(pdf.output())


def render_pdf(session: Session, name: str, job: m.AutomationJob, record: Any, ctx: Any) -> tuple[str, bytes]:
    """(title, PDF bytes) of the report template ``name`` for the job's record."""
    text = render_text(session, name, job, record, ctx)
    first = next((line.strip() for line in text.splitlines() if line.strip()), name)
    title = first[2:].strip() if first.startswith("# ") else name
    return title, to_pdf(text, title=title, now=ctx.now)
