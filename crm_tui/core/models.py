"""The CRM's tables (SQLModel). Services own the rules; these only describe the data.

Conventions: every date-time column is ``UTCDateTime`` (stored UTC, returned aware); money is an integer
number of minor units (cents) beside a currency code, so sums are exact and never mix currencies; links to
"any record" use the uniform reference pair ``record_type`` + ``record_id`` (see ``types.RecordRef``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Column, ForeignKey, Index, Integer, LargeBinary, Text, UniqueConstraint, false
from sqlmodel import Field, SQLModel

from crm_tui.core.columns import UTCDateTime

# The enumerations live with the plain types and are re-exported here (m.LeadStatus reads on).
from crm_tui.core.types import ActivityStatus as ActivityStatus
from crm_tui.core.types import ActivityType as ActivityType
from crm_tui.core.types import CustomFieldType as CustomFieldType
from crm_tui.core.types import HistoryKind as HistoryKind
from crm_tui.core.types import LeadStatus as LeadStatus
from crm_tui.core.types import OrganizationKind as OrganizationKind
from crm_tui.core.types import QuoteStatus as QuoteStatus
from crm_tui.core.types import StageKind as StageKind
from crm_tui.core.types import TicketStatus as TicketStatus


def _utc(
    nullable: bool = False, index: bool = False
) -> Any:  # sqlmodel.Field is typed Any, to fit any annotation
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


def _fk(
    target: str,
    *,
    nullable: bool = True,
    ondelete: str | None = None,
    index: bool = True,
    cycle_name: str | None = None,
) -> Any:
    # A foreign key that closes a cycle between two tables is named and created after both (use_alter).
    key = ForeignKey(target, ondelete=ondelete, use_alter=cycle_name is not None, name=cycle_name)
    return Field(
        default=None,
        sa_column_args=[key],
        sa_type=Integer,
        nullable=nullable,
        index=index,
    )


# --- people and companies -------------------------------------------------------------------------


class Organization(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True)
    kind: str = Field(default=OrganizationKind.CUSTOMER.value, index=True)
    phone: str | None = None
    website: str | None = None
    street: str | None = None
    postcode: str | None = Field(default=None, index=True)
    city: str | None = None
    region: str | None = Field(default=None, index=True)
    country: str | None = None
    owner_id: int | None = _fk("user.id", ondelete="SET NULL", cycle_name="fk_organization_owner_id_user")
    search_text: str = Field(default="", sa_type=Text)
    created_at: datetime = _utc()
    updated_at: datetime = _utc()


class OrganizationDomain(SQLModel, table=True):
    __tablename__ = "organization_domain"
    __table_args__ = (UniqueConstraint("organization_id", "domain"),)
    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = _fk("organization.id", nullable=False, ondelete="CASCADE")
    domain: str = Field(index=True)


class OrganizationEmail(SQLModel, table=True):
    """A general address of a company (info@, sales@)."""

    __tablename__ = "organization_email"
    __table_args__ = (UniqueConstraint("organization_id", "address"),)
    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = _fk("organization.id", nullable=False, ondelete="CASCADE")
    address: str = Field(index=True)


class PartnerCoverage(SQLModel, table=True):
    """A region or a postcode prefix a partner organization covers."""

    __tablename__ = "partner_coverage"
    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = _fk("organization.id", nullable=False, ondelete="CASCADE")
    region: str | None = Field(default=None, index=True)
    postcode_prefix: str | None = Field(default=None, index=True)


class User(SQLModel, table=True):
    """Someone who works in the CRM: of our company (no organization) or of a partner organization."""

    id: int | None = Field(default=None, primary_key=True)
    name: str
    email: str = Field(unique=True)
    organization_id: int | None = _fk("organization.id", ondelete="RESTRICT")
    active: bool = True
    created_at: datetime = _utc()


class UserGroup(SQLModel, table=True):
    """A named set of users (Settings > Users), which automation mail can go to."""

    __tablename__ = "user_group"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    created_at: datetime = _utc()


class UserGroupMember(SQLModel, table=True):
    __tablename__ = "user_group_member"
    group_id: int = Field(sa_column_args=[ForeignKey("user_group.id", ondelete="CASCADE")], primary_key=True)
    user_id: int = Field(
        sa_column_args=[ForeignKey("user.id", ondelete="CASCADE")], primary_key=True, index=True
    )


class Contact(SQLModel, table=True):
    __table_args__ = (Index("ix_contact_sort", "last_name", "first_name", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    first_name: str = ""
    last_name: str = ""
    mail_opt_out: bool = False  # no mass mail (a mail written by hand still goes)
    job_title: str | None = None
    organization_id: int | None = _fk("organization.id", ondelete="SET NULL")
    owner_id: int | None = _fk("user.id", ondelete="SET NULL")
    street: str | None = None
    postcode: str | None = None
    city: str | None = None
    region: str | None = None
    country: str | None = None
    search_text: str = Field(default="", sa_type=Text)
    created_at: datetime = _utc()
    updated_at: datetime = _utc()

    @property
    def name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)


class ContactEmail(SQLModel, table=True):
    __tablename__ = "contact_email"
    __table_args__ = (UniqueConstraint("contact_id", "address"),)
    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = _fk("contact.id", nullable=False, ondelete="CASCADE")
    address: str = Field(index=True)
    label: str | None = None
    position: int = 0


class ContactPhone(SQLModel, table=True):
    __tablename__ = "contact_phone"
    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = _fk("contact.id", nullable=False, ondelete="CASCADE")
    number: str
    label: str | None = None
    position: int = 0


class Lead(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    title: str
    mail_opt_out: bool = False  # no mass mail
    person_name: str | None = None
    company_name: str | None = None
    phone: str | None = None
    source: str | None = None
    status: str = Field(default=LeadStatus.NEW.value, index=True)
    owner_id: int | None = _fk("user.id", ondelete="SET NULL")
    # Repeat business: the customer this lead comes from.
    organization_id: int | None = _fk("organization.id", ondelete="SET NULL")
    contact_id: int | None = _fk("contact.id", ondelete="SET NULL")
    # What the conversion produced or attached to.
    converted_contact_id: int | None = _fk("contact.id", ondelete="SET NULL")
    converted_organization_id: int | None = _fk("organization.id", ondelete="SET NULL")
    converted_opportunity_id: int | None = _fk(
        "opportunity.id", ondelete="SET NULL", cycle_name="fk_lead_converted_opportunity_id_opportunity"
    )
    converted_at: datetime | None = _utc(nullable=True)
    description: str | None = Field(default=None, sa_type=Text)
    search_text: str = Field(default="", sa_type=Text)
    created_at: datetime = _utc()
    updated_at: datetime = _utc()


class LeadEmail(SQLModel, table=True):
    __tablename__ = "lead_email"
    __table_args__ = (UniqueConstraint("lead_id", "address"),)
    id: int | None = Field(default=None, primary_key=True)
    lead_id: int = _fk("lead.id", nullable=False, ondelete="CASCADE")
    address: str = Field(index=True)
    position: int = 0


# --- pipelines and deals ---------------------------------------------------------------------------


class Pipeline(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    position: int = 0


class Stage(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("pipeline_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    pipeline_id: int = _fk("pipeline.id", nullable=False, ondelete="CASCADE")
    name: str
    position: int = 0
    kind: str = StageKind.OPEN.value
    probability: int = 0


class SubstateDefinition(SQLModel, table=True):
    """A sub-state that deals in one stage can have open or closed (e.g. "Site visit scheduled")."""

    __tablename__ = "substate_definition"
    __table_args__ = (UniqueConstraint("stage_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    stage_id: int = _fk("stage.id", nullable=False, ondelete="CASCADE")
    name: str
    position: int = 0


class Opportunity(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    title: str
    amount_cents: int = 0
    currency: str = "EUR"
    expected_close: date | None = Field(default=None, index=True)
    owner_id: int | None = _fk("user.id", ondelete="SET NULL")
    organization_id: int | None = _fk("organization.id", ondelete="SET NULL")
    pipeline_id: int = _fk("pipeline.id", nullable=False, ondelete="RESTRICT")
    stage_id: int = _fk("stage.id", nullable=False, ondelete="RESTRICT")
    stage_entered_at: datetime = _utc()
    lost_reason: str | None = None
    installer_id: int | None = _fk("organization.id", ondelete="SET NULL")
    reseller_id: int | None = _fk("organization.id", ondelete="SET NULL")
    source_lead_id: int | None = _fk("lead.id", ondelete="SET NULL")
    copied_from_id: int | None = _fk(
        "opportunity.id", ondelete="SET NULL", cycle_name="fk_opportunity_copied_from_id_opportunity"
    )
    description: str | None = Field(default=None, sa_type=Text)
    search_text: str = Field(default="", sa_type=Text)
    created_at: datetime = _utc()
    updated_at: datetime = _utc()


class OpportunityContact(SQLModel, table=True):
    __tablename__ = "opportunity_contact"
    opportunity_id: int = Field(
        sa_column_args=[ForeignKey("opportunity.id", ondelete="CASCADE")], primary_key=True
    )
    contact_id: int = Field(
        sa_column_args=[ForeignKey("contact.id", ondelete="CASCADE")], primary_key=True, index=True
    )
    is_primary: bool = False
    role: str | None = None


class OpportunityFollower(SQLModel, table=True):
    """A user following a deal (added to it): with its owner, the deal's team, whom automation mail to "the
    team" reaches."""

    __tablename__ = "opportunity_follower"
    opportunity_id: int = Field(
        sa_column_args=[ForeignKey("opportunity.id", ondelete="CASCADE")], primary_key=True
    )
    user_id: int = Field(
        sa_column_args=[ForeignKey("user.id", ondelete="CASCADE")], primary_key=True, index=True
    )
    added_at: datetime = _utc()


class OpportunitySubstate(SQLModel, table=True):
    """Whether a sub-state is open or closed for one deal."""

    __tablename__ = "opportunity_substate"
    opportunity_id: int = Field(
        sa_column_args=[ForeignKey("opportunity.id", ondelete="CASCADE")], primary_key=True
    )
    substate_id: int = Field(
        sa_column_args=[ForeignKey("substate_definition.id", ondelete="CASCADE")],
        primary_key=True,
        index=True,
    )
    is_open: bool = True
    changed_at: datetime = _utc()


class OpportunityHistory(SQLModel, table=True):
    """One stage move or sub-state change of a deal."""

    __tablename__ = "opportunity_history"
    id: int | None = Field(default=None, primary_key=True)
    opportunity_id: int = _fk("opportunity.id", nullable=False, ondelete="CASCADE")
    kind: str
    from_stage_id: int | None = _fk("stage.id", ondelete="SET NULL", index=False)
    to_stage_id: int | None = _fk("stage.id", ondelete="SET NULL", index=False)
    substate_id: int | None = _fk("substate_definition.id", ondelete="SET NULL", index=False)
    substate_open: bool | None = None
    note: str | None = None
    user_id: int | None = _fk("user.id", ondelete="SET NULL", index=False)
    changed_at: datetime = _utc(index=True)


# --- activities, quotes, tickets -------------------------------------------------------------------


class Activity(SQLModel, table=True):
    __table_args__ = (
        Index("ix_activity_owner_start", "owner_id", "start_at"),
        Index("ix_activity_opportunity_start", "opportunity_id", "start_at"),  # a deal's timeline
    )
    id: int | None = Field(default=None, primary_key=True)
    type: str = ActivityType.TASK.value
    task_type: str | None = None
    subject: str
    description: str | None = Field(default=None, sa_type=Text)
    # The person: a contact or a lead (one of the two).
    contact_id: int | None = _fk("contact.id", ondelete="SET NULL")
    lead_id: int | None = _fk("lead.id", ondelete="SET NULL")
    organization_id: int | None = _fk("organization.id", ondelete="SET NULL")
    opportunity_id: int | None = _fk("opportunity.id", ondelete="SET NULL")
    ticket_id: int | None = _fk("ticket.id", ondelete="SET NULL")
    quote_id: int | None = _fk("quote.id", ondelete="SET NULL")
    start_at: datetime = _utc(index=True)
    end_at: datetime | None = _utc(nullable=True)
    owner_id: int | None = _fk("user.id", ondelete="SET NULL", index=False)
    status: str = Field(default=ActivityStatus.PLANNED.value, index=True)
    reminder_at: datetime | None = _utc(nullable=True, index=True)
    completed_at: datetime | None = _utc(nullable=True)
    created_at: datetime = _utc()
    updated_at: datetime = _utc()
    # A follow-up of this mail (``A`` in the inbox): done by itself once the thread is answered.
    follow_up_of: int | None = Field(default=None, index=True)
    # The outbox item this email activity records (a bounce of one of its recipients is noted on it).
    outbox_item_id: int | None = Field(default=None, index=True)


class ActivityAttendee(SQLModel, table=True):
    """A further attendee of an activity: a contact, a lead, a user or a bare address."""

    __tablename__ = "activity_attendee"
    id: int | None = Field(default=None, primary_key=True)
    activity_id: int = _fk("activity.id", nullable=False, ondelete="CASCADE")
    contact_id: int | None = _fk("contact.id", ondelete="CASCADE")
    lead_id: int | None = _fk("lead.id", ondelete="CASCADE")
    user_id: int | None = _fk("user.id", ondelete="CASCADE")
    email: str | None = None


class Quote(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(unique=True)
    opportunity_id: int = _fk("opportunity.id", nullable=False, ondelete="CASCADE")
    status: str = QuoteStatus.DRAFT.value
    currency: str = "EUR"
    total_cents: int = 0
    valid_until: date | None = None
    created_at: datetime = _utc()
    updated_at: datetime = _utc()


class QuoteItem(SQLModel, table=True):
    __tablename__ = "quote_item"
    id: int | None = Field(default=None, primary_key=True)
    quote_id: int = _fk("quote.id", nullable=False, ondelete="CASCADE")
    position: int = 0
    description: str
    # Quantities in thousandths keep 2.5 hours exact without floating point.
    quantity_milli: int = 1000
    unit_price_cents: int = 0


class Ticket(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    subject: str
    description: str | None = Field(default=None, sa_type=Text)
    status: str = Field(default=TicketStatus.OPEN.value, index=True)
    contact_id: int | None = _fk("contact.id", ondelete="SET NULL")
    organization_id: int | None = _fk("organization.id", ondelete="SET NULL")
    owner_id: int | None = _fk("user.id", ondelete="SET NULL")
    created_at: datetime = _utc()
    updated_at: datetime = _utc()


# --- things attached to any record -------------------------------------------------------------------


class Comment(SQLModel, table=True):
    __table_args__ = (Index("ix_comment_record", "record_type", "record_id"),)
    id: int | None = Field(default=None, primary_key=True)
    record_type: str
    record_id: int
    author_id: int | None = _fk("user.id", ondelete="SET NULL", index=False)
    body: str = Field(sa_type=Text)
    created_at: datetime = _utc()


class Document(SQLModel, table=True):
    """A file stored under the data dir (content-addressed), attached to a record."""

    __table_args__ = (Index("ix_document_record", "record_type", "record_id"),)
    id: int | None = Field(default=None, primary_key=True)
    record_type: str
    record_id: int
    filename: str
    stored_name: str
    size: int
    sha256: str
    content_type: str | None = None
    added_by_id: int | None = _fk("user.id", ondelete="SET NULL", index=False)
    created_at: datetime = _utc()


class DocumentContent(SQLModel, table=True):
    """The bytes of a document in parts of 1 MiB, keyed by their SHA-256 (the ``stored_name`` of its rows):
    used where the database is shared, so every instance reads the same documents."""

    __tablename__ = "document_content"
    sha256: str = Field(primary_key=True, max_length=64)
    part: int = Field(primary_key=True)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class CustomFieldDefinition(SQLModel, table=True):
    __tablename__ = "custom_field_definition"
    __table_args__ = (UniqueConstraint("entity_type", "key"),)
    id: int | None = Field(default=None, primary_key=True)
    entity_type: str
    key: str
    label: str
    field_type: str = CustomFieldType.TEXT.value
    # For choice fields: the allowed values, one per line.
    choices: str | None = Field(default=None, sa_type=Text)
    required: bool = False
    position: int = 0


class CustomFieldValue(SQLModel, table=True):
    __tablename__ = "custom_field_value"
    __table_args__ = (UniqueConstraint("definition_id", "record_id"),)
    id: int | None = Field(default=None, primary_key=True)
    definition_id: int = _fk("custom_field_definition.id", nullable=False, ondelete="CASCADE", index=False)
    record_id: int = Field(index=True)
    # Canonical text form: numbers as decimal strings, dates YYYY-MM-DD, booleans "true"/"false".
    value: str = Field(sa_type=Text)


# --- mail ----------------------------------------------------------------------------------------


class MailAccount(SQLModel, table=True):
    """An IMAP account of a user. The password is never stored here: ``password_source`` says where it is
    (``keyring``: the OS keyring; ``env``: the environment variable named in ``password_ref``; ``command``:
    the command line in ``password_ref``, whose output is the password)."""

    __tablename__ = "mail_account"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    user_id: int = _fk("user.id", nullable=False, ondelete="CASCADE")
    preset: str = "other"
    imap_host: str
    imap_port: int
    imap_security: str = "ssl"  # ssl | starttls | none
    ca_cert: str | None = None
    username: str
    password_source: str = "keyring"  # keyring | env | command
    password_ref: str | None = None
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_security: str | None = None
    addresses: str = Field(default="", sa_type=Text)  # my own addresses on it, one per line
    refresh_minutes: int = 5
    sync_since: date | None = None  # None: all mail
    signature: str = Field(default="", sa_type=Text)  # put under mail written from this account
    # Where a sent mail's copy goes: "server" (the folder it marks \Sent, else one named Sent, else a "Sent"
    # made for it), "folder" (sent_copy_folder) or "none" (no copy saved).
    sent_copy: str = "server"
    sent_copy_folder: str | None = None
    created_at: datetime = _utc()


class EmailTemplate(SQLModel, table=True):
    """A mail template: Jinja2 text for the subject and body, filled from the records a mail is about."""

    __tablename__ = "email_template"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    subject: str = ""
    body: str = Field(default="", sa_type=Text)
    description: str | None = None
    created_at: datetime = _utc()
    updated_at: datetime = _utc()


class OutboxItem(SQLModel, table=True):
    """A message on its way out. States: queued (waiting, also offline), sending (marked before the SMTP DATA:
    found so after a crash it is checked against the Sent folder), sent, failed (with the server's reason),
    uncertain (a crash mid-send and not found in Sent: the user decides). ``raw`` is the message exactly as
    it goes out; ``reply_to_id`` is the stored mail it answers."""

    __tablename__ = "outbox_item"
    __table_args__ = {"sqlite_autoincrement": True}  # an id is never given again (after a drop, a take-back)
    id: int | None = Field(default=None, primary_key=True)
    account_id: int = _fk("mail_account.id", nullable=False, ondelete="CASCADE")
    message_id_header: str = Field(index=True)
    from_address: str
    recipients: str = Field(sa_type=Text)  # envelope recipients, one per line (To, Cc and Bcc)
    subject: str = ""
    raw: bytes = Field(sa_type=LargeBinary)
    state: str = Field(default="queued", index=True)
    attempts: int = 0
    next_attempt_at: datetime | None = _utc(nullable=True)
    last_error: str | None = None
    reply_to_id: int | None = _fk("mail_message.id", ondelete="SET NULL")
    record_type: str | None = None  # the record it was written from (an email activity is made on it)
    record_id: int | None = None
    created_at: datetime = _utc()
    sent_at: datetime | None = _utc(nullable=True)
    claimed_by: str | None = None  # host:pid of the process delivering it (while ``sending``)
    # when it was claimed: a claim from another host holds for a lease after it
    claimed_at: datetime | None = _utc(nullable=True)


class OutboxRecipient(SQLModel, table=True):
    """What the server said to one recipient of an outbox item: ``accepted`` (it has the mail) or ``refused``
    (``reason``: the server's reply; a 4xx one is tried again by itself), or ``pending`` (refused, and the user
    said to send to it again). A recipient without a row has not been tried yet."""

    __tablename__ = "outbox_recipient"
    __table_args__ = (UniqueConstraint("item_id", "address"),)
    id: int | None = Field(default=None, primary_key=True)
    item_id: int = _fk("outbox_item.id", nullable=False, ondelete="CASCADE")
    address: str
    state: str
    reason: str | None = None
    at: datetime = _utc()
    # After the server took it: a delivery report (or the mail returned) said it never arrived, and why;
    # a mail from this recipient answered it (In-Reply-To/References). Each set once, by the sync.
    bounced_at: datetime | None = _utc(nullable=True)
    bounce_reason: str | None = None
    replied_at: datetime | None = _utc(nullable=True)


class MailDraft(SQLModel, table=True):
    """A mail being written, saved as it is written (and copied to the account's Drafts folder)."""

    __tablename__ = "mail_draft"
    id: int | None = Field(default=None, primary_key=True)
    account_id: int = _fk("mail_account.id", nullable=False, ondelete="CASCADE")
    from_address: str
    to: str = Field(default="", sa_type=Text)
    cc: str = Field(default="", sa_type=Text)
    bcc: str = Field(default="", sa_type=Text)
    subject: str = ""
    body: str = Field(default="", sa_type=Text)
    in_reply_to: str | None = None
    references: str | None = Field(default=None, sa_type=Text)
    raw: bytes = Field(default=b"", sa_column=Column(LargeBinary, nullable=False))  # with its attachments
    reply_to_id: int | None = _fk("mail_message.id", ondelete="SET NULL")
    record_type: str | None = None
    record_id: int | None = None
    server_message_id: str | None = None  # the Message-ID of the copy in the Drafts folder
    updated_at: datetime = _utc()


class Campaign(SQLModel, table=True):
    """A mass mail: one template to many contacts or leads, one message each, paced; stoppable."""

    id: int | None = Field(default=None, primary_key=True)
    name: str
    template_id: int | None = _fk("email_template.id", ondelete="SET NULL")
    account_id: int = _fk("mail_account.id", nullable=False, ondelete="CASCADE")
    from_name: str = ""
    from_address: str
    per_minute: int = 30
    state: str = "ready"  # ready | running | stopped | done
    created_at: datetime = _utc()


class CampaignRecipient(SQLModel, table=True):
    """One recipient of a mass mail. ``state``: pending, queued (its mail is in the outbox: never again), or
    skipped with the reason (opted out, no address, a field the template needs)."""

    __tablename__ = "campaign_recipient"
    __table_args__ = (UniqueConstraint("campaign_id", "record_type", "record_id"),)
    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = _fk("campaign.id", nullable=False, ondelete="CASCADE")
    record_type: str
    record_id: int
    label: str = ""
    address: str | None = None
    state: str = "pending"
    reason: str | None = None
    outbox_item_id: int | None = _fk("outbox_item.id", ondelete="SET NULL")


class MailFolder(SQLModel, table=True):
    __tablename__ = "mail_folder"
    __table_args__ = (UniqueConstraint("account_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    account_id: int = _fk("mail_account.id", nullable=False, ondelete="CASCADE", index=False)
    name: str
    role: str | None = None  # inbox | sent | drafts | trash | archive | junk
    uidvalidity: int | None = None
    uidnext: int | None = None
    highestmodseq: int | None = None
    synced_at: datetime | None = _utc(nullable=True)


class MailMessage(SQLModel, table=True):
    """One message, whatever number of copies the servers hold (see ``MailLocation``).

    Identity: the Message-ID header plus a hash of the body bytes (``body_hash``), so copies that differ only in
    their Received headers are one message and two messages sharing a Message-ID stay two. A message whose body
    has not arrived yet is provisional (``has_body`` false, no ``MailRaw``): it merges into an existing message
    when its body matches one.
    """

    __tablename__ = "mail_message"
    # The identity index also serves lookups by Message-ID alone (threads): no second index on it.
    __table_args__ = (Index("ix_mail_message_identity", "message_id_header", "body_hash"),)
    id: int | None = Field(default=None, primary_key=True)
    message_id_header: str | None = None
    subject: str = ""
    subject_key: str = Field(default="", index=True)  # the subject without Re:/Fwd: prefixes, lower case
    from_name: str = ""
    from_address: str = Field(default="", index=True)
    to_addresses: str = Field(default="", sa_type=Text)
    cc_addresses: str = Field(default="", sa_type=Text)
    sent_at: datetime | None = _utc(nullable=True, index=True)
    in_reply_to: str | None = None
    references: str | None = Field(default=None, sa_type=Text)
    body_text: str = Field(default="", sa_type=Text)
    has_attachments: bool = False
    attachments: str = Field(default="", sa_type=Text)  # "name\ttype\tsize" per line
    parse_problems: str | None = Field(default=None, sa_type=Text)
    has_body: bool = True
    body_hash: str | None = None
    size: int = 0
    is_outgoing: bool = False
    is_read: bool = False
    is_flagged: bool = False
    received_at: datetime = _utc()
    # The conversation (``core.mail_threads``: from Message-ID, In-Reply-To and References).
    thread_id: int | None = Field(default=None, index=True)
    # A bounce, delivery report or automatic reply (Auto-Submitted...): never awaits a reply.
    is_automatic: bool = Field(default=False, sa_column_kwargs={"server_default": false()})


class MailThreadKey(SQLModel, table=True):
    """One id (its own Message-ID, or one it references) that joins a message to its thread."""

    __tablename__ = "mail_thread_key"
    # The key first: the primary key is the lookup index (one b-tree to write per row, not two).
    key: str = Field(primary_key=True)
    # Indexed too: deleting a message (a merge, an expunge) finds its keys without a scan.
    message_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("mail_message.id", ondelete="CASCADE"), primary_key=True, index=True
        )
    )


class MailRaw(SQLModel, table=True):
    """A message's bytes exactly as the server sent them (its first stored copy's): everything in its
    ``MailMessage`` row is derived from them.

    A table of their own, written once when the body arrives: the message row stays small (a list or a lookup
    does not step over a blob), and the sync's helper processes write the bytes here themselves while the
    sync's own process stores the parsed rest (``mail.store.raw_writer``)."""

    __tablename__ = "mail_raw"
    message_id: int = Field(
        sa_column=Column(Integer, ForeignKey("mail_message.id", ondelete="CASCADE"), primary_key=True)
    )
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class MailLocation(SQLModel, table=True):
    """One copy of a message on a server: (folder, UIDVALIDITY, UID)."""

    __tablename__ = "mail_location"
    __table_args__ = (UniqueConstraint("folder_id", "uidvalidity", "uid"),)
    id: int | None = Field(default=None, primary_key=True)
    message_id: int = _fk("mail_message.id", nullable=False, ondelete="CASCADE")
    folder_id: int = _fk("mail_folder.id", nullable=False, ondelete="CASCADE", index=False)
    uidvalidity: int
    uid: int
    flags: str = ""  # IMAP flags, space separated
    modseq: int | None = None
    pending_move: str | None = None  # a queued move/archive/delete: where this copy is going (folder name)


class MailLocationRaw(SQLModel, table=True):
    """A copy's own bytes where they differ from its message's (``MailRaw``): copies merged as one message
    (same Message-ID and body) may differ in their headers (Received lines, a folder's own). A copy without a
    row here has the message's bytes. ``raw`` NULL: not known (a copy merged before copies kept their bytes);
    fetched from the server by the copy's UID when asked for."""

    __tablename__ = "mail_location_raw"
    location_id: int = Field(
        sa_column=Column(Integer, ForeignKey("mail_location.id", ondelete="CASCADE"), primary_key=True)
    )
    raw: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))


class MailSyncLock(SQLModel, table=True):
    """Who is syncing an account now: one row per running sync, a lease renewed as it works (a database lock,
    so it holds across processes and, later, across machines on PostgreSQL)."""

    __tablename__ = "mail_sync_lock"
    account_id: int = Field(
        default=None, sa_column_args=[ForeignKey("mail_account.id", ondelete="CASCADE")], primary_key=True
    )
    holder: str  # host:pid
    renewed_at: datetime = _utc()


class MailChange(SQLModel, table=True):
    """A change made offline (read, flag, move, delete), applied locally at once and replayed on the server
    by the next successful sync."""

    __tablename__ = "mail_change"
    id: int | None = Field(default=None, primary_key=True)
    message_id: int = _fk("mail_message.id", nullable=False, ondelete="CASCADE")
    action: str  # read | unread | flag | unflag | move | archive | delete
    argument: str | None = None  # the target folder of a move
    created_at: datetime = _utc()
    done_at: datetime | None = _utc(nullable=True)
    error: str | None = None


class MailLink(SQLModel, table=True):
    """A message filed on (linked to) a record, with how the link was made (``reason``: address, domain,
    thread, subject or manual)."""

    __tablename__ = "mail_link"
    __table_args__ = (
        UniqueConstraint("message_id", "record_type", "record_id"),
        Index("ix_mail_link_record", "record_type", "record_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    message_id: int = _fk("mail_message.id", nullable=False, ondelete="CASCADE", index=False)
    record_type: str
    record_id: int
    reason: str = "manual"
    created_at: datetime = _utc()


class MailUnlink(SQLModel, table=True):
    """A link the user removed: automatic linking never makes it again."""

    __tablename__ = "mail_unlink"
    __table_args__ = (UniqueConstraint("message_id", "record_type", "record_id"),)
    id: int | None = Field(default=None, primary_key=True)
    message_id: int = _fk("mail_message.id", nullable=False, ondelete="CASCADE", index=False)
    record_type: str
    record_id: int
    created_at: datetime = _utc()


# --- automation ------------------------------------------------------------------------------------


class AutomationRule(SQLModel, table=True):
    """What to do, and when, for records of one kind in one place (a stage, a sub-state, a status, or any).

    ``scope``: stage | substate | status | record. ``trigger``: enter | exit | date | create | field_change |
    activity_done | event (a record event of the deal, ``record_event``; for a sub-state enter is "on open", exit
    "on close"). The due time is the trigger's moment
    plus ``delay_value`` ``delay_unit`` (minutes | hours | days | months; negative before a date). ``conditions``
    and ``params`` are JSON. ``late_policy``: fire (late) or skip when more than ``late_limit_hours`` overdue.
    """

    __tablename__ = "automation_rule"
    id: int | None = Field(default=None, primary_key=True)
    name: str
    enabled: bool = True
    entity: str = "opportunity"  # opportunity | lead | ticket
    scope: str = "stage"
    pipeline_id: int | None = _fk("pipeline.id", ondelete="CASCADE")
    stage_id: int | None = _fk("stage.id", ondelete="CASCADE")
    substate_id: int | None = _fk("substate_definition.id", ondelete="CASCADE")
    status: str | None = None
    trigger: str = "enter"
    delay_value: int = 0
    delay_unit: str = "days"
    date_field: str | None = None
    at_time: str | None = (
        None  # HH:MM local (``zone``) for day-based delays and dates; None: the exact moment
    )
    zone: str = "UTC"
    watch_field: str | None = None
    record_event: str | None = None  # trigger "event": quote_accepted, document_signed... (automation.events)
    conditions: str = Field(default="[]", sa_type=Text)
    action: str
    params: str = Field(default="{}", sa_type=Text)
    late_policy: str = "fire"
    late_limit_hours: int = 72
    survives_exit: bool = False
    cursor: int = 0  # round-robin position
    created_at: datetime = _utc()
    updated_at: datetime = _utc()


class AutomationEntry(SQLModel, table=True):
    """One stay of a record in a stage, sub-state or status: from entering to leaving. Scheduled actions belong
    to one entry, so re-entering schedules anew and leaving cancels what was waiting."""

    __tablename__ = "automation_entry"
    __table_args__ = (Index("ix_automation_entry_record", "record_type", "record_id", "scope", "left_at"),)
    id: int | None = Field(default=None, primary_key=True)
    record_type: str
    record_id: int
    scope: str  # stage | substate | status
    key: str  # the stage id, sub-state id or status
    entered_at: datetime = _utc()
    left_at: datetime | None = _utc(nullable=True)


class AutomationJob(SQLModel, table=True):
    """A scheduled action: one rule for one record, due at ``due_at`` (UTC). ``state``: pending, done, failed,
    skipped (too late by the rule's policy, or its conditions no longer held) or cancelled. ``key`` makes
    scheduling idempotent: one job per rule and entry (or event)."""

    __tablename__ = "automation_job"
    __table_args__ = (
        UniqueConstraint("rule_id", "key"),
        Index("ix_automation_job_due", "state", "due_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    rule_id: int = _fk("automation_rule.id", nullable=False, ondelete="CASCADE")
    entry_id: int | None = _fk("automation_entry.id", ondelete="SET NULL")
    key: str
    record_type: str
    record_id: int
    due_at: datetime = _utc()
    state: str = "pending"
    depth: int = 1
    event: str = ""  # what scheduled it, in words
    created_ref: str | None = None  # what firing made ("activity:12")
    result: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = _utc()
    fired_at: datetime | None = _utc(nullable=True)


class AutomationLog(SQLModel, table=True):
    """Each firing (or skip, cancellation, stopped chain): what, on what, when, and how it went."""

    __tablename__ = "automation_log"
    # A record's log, newest first (the deal screen's timeline).
    __table_args__ = (Index("ix_automation_log_record", "record_type", "record_id", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    job_id: int | None = _fk("automation_job.id", ondelete="SET NULL")
    rule_id: int | None = _fk("automation_rule.id", ondelete="SET NULL")
    rule_name: str
    action: str
    record_type: str
    record_id: int
    due_at: datetime | None = _utc(nullable=True)
    at: datetime = _utc(index=True)
    outcome: str  # done | failed | skipped | cancelled | stopped
    late_seconds: int = 0
    message: str = Field(default="", sa_type=Text)


class AppMeta(SQLModel, table=True):
    """Key/value facts about this database (how the demo was made, and the like)."""

    __tablename__ = "app_meta"
    key: str = Field(primary_key=True)
    value: str = Field(sa_type=Text)
