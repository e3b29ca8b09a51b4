"""Mail templates: Jinja2 in a sandbox, filled from the records a mail is about.

Merge fields: ``contact``, ``organization``, ``opportunity`` (also ``deal``), ``lead``, ``quote``, ``ticket``,
``user`` (a colleague the mail goes to: a user of our company, not a partner's), ``me`` (the sending user) and ``today``. A field the records do not have, or have empty, is an error naming
it ("contact.phone is empty for Lisa Lang"), never a blank in a mail to a customer. The defaults ship in
``assets/templates/email`` and are added once (``ensure_defaults``); the user edits, adds and deletes them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import BindParameter, bindparam, func, select
from sqlmodel import Session, col

from crm_tui.core import models as m
from crm_tui.core.db import execute_core
from crm_tui.core.errors import CrmError, FieldErrors, NotFound, ValidationError
from crm_tui.core.field_checks import check_text
from crm_tui.core.free_mail import free_domains
from crm_tui.core.services import mail_actions, mail_linking, mail_store, records
from crm_tui.core.services.rows import id_of, stored_ids
from crm_tui.core.types import RecordRef, RecordType


class TemplateFieldError(CrmError):
    """A merge field the records cannot fill."""


class TemplateLimitError(TemplateFieldError):
    """A template that goes past the sandbox's limits (too long to fill, too much text, a range too large) or
    uses what mail templates cannot ({% include %}). ``too_slow``: it ran out of time."""

    def __init__(self, message: str, *, too_slow: bool = False) -> None:
        super().__init__(message)
        self.too_slow = too_slow


class UnknownField(TemplateFieldError):
    """The template names a field no record has (``contact.nonsense``, ``customer.name``)."""


class TemplateNotAllowed(TemplateFieldError):
    """The template reaches for what the sandbox refuses (``''.__class__``)."""


class MissingRecord(TemplateFieldError):
    """The template uses a kind of record the mail is not about (a deal for a reply to a contact)."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def colleague_conditions() -> tuple[Any, ...]:
    """A colleague (``user.*`` in a template, the team of a mass mail): an active user of our company, one
    without an organization (a partner organization's users work in the CRM too, but are not the team)."""
    return (col(m.User.active).is_(True), col(m.User.organization_id).is_(None))


# What a template needs, as the template picker says it ("needs a deal").
NEEDS = {
    "contact": "a contact", "organization": "an organization", "opportunity": "a deal", "deal": "a deal",
    "lead": "a lead", "quote": "a quote", "ticket": "a ticket", "user": "a colleague as recipient",
    "me": "you as a user (Settings > Users: M)",
}  # fmt: skip


class Fields:
    """One record's merge fields. Reading a field it lacks (or has empty) raises, naming it."""

    def __init__(self, name: str, label: str, values: dict[str, Any], *, allow_empty: bool = False) -> None:
        self._name, self._label, self._values = name, label, values
        self._allow_empty = allow_empty  # reports: an empty field is "" (a mail would rather not go out)

    def __getattr__(self, field: str) -> Any:
        if field.startswith("_"):
            raise AttributeError(field)
        if field not in self._values:
            known = ", ".join(sorted(self._values))
            raise UnknownField(f"the template uses {self._name}.{field}, which is not a field ({known})")
        value = self._values[field]
        if (value is None or value == "") and self._allow_empty:
            return ""
        if value is None or value == "":
            raise TemplateFieldError(
                f"the template uses {self._name}.{field}, which is empty for {self._label}"
            )
        return value

    def __str__(self) -> str:
        return self._label


class _Blank:
    """A record a report is not about: every field reads as "" and the record itself is false."""

    def __getattr__(self, field: str) -> str:
        if field.startswith("_"):
            raise AttributeError(field)
        return ""

    def __str__(self) -> str:
        return ""

    def __bool__(self) -> bool:
        return False


def allowing_empty(context: dict[str, Any]) -> dict[str, Any]:
    """The context with empty fields, and records it lacks, read as "" (for reports: a blank cell is fine)."""
    result: dict[str, Any] = {}
    for key, value in context.items():
        if isinstance(value, _Deferred):
            value = value._get()
        if isinstance(value, Fields):
            result[key] = Fields(value._name, value._label, value._values, allow_empty=True)
        elif isinstance(value, Missing):
            result[key] = _Blank()
        else:
            result[key] = value
    return result


class Missing:
    """A record the mail is not about: using any field of it names the record."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, field: str) -> Any:
        if field.startswith("_"):
            raise AttributeError(field)
        raise MissingRecord(
            f"the template uses {self._name}.{field}, but this mail has no {self._name}", self._name
        )

    def __str__(self) -> str:
        raise MissingRecord(f"the template uses {self._name}, but this mail has no {self._name}", self._name)


def _money(cents: int, currency: str) -> str:
    return f"{cents / 100:,.2f} {currency}"


class _Deferred:
    """A record's merge fields, looked up the first time the template touches them (a rule or a mass mail
    fills thousands of mails whose templates name two or three fields: the rest is never queried)."""

    def __init__(self, resolve: Callable[[], Any]) -> None:
        self._resolve, self._target = resolve, None

    def _get(self) -> Any:
        if self._target is None:
            self._target = self._resolve()
        return self._target

    def __getattr__(self, field: str) -> Any:
        if field.startswith("_"):
            raise AttributeError(field)
        return getattr(self._get(), field)

    def __str__(self) -> str:
        return str(self._get())

    def __bool__(self) -> bool:
        return bool(self._get())


def _returning(value: Any) -> Callable[[], Any]:
    """A loader of what is already loaded."""
    return lambda: value


def merge_context(
    session: Session, refs: list[RecordRef], *, me_id: int | None, today: date
) -> dict[str, Any]:
    """The merge fields for a mail about these records; related ones are filled in (a deal's primary
    contact and organization, a contact's organization, a quote's deal). The first record that supplies a
    kind wins, a record of the list before one that comes along with another (the contact a reply goes to,
    not the primary contact of the deal it is about); nothing is queried until a template reads it."""
    offers: dict[str, list[Callable[[], Any]]] = {}

    def once(load: Callable[[], Any]) -> Callable[[], Any]:
        done: list[Any] = []

        def run() -> Any:
            if not done:
                done.append(load())
            return done[0]

        return run

    def offer(kind: str, load: Callable[[], Any]) -> None:
        load = once(load)
        offers.setdefault(kind, []).append(load)
        offer_related(kind, load)

    def offer_related(kind: str, load: Callable[[], Any]) -> None:
        related = _RELATED.get(kind)
        if related is not None:
            for other, via in related(session, load):
                offer(other, via)

    direct: list[tuple[str, Callable[[], Any]]] = []
    for ref in refs:
        try:
            row = records.get_record(session, ref)
        except NotFound:
            continue
        direct.append((ref.type.value, _returning(row)))
        offers.setdefault(ref.type.value, []).append(direct[-1][1])
    for kind, load in direct:
        offer_related(kind, load)

    def resolver(kind: str) -> Callable[[], Any]:
        def resolve() -> Any:
            for load in offers.get(kind, []):
                row = load()
                if row is not None:
                    return _fields(session, kind, row)
            return Missing(kind)

        return resolve

    context: dict[str, Any] = {
        name: _Deferred(resolver(name)) if name in offers else Missing(name)
        for name in ("contact", "organization", "opportunity", "lead", "quote", "ticket", "user")
    }
    context["deal"] = context["opportunity"]
    me = session.get(m.User, me_id) if me_id else None
    context["me"] = Fields("me", me.name, {"name": me.name, "email": me.email}) if me else Missing("me")
    context["today"] = today.strftime("%d.%m.%Y")
    return context


PRIMARY_CONTACTS = "primary_contacts"  # session.info: deal id -> its primary contact (opportunities forgets)


def primary_contact(session: Session, deal: Any) -> Any:
    """The deal's primary contact (else its first), looked up once per session."""
    if deal is None:
        return None
    known = session.info.setdefault(PRIMARY_CONTACTS, {})
    if deal.id not in known:
        known[deal.id] = session.scalars(_primary_contact_query(), {"deal_id": deal.id}).first()
    return known[deal.id]


@functools.lru_cache(maxsize=1)
def _primary_contact_query() -> Any:
    return (
        select(m.Contact)
        .join(m.OpportunityContact, col(m.OpportunityContact.contact_id) == col(m.Contact.id))
        .where(col(m.OpportunityContact.opportunity_id) == bindparam("deal_id"))
        .order_by(col(m.OpportunityContact.is_primary).desc(), col(m.OpportunityContact.contact_id))
        .limit(1)
    )


def _get(session: Session, model: Any, record_id: int | None) -> Any:
    return session.get(model, record_id) if record_id else None


def _related_of_deal(session: Session, load: Callable[[], Any]) -> list[tuple[str, Callable[[], Any]]]:
    return [
        ("contact", lambda: primary_contact(session, load())),
        ("organization", lambda: _get(session, m.Organization, getattr(load(), "organization_id", None))),
    ]


_RELATED: dict[str, Callable[[Session, Callable[[], Any]], list[tuple[str, Callable[[], Any]]]]] = {
    "contact": lambda session, load: [
        ("organization", lambda: _get(session, m.Organization, getattr(load(), "organization_id", None)))
    ],
    "opportunity": _related_of_deal,
    "quote": lambda session, load: [
        ("opportunity", lambda: _get(session, m.Opportunity, getattr(load(), "opportunity_id", None)))
    ],
    "ticket": lambda session, load: [
        ("contact", lambda: _get(session, m.Contact, getattr(load(), "contact_id", None))),
        ("organization", lambda: _get(session, m.Organization, getattr(load(), "organization_id", None))),
    ],
}


@functools.lru_cache(maxsize=1)
def _address_and_phone_query() -> Any:
    contact: BindParameter[int] = bindparam("contact_id")
    address = (
        select(col(m.ContactEmail.address))
        .where(col(m.ContactEmail.contact_id) == contact)
        .order_by(col(m.ContactEmail.position), col(m.ContactEmail.id))
        .limit(1)
        .scalar_subquery()
    )
    phone = (
        select(col(m.ContactPhone.number))
        .where(col(m.ContactPhone.contact_id) == contact)
        .order_by(col(m.ContactPhone.position), col(m.ContactPhone.id))
        .limit(1)
        .scalar_subquery()
    )
    return select(address, phone)


def first_address_and_phone(session: Session, contact_id: int) -> tuple[str | None, str | None]:
    """A contact's first e-mail address and phone number, in one (prepared) query."""
    known: dict[int, tuple[str | None, str | None]] = session.info.setdefault("contact_address_phone", {})
    if contact_id not in known:
        found = execute_core(session, _address_and_phone_query(), {"contact_id": contact_id}).first()
        known[contact_id] = (found[0], found[1]) if found else (None, None)
    return known[contact_id]


def _fields(session: Session, kind: str, row: Any) -> Fields:
    if kind == "contact":
        address, phone = first_address_and_phone(session, row.id)
        values = {
            "first_name": row.first_name, "last_name": row.last_name, "name": row.name, "email": address,
            "phone": phone, "job_title": row.job_title, "city": getattr(row, "city", None),
        }  # fmt: skip
        return Fields(kind, row.name, values)
    if kind == "organization":
        address = session.scalars(
            select(col(m.OrganizationEmail.address)).where(col(m.OrganizationEmail.organization_id) == row.id)
        ).first()
        values = {
            "name": row.name, "email": address, "phone": row.phone, "website": row.website,
            "city": row.city, "street": row.street, "postcode": row.postcode,
        }  # fmt: skip
        return Fields(kind, row.name, values)
    if kind == "opportunity":
        stage = session.get(m.Stage, row.stage_id)
        values = {
            "title": row.title, "amount": _money(row.amount_cents, row.currency),
            "stage": stage.name if stage else None,
            "expected_close": row.expected_close.strftime("%d.%m.%Y") if row.expected_close else None,
        }  # fmt: skip
        return Fields(kind, row.title, values)
    if kind == "lead":
        address = session.scalars(
            select(col(m.LeadEmail.address))
            .where(col(m.LeadEmail.lead_id) == row.id)
            .order_by(col(m.LeadEmail.position))
        ).first()
        values = {
            "title": row.title, "person_name": row.person_name, "company_name": row.company_name,
            "email": address, "phone": row.phone,
        }  # fmt: skip
        return Fields(kind, row.title, values)
    if kind == "quote":
        total = getattr(row, "total_cents", None)
        values = {
            "number": row.number,
            "total": _money(total, getattr(row, "currency", "EUR")) if total is not None else None,
            "valid_until": row.valid_until.strftime("%d.%m.%Y")
            if getattr(row, "valid_until", None)
            else None,
        }
        return Fields(kind, row.number, values)
    if kind == "user":
        first, _, last = row.name.partition(" ")
        values = {"name": row.name, "first_name": first, "last_name": last, "email": row.email}
        return Fields(kind, row.name, values)
    return Fields(kind, row.subject, {"subject": row.subject})  # ticket


@functools.lru_cache(maxsize=1)
def _environment() -> Any:
    # Jinja2 (and the sandbox built on it) loads slowly: only when a template is checked or filled
    from jinja2 import StrictUndefined

    from crm_tui.core.template_sandbox import LimitedEnvironment

    return LimitedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


@functools.lru_cache(maxsize=256)
def _compiled(source: str) -> Any:
    """A template compiled once (a rule or a mass mail fills the same text thousands of times)."""
    return _environment().from_string(source)


def check_syntax(subject: str, body: str) -> None:
    """Each text parses, and uses nothing the sandbox would surely refuse ({% include %}, a range of a
    million numbers, ``'a' * 10**9``, nested loops of 10**10 steps); what it cannot see, the limits catch
    when the template is filled."""
    # Jinja2 (and the sandbox built on it) loads slowly: only when a template is checked or filled
    from jinja2 import TemplateSyntaxError

    from crm_tui.core.template_sandbox import static_problems

    errors = FieldErrors()
    for field, text in (("subject", subject), ("body", body)):
        try:
            problems = static_problems(_environment().parse(text))
        except TemplateSyntaxError as exc:
            errors.add(field, f"line {exc.lineno}: {exc.message}")
            continue
        except RecursionError:
            errors.add(field, "nested too deeply (brackets or blocks inside each other)")
            continue
        if problems:
            errors.add(field, "; ".join(problems))
    errors.raise_if_any()


# Placeholder records of every kind (the fields ``_fields`` gives a real one), for the trial fill on save.
SAMPLE_FIELDS: dict[str, tuple[str, dict[str, str]]] = {
    "contact": ("Lisa Lang", {
        "first_name": "Lisa", "last_name": "Lang", "name": "Lisa Lang", "email": "lisa.lang@example.com",
        "phone": "+49 30 1234567", "job_title": "Einkauf", "city": "Berlin",
    }),
    "organization": ("Nordwind GmbH", {
        "name": "Nordwind GmbH", "email": "info@nordwind.example", "phone": "+49 30 7654321",
        "website": "https://nordwind.example", "city": "Berlin", "street": "Hauptstraße 1", "postcode": "10115",
    }),
    "opportunity": ("Solardach", {
        "title": "Solardach", "amount": "12,500.00 EUR", "stage": "Angebot", "expected_close": "31.12.2026",
    }),
    "lead": ("Wärmepumpe", {
        "title": "Wärmepumpe", "person_name": "Jan Ost", "company_name": "Ost KG", "email": "jan@ost.example",
        "phone": "+49 40 123456",
    }),
    "quote": ("Q-2026-001", {"number": "Q-2026-001", "total": "12,500.00 EUR", "valid_until": "31.12.2026"}),
    "ticket": ("Wechselrichter meldet Fehler", {"subject": "Wechselrichter meldet Fehler"}),
    "user": ("Paul Weber", {
        "name": "Paul Weber", "first_name": "Paul", "last_name": "Weber", "email": "paul.weber@example.com",
    }),
    "me": ("Anna Berg", {"name": "Anna Berg", "email": "anna.berg@example.com"}),
}  # fmt: skip


def sample_context() -> dict[str, Any]:
    """A merge context with a placeholder record of every kind, each field filled: what the check on save
    fills a template with (a template that needs a deal fills too; a field no record has does not)."""
    context: dict[str, Any] = {
        kind: Fields(kind, label, dict(values)) for kind, (label, values) in SAMPLE_FIELDS.items()
    }
    context["deal"] = context["opportunity"]
    context["today"] = "24.11.2026"
    return context


@functools.lru_cache(maxsize=64)
def trial_problems(subject: str, body: str) -> tuple[tuple[str, str], ...]:
    """(field, message) for each text that, filled once with the sample records under the sandbox's limits,
    breaks a limit, uses something not allowed or names a field no record has. What depends on the real
    records (an empty field, 1 / 0 on a sample value) is left to the fill. Up to 2 s a text: the app runs
    it in a thread; remembered, so the save right after it does not fill again."""
    context = sample_context()
    problems = []
    for field, texts in (("subject", (subject, "")), ("body", ("", body))):
        try:
            render(texts, context)
        except TemplateLimitError as exc:
            problems.append((field, f"tried with sample records, {exc}"))
        except (UnknownField, TemplateNotAllowed) as exc:
            problems.append((field, str(exc)))
        except TemplateFieldError:
            continue
    return tuple(problems)


def check_template(subject: str, body: str) -> None:
    """The check on save: the syntax and what the sandbox would surely refuse (``check_syntax``), then one
    fill with sample records (``trial_problems``); a ValidationError names the field and the reason."""
    check_syntax(subject, body)
    problems = trial_problems(subject, body)
    if problems:
        errors = FieldErrors()
        for field, message in problems:
            errors.add(field, message)
        errors.raise_if_any()


def render(
    template: m.EmailTemplate | tuple[str, str], context: dict[str, Any], *, name: str | None = None
) -> tuple[str, str]:
    """(subject, body) filled in within the sandbox's limits (crm_tui.core.template_sandbox); a
    TemplateFieldError names a field the records cannot fill, a TemplateLimitError names the template
    (``name``, else the template's own) and the limit it went past."""
    # Jinja2 (and the sandbox built on it) loads slowly: only when a template is checked or filled
    from jinja2 import TemplateError, UndefinedError
    from jinja2.exceptions import SecurityError

    from crm_tui.core.template_sandbox import LimitExceeded, NotAllowed, TooSlow, limited

    if isinstance(template, m.EmailTemplate):
        subject, body = template.subject, template.body
        name = name or template.name
    else:
        subject, body = template
    called = f"the template {name!r}" if name else "the template"
    try:
        with limited():
            return (
                " ".join(_compiled(subject).render(context).split()),
                _compiled(body).render(context),
            )
    except TemplateFieldError:
        raise
    except (LimitExceeded, NotAllowed) as exc:
        raise TemplateLimitError(f"{called} {exc}", too_slow=isinstance(exc, TooSlow)) from None
    except UndefinedError as exc:
        raise UnknownField(_unknown(exc.message or "", context)) from None
    except SecurityError as exc:
        raise TemplateNotAllowed(f"{called} {_not_allowed(exc)}") from None
    except TemplateError as exc:
        raise TemplateFieldError(f"{called} cannot be filled: {exc}") from None
    except OverflowError:
        raise TemplateFieldError(f"{called} cannot be filled: a number is too large") from None
    except RecursionError:
        raise TemplateLimitError(f"{called} is nested or calls itself too deeply") from None
    except MemoryError:
        raise TemplateLimitError(f"{called} needs more memory than there is") from None
    except Exception as exc:  # noqa: BLE001 - a template's mistake (1 / 0, 'a' - 1), said in words
        raise TemplateFieldError(f"{called} cannot be filled: {exc}") from None


def _unknown(message: str, context: dict[str, Any]) -> str:
    """A name the context lacks, said as a field ("the template uses customer, which is not a field ...")."""
    known = ", ".join(sorted(context))
    found = re.fullmatch(r"'([^']+)' is undefined", message)
    if found:
        return f"the template uses {found.group(1)}, which is not a field (known: {known})"
    return f"the template uses {message}; known: {known}"


def _not_allowed(exc: Exception) -> str:
    """What the sandbox refused, in words ("uses something templates may not: __class__"), not its repr."""
    found = re.search(r"attribute '([^']+)'", str(exc))
    what = found.group(1) if found else "a hidden attribute or an unsafe call"
    return f"uses something templates may not: {what}"


@functools.lru_cache(maxsize=256)
def may_run_long(subject: str, body: str) -> bool:
    """Whether filling the template can take long (a loop, a call, a filter; one that does not parse too):
    such a template is filled before a write transaction, never inside it (automation)."""
    # Jinja2 (and the sandbox built on it) loads slowly: only when a template is checked or filled
    from jinja2 import TemplateSyntaxError

    from crm_tui.core.template_sandbox import may_run_long as tree_may_run_long

    try:
        return any(tree_may_run_long(_environment().parse(text)) for text in (subject, body))
    except (TemplateSyntaxError, RecursionError):
        return True


@functools.lru_cache(maxsize=256)
def kinds_used(subject: str, body: str) -> frozenset[str]:
    """The merge fields a template names at its top level (``contact``, ``deal``, ``me``...); ``deal`` is
    counted as ``opportunity``. A template that does not parse names nothing."""
    # Jinja2 (and the sandbox built on it) loads slowly: only when a template is checked or filled
    from jinja2 import TemplateSyntaxError, meta

    names: set[str] = set()
    for text in (subject, body):
        try:
            names |= meta.find_undeclared_variables(_environment().parse(text))
        except (TemplateSyntaxError, RecursionError):
            continue
    return frozenset("opportunity" if name == "deal" else name for name in names)


# What makes a template that needs a kind of record fit a mail (the picker says it when one is chosen).
HOW = {
    "contact": "put a contact in To", "organization": "put a contact of an organization in To",
    "opportunity": "file the mail on a deal first", "quote": "file the mail on a deal with a quote first",
    "ticket": "file the mail on a ticket first", "lead": "put a lead in To",
    "user": "put a user of our company in To", "me": "say who you are first",
}  # fmt: skip


@dataclass(frozen=True)
class TemplateFit:
    """A template as the picker lists it: whether this mail (or these recipients) can fill it, else why not
    and what would make it fit."""

    id: int
    name: str
    description: str | None
    reason: str | None = None  # None: it fits
    fix: str | None = None  # what makes it fit ("file the mail on a deal with a quote first")
    too_much: bool = False  # the reason is a limit it went past ("takes more than 2 seconds to fill")

    @property
    def fits(self) -> bool:
        return self.reason is None

    @property
    def why(self) -> str:
        """Why it does not fit, as a sentence: "Angebot nachfassen needs a quote: file the mail on a deal
        with a quote first" ("" when it fits)."""
        if self.reason is None:
            return ""
        if self.reason.startswith(("needs ", "uses something")) or self.too_much:
            text = f"{self.name} {self.reason}"
        else:
            text = f"{self.name} uses {self.reason}"
        return f"{text}: {self.fix}" if self.fix else text


def _why_not(exc: TemplateFieldError) -> str:
    if isinstance(exc, MissingRecord):
        return f"needs {NEEDS.get(exc.kind, exc.kind)}"
    return str(exc).removeprefix("the template uses ")


def _fix(exc: TemplateFieldError) -> str | None:
    if isinstance(exc, MissingRecord):
        return HOW.get(exc.kind)
    return "fill it in on the record first" if "which is empty for" in str(exc) else None


def _ordered(fits: list[TemplateFit]) -> list[TemplateFit]:
    """The templates that fit first, then the others; each by name."""
    return sorted(fits, key=lambda fit: (not fit.fits, fit.name.lower()))


_TOO_SLOW: dict[tuple[str, str, str], TemplateLimitError] = {}  # templates the picker found too slow to fill


def fitting_for_mail(session: Session, context: dict[str, Any]) -> list[TemplateFit]:
    """Every template, those this mail's records can fill first, the others saying why not (each is filled
    once here: "needs a deal", "contact.phone, which is empty for Lisa Lang")."""
    fits = []
    for template in list_templates(session):
        reason = fix = None
        too_much = False
        try:
            known = _TOO_SLOW.get((template.name, template.subject, template.body))
            if known is not None:
                raise known
            render(template, context)
        except TemplateLimitError as exc:
            reason, too_much = str(exc).removeprefix(f"the template {template.name!r} "), True
            if exc.too_slow:  # the next picker says so at once instead of waiting 2 s again
                _TOO_SLOW[(template.name, template.subject, template.body)] = exc
                while len(_TOO_SLOW) > 64:
                    del _TOO_SLOW[next(iter(_TOO_SLOW))]
        except TemplateNotAllowed as exc:
            reason = str(exc).removeprefix(f"the template {template.name!r} ")
        except TemplateFieldError as exc:
            reason, fix = _why_not(exc), _fix(exc)
        fits.append(TemplateFit(id_of(template), template.name, template.description, reason, fix, too_much))
    return _ordered(fits)


# What a mass mail to each kind of recipient can fill: the recipient, what comes with it, me and today.
FILLED_FOR = {
    "contact": {"contact", "organization", "me", "today"},
    "lead": {"lead", "me", "today"},
    "user": {"user", "me", "today"},
}


MASS_MAIL_TO = {"contact": "contacts", "lead": "leads", "user": "colleagues"}
MASS_MAIL_FILLS = {"contact": "contact.*, organization.*, ", "lead": "lead.*, ", "user": "user.*, "}


def fitting_for_recipients(session: Session, kind: str) -> list[TemplateFit]:
    """Every template, those a mass mail to ``kind`` (contact, lead, user) can fill first; the others say
    what they need that such a recipient does not bring ("needs a deal")."""
    filled = FILLED_FOR.get(kind, {"me", "today"})
    fits = []
    for template in list_templates(session):
        lacking = sorted(kinds_used(template.subject, template.body) - filled)
        needs = [NEEDS.get(name, name) for name in lacking]
        reason = (
            "needs " + (", ".join(needs[:-1]) + " and " if len(needs) > 1 else "") + needs[-1]
            if needs
            else None
        )
        fills = MASS_MAIL_FILLS.get(kind, "")
        fix = f"a mass mail to {MASS_MAIL_TO.get(kind, kind)} fills {fills}me.* and today only"
        fits.append(
            TemplateFit(id_of(template), template.name, template.description, reason, fix if reason else None)
        )
    return _ordered(fits)


@dataclass
class MailMerge:
    """What a mail's template fills from: the records, most specific first, and what the template picker
    says about them (the deal taken for the person written to, the first of several recipients)."""

    refs: list[RecordRef]
    notes: list[str] = dataclass_field(default_factory=list)


_REF_ORDER = {"quote": 0, "opportunity": 1, "ticket": 2, "lead": 3, "contact": 4, "organization": 5, "user": 6}  # fmt: skip


def _sorted_refs(refs: list[RecordRef]) -> list[RecordRef]:
    return sorted(dict.fromkeys(refs), key=lambda ref: _REF_ORDER.get(ref.type.value, 9))


def refs_of_mail(
    session: Session,
    *,
    record: RecordRef | None,
    reply_to_id: int | None,
    addresses: list[str],
) -> list[RecordRef]:
    """The records a mail's template fills from (``mail_merge``)."""
    return mail_merge(session, record=record, reply_to_id=reply_to_id, addresses=addresses).refs


def mail_merge(
    session: Session,
    *,
    record: RecordRef | None,
    reply_to_id: int | None,
    addresses: list[str],
) -> MailMerge:
    """The records a mail's template fills from: the record it is written from, the contacts, leads and
    colleagues it goes to (the first in To first), and the records the answered mail is filed on; most
    specific first (a deal or a quote brings its contact and organization along). A mail about no deal takes
    the open deal of the person it goes to (the sender, for a reply; of several, the most recently updated),
    a deal with one quote brings that quote; the notes say so, and that of several people in To the merge
    fields use the first."""
    refs: list[RecordRef] = []
    if record is not None:
        refs.append(record)
    people = list(dict.fromkeys(a.strip().lower() for a in addresses if a.strip()))
    for address in people:
        refs.extend(_people_at(session, address))
    answered = session.get(m.MailMessage, reply_to_id) if reply_to_id else None
    if reply_to_id:
        refs.extend(
            RecordRef(RecordType(link.record_type), link.record_id)
            for link in mail_store.links_of(session, reply_to_id)
        )
    refs = _sorted_refs(refs)
    notes: list[str] = []
    kinds = {ref.type for ref in refs}
    if not kinds & {RecordType.OPPORTUNITY, RecordType.QUOTE}:
        counterpart = people[0] if people else _counterpart(answered)
        if counterpart:
            deal, note = _deal_of(session, counterpart)
            if deal is not None:
                refs = _sorted_refs([*refs, RecordRef(RecordType.OPPORTUNITY, id_of(deal))])
                notes.append(note)
    deal_ref = next((ref for ref in refs if ref.type is RecordType.OPPORTUNITY), None)
    if deal_ref is not None and RecordType.QUOTE not in kinds:
        quotes = session.scalars(
            select(m.Quote)
            .where(col(m.Quote.opportunity_id) == deal_ref.id)
            .order_by(col(m.Quote.id))
            .limit(2)
        ).all()
        if len(quotes) == 1:
            refs = _sorted_refs([*refs, RecordRef(RecordType.QUOTE, id_of(quotes[0]))])
            deal = session.get(m.Opportunity, deal_ref.id)
            notes.append(
                f"Quote: {quotes[0].number} — the only quote of {deal.title if deal else 'the deal'}"
            )
    if len(people) > 1:
        notes.append(
            f"{len(people)} people in To: the merge fields use the first, {_name_at(session, people[0])}; "
            "for a personal mail to each, write a mass mail (M on the contacts or leads list)"
        )
    return MailMerge(refs, notes)


def _people_at(session: Session, address: str) -> list[RecordRef]:
    """The contacts, leads and colleagues with this address (lower case)."""
    found = [
        RecordRef(RecordType.CONTACT, contact_id)
        for contact_id in session.scalars(
            select(col(m.ContactEmail.contact_id)).where(col(m.ContactEmail.address) == address)
        )
    ]
    found += [
        RecordRef(RecordType.LEAD, lead_id)
        for lead_id in session.scalars(
            select(col(m.LeadEmail.lead_id)).where(col(m.LeadEmail.address) == address)
        )
    ]
    found += [
        RecordRef(RecordType.USER, user_id)
        for user_id in stored_ids(
            session.scalars(
                select(col(m.User.id)).where(
                    func.lower(col(m.User.email)) == address, *colleague_conditions()
                )
            )
        )
    ]
    return found


def _name_at(session: Session, address: str) -> str:
    """Who an address is, as a person reads it: "Lea Scholz", else the address."""
    models: dict[RecordType, Any] = {
        RecordType.CONTACT: m.Contact, RecordType.LEAD: m.Lead, RecordType.USER: m.User,
    }  # fmt: skip
    for ref in _people_at(session, address):
        row = session.get(models[ref.type], ref.id)
        name = getattr(row, "person_name" if ref.type is RecordType.LEAD else "name", None)
        if name:
            return str(name)
    return address


def _counterpart(message: m.MailMessage | None) -> str | None:
    """Who an answered mail is with: its sender, or the first it went to (a mail of mine)."""
    if message is None:
        return None
    if message.is_outgoing:
        return next(iter(mail_linking.addresses_in(message.to_addresses)), None)
    return message.from_address.lower() or None


def _deal_of(session: Session, address: str) -> tuple[m.Opportunity | None, str]:
    """The open deal of whoever writes from ``address`` (as the inbox's e suggests it: their contact's, their
    organization's), the most recently updated of several, and the note saying which it is."""
    deals = mail_actions.open_deals_of(session, address, free_domains=set(free_domains()))
    if not deals:
        return None, ""
    deal, who = deals[0], _name_at(session, address)
    if len(deals) == 1:
        return deal, f"Deal: {deal.title} — the only open deal of {who}"
    return deal, (
        f"Deal: {deal.title} — the most recently updated of {len(deals)} open deals of {who} "
        "(file the mail on another deal to use that one)"
    )


@dataclass
class TemplateInput:
    name: str
    subject: str
    body: str
    description: str | None = None


def _check(session: Session, data: TemplateInput, template_id: int | None) -> dict[str, Any]:
    errors = FieldErrors()
    name = check_text(errors, "name", data.name, required=True, max_length=120)
    subject = check_text(errors, "subject", data.subject, required=True, max_length=500)
    body = check_text(errors, "body", data.body, required=True, max_length=50_000)
    if name:
        clash = session.scalars(
            select(col(m.EmailTemplate.id)).where(col(m.EmailTemplate.name) == name)
        ).first()
        if clash is not None and clash != template_id:
            errors.add("name", f"a template named {name!r} exists")
    errors.raise_if_any()
    check_template(subject or "", body or "")
    return {
        "name": name,
        "subject": subject,
        "body": body,
        "description": (data.description or "").strip() or None,
    }


def render_template(session: Session, template_id: int, context: dict[str, Any]) -> tuple[str, str] | None:
    """``render`` for a stored template by its id: (subject, body), or None when the template is gone."""
    template = session.get(m.EmailTemplate, template_id)
    return render(template, context) if template is not None else None


def create_template(session: Session, data: TemplateInput, *, now: datetime) -> m.EmailTemplate:
    clean = _check(session, data, None)
    template = m.EmailTemplate(**clean, created_at=now, updated_at=now)
    session.add(template)
    session.flush()
    return template


def update_template(
    session: Session, template_id: int, data: TemplateInput, *, now: datetime
) -> m.EmailTemplate:
    template = session.get(m.EmailTemplate, template_id)
    if template is None:
        raise NotFound(f"no template {template_id}")
    for key, value in _check(session, data, template_id).items():
        setattr(template, key, value)
    template.updated_at = now
    session.flush()
    return template


def delete_template(session: Session, template_id: int) -> None:
    template = session.get(m.EmailTemplate, template_id)
    if template is None:
        raise NotFound(f"no template {template_id}")
    session.delete(template)
    session.flush()


def list_templates(session: Session) -> list[m.EmailTemplate]:
    return list(session.scalars(select(m.EmailTemplate).order_by(col(m.EmailTemplate.name))))


def read_default(path: Path) -> TemplateInput:
    """A shipped template: "Name:", "Description:" and "Subject:" lines, a blank line, the body."""
    text = path.read_text(encoding="utf-8")
    head, _, body = text.partition("\n\n")
    fields = {}
    for line in head.splitlines():
        key, _, value = line.partition(":")
        fields[key.strip().lower()] = value.strip()
    if "name" not in fields or "subject" not in fields:
        raise ValidationError.single("template", f"{path.name}: needs Name: and Subject: lines")
    return TemplateInput(fields["name"], fields["subject"], body, fields.get("description"))


def ensure_defaults(session: Session, folder: Path, *, now: datetime) -> int:
    """Add the shipped templates that are not there yet (by name). Returns how many were added."""
    added = 0
    existing = {t.name for t in list_templates(session)}
    for path in sorted(folder.glob("*.txt")):
        data = read_default(path)
        if data.name not in existing:
            create_template(session, data, now=now)
            added += 1
    return added
