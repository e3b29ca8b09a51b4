"""Mass mail: one template to many contacts, leads or colleagues (users), rendered per recipient, one message
each, through the outbox, paced, stoppable and resumable. Before anything is queued the recipients and the
first mails as they will go out are shown (``recipients``, ``preview``).

Exactly once per recipient: a recipient's mail is put in the outbox and the recipient marked ``queued`` in
one transaction, so a stop, a crash or a kill between two recipients never sends anyone twice, and a resume
goes on with the ``pending`` ones. Recipients who opted out, have no address, or lack a field the template
needs are ``skipped`` with the reason, listed before anything is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlmodel import Session, col

from crm_tui.core import models as m
from crm_tui.core.errors import CrmError, NotFound
from crm_tui.core.mail_identity import format_address
from crm_tui.core.services import contacts, email_templates, leads, outbox, records
from crm_tui.core.services.rows import id_of, stored_ids
from crm_tui.core.types import RecordRef, RecordType

# (from name, from address, to, subject, body) -> (raw message, Message-ID, envelope recipients); given by the
# caller (mail.compose builds messages; the core does not import it).
Builder = Callable[[str, str, str, str, str], tuple[bytes, str, list[str]]]


@dataclass
class Progress:
    total: int
    queued: int
    pending: int
    skipped: int
    state: str

    @property
    def done(self) -> int:
        return self.queued + self.skipped


# Leads a mass mail leaves out unless asked (``closed_leads``): a converted lead is a contact now (written to
# as one), a disqualified lead is not to be written to. The reason they are skipped with, by status.
LEFT_OUT = {
    m.LeadStatus.CONVERTED.value: "left out: a converted lead (a contact now)",
    m.LeadStatus.DISQUALIFIED.value: "left out: a disqualified lead",
}


@dataclass
class _Who:
    address: str | None
    opted_out: bool
    display_name: str | None  # the name in To ("Ines Kraus <ines.kraus@example.net>"); None: the address only
    status: str | None = None  # a lead's


def _who(session: Session, ref: RecordRef) -> _Who:
    """The address, opt-out, the name for To and (for a lead) the status of a contact, lead or colleague."""
    if ref.type is RecordType.USER:
        user = session.get(m.User, ref.id)
        if user is None:
            raise NotFound(f"{ref} does not exist")
        return _Who(user.email, False, user.name)
    if ref.type is RecordType.CONTACT:
        contact = session.get(m.Contact, ref.id)
        if contact is None:
            raise NotFound(f"{ref} does not exist")
        address = next(iter(contacts.contact_emails(session, ref.id)), None)
        return _Who(address, bool(contact.mail_opt_out), contact.name)
    if ref.type is RecordType.LEAD:
        lead = session.get(m.Lead, ref.id)
        if lead is None:
            raise NotFound(f"{ref} does not exist")
        address = next(iter(leads.lead_emails(session, ref.id)), None)
        # The person, never the lead's title ("Wärmepumpe für den Neubau (Seeblick)" is no one's name).
        return _Who(address, bool(lead.mail_opt_out), (lead.person_name or "").strip() or None, lead.status)
    raise CrmError(f"mass mail goes to contacts, leads and colleagues, not to {ref.type.value}s")


def to_line(session: Session, ref: RecordRef, address: str) -> str:
    """The To of a recipient's mail: "Name <address>" with the person's name (a lead's person, else the
    address alone)."""
    return format_address(_who(session, ref).display_name, address)


def _render(
    session: Session, template: m.EmailTemplate, ref: RecordRef, *, me_id: int | None, today: date
) -> tuple[str, str]:
    context = email_templates.merge_context(session, [ref], me_id=me_id, today=today)
    return email_templates.render(template, context)


def create_campaign(
    session: Session,
    *,
    template_id: int,
    account_id: int,
    from_name: str,
    from_address: str,
    refs: list[RecordRef],
    per_minute: int,
    now: datetime,
    me_id: int | None,
    today: date,
    closed_leads: bool = False,
) -> m.Campaign:
    """A campaign with every recipient checked now: pending, or skipped with the reason. Converted and
    disqualified leads are left out (skipped, saying so) unless ``closed_leads``."""
    template = session.get(m.EmailTemplate, template_id)
    if template is None:
        raise NotFound(f"no template {template_id}")
    if not refs:
        raise CrmError("no recipients: the list is empty")
    if not 1 <= per_minute <= 10_000:
        raise CrmError("the pace is between 1 and 10,000 mails a minute")
    campaign = m.Campaign(
        name=template.name,
        template_id=template_id,
        account_id=account_id,
        from_name=from_name,
        from_address=from_address,
        per_minute=per_minute,
        state="ready",
        created_at=now,
    )
    session.add(campaign)
    session.flush()
    for ref in dict.fromkeys(refs):
        who = _who(session, ref)
        address = who.address
        label = records.record_label(session, ref)
        state, reason = "pending", None
        if who.status in LEFT_OUT and not closed_leads:
            state, reason = "skipped", LEFT_OUT[who.status]
        elif who.opted_out:
            state, reason = "skipped", "opted out of mass mail"
        elif not address:
            state, reason = "skipped", "no e-mail address"
        else:
            try:
                _render(session, template, ref, me_id=me_id, today=today)
            except email_templates.TemplateLimitError:
                raise  # the template's own fault (2 s, 1 MiB...): no mail of it goes, and no one waits 2 s each
            except email_templates.TemplateFieldError as exc:
                state, reason = "skipped", str(exc)
        session.add(
            m.CampaignRecipient(
                campaign_id=id_of(campaign),
                record_type=ref.type.value,
                record_id=ref.id,
                label=label,
                address=address,
                state=state,
                reason=reason,
            )
        )
    session.flush()
    return campaign


def name_and_pace(session: Session, campaign_id: int) -> tuple[str, int]:
    """A mass mail's name and how many mails a minute it sends (("", 0) when it is gone)."""
    campaign = session.get(m.Campaign, campaign_id)
    return (campaign.name, campaign.per_minute) if campaign is not None else ("", 0)


def progress(session: Session, campaign_id: int) -> Progress:
    campaign = session.get(m.Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"no campaign {campaign_id}")
    counts = dict(
        session.execute(
            select(col(m.CampaignRecipient.state), func.count())
            .where(col(m.CampaignRecipient.campaign_id) == campaign_id)
            .group_by(col(m.CampaignRecipient.state))
        ).all()
    )
    total = sum(counts.values())
    return Progress(
        total, counts.get("queued", 0), counts.get("pending", 0), counts.get("skipped", 0), campaign.state
    )


def team(session: Session, *, me_id: int | None = None) -> list[RecordRef]:
    """The team: every active user of our company (a user without an organization; a partner's users are
    not colleagues) but the one writing (a mass mail to colleagues)."""
    return [
        RecordRef(RecordType.USER, user_id)
        for user_id in stored_ids(
            session.scalars(
                select(col(m.User.id))
                .where(*email_templates.colleague_conditions())
                .order_by(col(m.User.name))
            )
        )
        if user_id != me_id
    ]


@dataclass
class Recipient:
    label: str
    address: str | None
    state: str
    reason: str | None


def recipients(session: Session, campaign_id: int, *, limit: int = 200) -> list[Recipient]:
    """The first ``limit`` recipients in the order they get their mail (the skipped ones say why)."""
    return [
        Recipient(r.label, r.address, r.state, r.reason)
        for r in session.scalars(
            select(m.CampaignRecipient)
            .where(col(m.CampaignRecipient.campaign_id) == campaign_id)
            .order_by(col(m.CampaignRecipient.id))
            .limit(limit)
        )
    ]


@dataclass
class Preview:
    label: str
    address: str
    subject: str
    body: str
    to: str = ""  # the To line as it goes out ("Ines Kraus <ines.kraus@example.net>")


def preview(
    session: Session, campaign_id: int, *, me_id: int | None, today: date, count: int = 3
) -> list[Preview]:
    """The first ``count`` mails still to go, filled in as they will go out (nothing is queued)."""
    campaign = session.get(m.Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"no campaign {campaign_id}")
    template = session.get(m.EmailTemplate, campaign.template_id) if campaign.template_id else None
    if template is None:
        return []
    shown = []
    for recipient in session.scalars(
        select(m.CampaignRecipient)
        .where(
            col(m.CampaignRecipient.campaign_id) == campaign_id, col(m.CampaignRecipient.state) == "pending"
        )
        .order_by(col(m.CampaignRecipient.id))
        .limit(count)
    ):
        ref = RecordRef(RecordType(recipient.record_type), recipient.record_id)
        try:
            subject, body = _render(session, template, ref, me_id=me_id, today=today)
        except CrmError as exc:  # changed since the check: it will be skipped, saying this
            subject, body = "", str(exc)
        address = recipient.address or ""
        try:
            to = to_line(session, ref, address)
        except CrmError:
            to = address
        shown.append(Preview(recipient.label, address, subject, body, to))
    return shown


def left_out(session: Session, campaign_id: int) -> dict[str, int]:
    """How many leads the mass mail leaves out, by their status (converted, disqualified)."""
    by_reason = {reason: status for status, reason in LEFT_OUT.items()}
    counts = session.execute(
        select(col(m.CampaignRecipient.reason), func.count())
        .where(
            col(m.CampaignRecipient.campaign_id) == campaign_id,
            col(m.CampaignRecipient.state) == "skipped",
            col(m.CampaignRecipient.reason).in_(list(by_reason)),
        )
        .group_by(col(m.CampaignRecipient.reason))
    ).all()
    return {by_reason[reason]: count for reason, count in counts}


def skipped(session: Session, campaign_id: int) -> list[tuple[str, str | None, str]]:
    """(label, address, reason) of every skipped recipient."""
    return [
        (r.label, r.address, r.reason or "")
        for r in session.scalars(
            select(m.CampaignRecipient)
            .where(
                col(m.CampaignRecipient.campaign_id) == campaign_id,
                col(m.CampaignRecipient.state) == "skipped",
            )
            .order_by(col(m.CampaignRecipient.id))
        )
    ]


def set_state(session: Session, campaign_id: int, state: str) -> m.Campaign:
    """running (start or resume), stopped; a done campaign stays done."""
    campaign = session.get(m.Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"no campaign {campaign_id}")
    if state not in ("running", "stopped"):
        raise CrmError(f"a campaign can be running or stopped, not {state}")
    if campaign.state != "done":
        campaign.state = state
    session.flush()
    return campaign


def queue_next(
    session: Session, campaign_id: int, *, build: Builder, now: datetime, me_id: int | None, today: date
) -> m.CampaignRecipient | None:
    """Put the next pending recipient's mail in the outbox and mark them queued (one transaction: the
    caller's). None when the campaign is not running or nobody is left (then it is done)."""
    campaign = session.get(m.Campaign, campaign_id)
    if campaign is None or campaign.state != "running":
        return None
    recipient = session.scalars(
        select(m.CampaignRecipient)
        .where(
            col(m.CampaignRecipient.campaign_id) == campaign_id, col(m.CampaignRecipient.state) == "pending"
        )
        .order_by(col(m.CampaignRecipient.id))
        .limit(1)
    ).first()
    if recipient is None:
        campaign.state = "done"
        session.flush()
        return None
    template = session.get(m.EmailTemplate, campaign.template_id) if campaign.template_id else None
    if template is None:
        raise CrmError("the campaign's template was deleted: the rest cannot be written")
    ref = RecordRef(RecordType(recipient.record_type), recipient.record_id)
    try:
        subject, body = _render(session, template, ref, me_id=me_id, today=today)
        raw, message_id, envelope = build(
            campaign.from_name,
            campaign.from_address,
            to_line(session, ref, recipient.address or ""),
            subject,
            body,
        )
    except CrmError as exc:  # the record changed since the check: skip, say why
        recipient.state, recipient.reason = "skipped", str(exc)
        session.flush()
        return recipient
    item = outbox.queue(
        session,
        account_id=campaign.account_id,
        message_id=message_id,
        from_address=campaign.from_address,
        recipients=envelope,
        subject=subject,
        raw=raw,
        now=now,
        record=(ref.type.value, ref.id),
    )
    recipient.state, recipient.outbox_item_id = "queued", item.id
    session.flush()
    return recipient
