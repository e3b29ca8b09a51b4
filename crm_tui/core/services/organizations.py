"""Organizations: customers and partners (installers, resellers), with domains, addresses and coverage."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlmodel import Session, col

from crm_tui.core import models as m
from crm_tui.core.addresses import normalize_domain
from crm_tui.core.errors import FieldErrors, ValidationError
from crm_tui.core.field_checks import check_choice, check_emails, check_phones, check_text
from crm_tui.core.free_mail import is_free
from crm_tui.core.search_text import search_blob
from crm_tui.core.services import custom_fields
from crm_tui.core.services.contacts import refresh_search_text
from crm_tui.core.services.records import delete_record, refuse_if_changed
from crm_tui.core.services.rows import (
    check_exists,
    child_values,
    get_or_404,
    id_of,
    matching_every_word,
    owned_by_default,
    stored_ids,
)
from crm_tui.core.types import RecordRef, RecordType


@dataclass
class OrganizationInput:
    name: str
    kind: str = m.OrganizationKind.CUSTOMER.value
    domains: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    phone: str | None = None
    website: str | None = None
    street: str | None = None
    postcode: str | None = None
    city: str | None = None
    region: str | None = None
    country: str | None = None
    owner_id: int | None = None
    # Partners only: the regions and postcode prefixes they cover.
    coverage_regions: list[str] = field(default_factory=list)
    coverage_postcodes: list[str] = field(default_factory=list)
    custom: dict[str, Any] | None = None


# The longest name an organization takes (``_check``; forms prefilled from a mail cut to it).
MAX_NAME = 200


def _check(
    session: Session, data: OrganizationInput, *, partial_custom: bool
) -> tuple[FieldErrors, dict[str, Any]]:
    errors = FieldErrors()
    clean: dict[str, Any] = {
        "name": check_text(errors, "name", data.name, required=True, max_length=MAX_NAME)
    }
    clean["kind"] = check_choice(errors, "kind", data.kind, [k.value for k in m.OrganizationKind])
    domains: list[str] = []
    for value in data.domains:
        if not value.strip():
            continue
        try:
            domain = normalize_domain(value)
        except ValueError as exc:
            errors.add("domains", str(exc))
            continue
        if is_free(domain):
            errors.add(
                "domains",
                f"{domain} is a free-mail or ISP domain: it says nothing about the company, so mail from it "
                "is never linked by its domain",
            )
            continue
        if domain not in domains:
            domains.append(domain)
    clean["domains"] = domains
    clean["emails"] = check_emails(errors, "emails", data.emails)
    phones = check_phones(errors, "phone", [data.phone] if data.phone else [])
    clean["phone"] = phones[0] if phones else None
    for name in ("website", "street", "postcode", "city", "region", "country"):
        clean[name] = check_text(errors, name, getattr(data, name), max_length=200)
    check_exists(session, errors, "owner_id", m.User, data.owner_id)
    regions = [r.strip() for r in data.coverage_regions if r.strip()]
    postcodes = [p.strip() for p in data.coverage_postcodes if p.strip()]
    if (regions or postcodes) and data.kind == m.OrganizationKind.CUSTOMER.value:
        errors.add("coverage_regions", "only installer and reseller partners cover regions or postcodes")
    clean["regions"], clean["postcodes"] = regions, postcodes
    clean["custom"] = custom_fields.check_values(
        session, RecordType.ORGANIZATION.value, data.custom, errors=errors, partial=partial_custom
    )
    return errors, clean


def _apply(
    session: Session, org: m.Organization, data: OrganizationInput, clean: dict[str, Any], now: datetime
) -> None:
    for name in ("name", "kind", "phone", "website", "street", "postcode", "city", "region", "country"):
        setattr(org, name, clean[name])
    org.owner_id = data.owner_id
    org.updated_at = now
    org.search_text = search_blob(
        clean["name"],
        *clean["domains"],
        *clean["emails"],
        clean["city"],
        clean["postcode"],
        clean["region"],
        phones=[clean["phone"]] if clean["phone"] else [],
    )
    session.add(org)
    session.flush()
    assert org.id is not None
    for model in (m.OrganizationDomain, m.OrganizationEmail, m.PartnerCoverage):
        session.execute(delete(model).where(col(model.organization_id) == org.id))
    session.add_all(m.OrganizationDomain(organization_id=org.id, domain=d) for d in clean["domains"])
    session.add_all(m.OrganizationEmail(organization_id=org.id, address=a) for a in clean["emails"])
    session.add_all(m.PartnerCoverage(organization_id=org.id, region=r) for r in clean["regions"])
    session.add_all(m.PartnerCoverage(organization_id=org.id, postcode_prefix=p) for p in clean["postcodes"])
    custom_fields.store_values(session, org.id, clean["custom"])
    session.flush()


def create_organization(
    session: Session, data: OrganizationInput, *, now: datetime, me_id: int | None = None
) -> m.Organization:
    data = owned_by_default(data, me_id)
    errors, clean = _check(session, data, partial_custom=False)
    errors.raise_if_any()
    org = m.Organization(name=clean["name"], created_at=now, updated_at=now)
    _apply(session, org, data, clean, now)
    return org


def update_organization(
    session: Session,
    org_id: int,
    data: OrganizationInput,
    *,
    now: datetime,
    expected: OrganizationRecord | None = None,
) -> m.Organization:
    """Edit an organization. With ``expected`` (as its form showed it), one changed or deleted since is
    refused (RecordChanged) in this same write."""
    refuse_if_changed(organization_record(session, org_id) if expected else None, expected)
    org = get_or_404(session, m.Organization, org_id, "organization")
    errors, clean = _check(session, data, partial_custom=True)
    if clean["kind"] == m.OrganizationKind.CUSTOMER.value and org.kind != clean["kind"]:
        users = session.scalar(
            select(func.count()).select_from(m.User).where(col(m.User.organization_id) == org_id)
        )
        if users:
            errors.add("kind", f"{users} users belong to this partner; it cannot become a customer")
    errors.raise_if_any()
    renamed = org.name != clean["name"]
    _apply(session, org, data, clean, now)
    if renamed:
        contact_ids = session.scalars(
            select(col(m.Contact.id)).where(col(m.Contact.organization_id) == org_id)
        )
        refresh_search_text(session, stored_ids(contact_ids))
    return org


def delete_organization(session: Session, org_id: int) -> list[str]:
    """Delete an organization; its contacts and deals stay (without it). Partners with users are kept."""
    org = get_or_404(session, m.Organization, org_id, "organization")
    users = session.scalar(
        select(func.count()).select_from(m.User).where(col(m.User.organization_id) == org_id)
    )
    if users:
        raise ValidationError.single(
            "organization", f"{users} users belong to {org.name}; move or remove them first"
        )
    contact_ids = stored_ids(
        session.scalars(select(col(m.Contact.id)).where(col(m.Contact.organization_id) == org_id))
    )
    session.execute(
        update(m.Contact).where(col(m.Contact.organization_id) == org_id).values(organization_id=None)
    )
    stored = delete_record(session, RecordRef(RecordType.ORGANIZATION, org_id))
    refresh_search_text(session, contact_ids)
    return stored


def organization_domains(session: Session, org_id: int) -> list[str]:
    return child_values(
        session,
        col(m.OrganizationDomain.domain),
        col(m.OrganizationDomain.organization_id),
        org_id,
        col(m.OrganizationDomain.id),
    )


def organization_emails(session: Session, org_id: int) -> list[str]:
    return child_values(
        session,
        col(m.OrganizationEmail.address),
        col(m.OrganizationEmail.organization_id),
        org_id,
        col(m.OrganizationEmail.id),
    )


def find_by_domain(session: Session, domain: str) -> m.Organization | None:
    return session.scalars(
        select(m.Organization)
        .join(m.OrganizationDomain, col(m.OrganizationDomain.organization_id) == col(m.Organization.id))
        .where(col(m.OrganizationDomain.domain) == domain.strip().lower())
        .order_by(col(m.Organization.id))
    ).first()


def find_by_name(session: Session, name: str) -> m.Organization | None:
    return session.scalars(
        select(m.Organization)
        .where(func.lower(col(m.Organization.name)) == name.strip().lower())
        .order_by(col(m.Organization.id))
    ).first()


def search_organizations(
    session: Session, text: str = "", *, kind: str | None = None, limit: int | None = 50, offset: int = 0
) -> list[m.Organization]:
    query = select(m.Organization)
    query = matching_every_word(query, col(m.Organization.search_text), text)
    if kind:
        query = query.where(col(m.Organization.kind) == kind)
    query = query.order_by(col(m.Organization.name), col(m.Organization.id)).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


@dataclass(frozen=True)
class OrganizationRow:
    """An organization as its list shows it."""

    id: int
    name: str
    kind: str
    postcode: str | None
    city: str | None
    region: str | None
    phone: str | None


def organization_rows(
    session: Session, text: str = "", *, kind: str | None = None, limit: int | None = 50, offset: int = 0
) -> list[OrganizationRow]:
    """One page of the organizations matching every word of ``text`` (of one kind if given), by name."""
    return [
        OrganizationRow(id_of(o), o.name, o.kind, o.postcode, o.city, o.region, o.phone)
        for o in search_organizations(session, text, kind=kind, limit=limit, offset=offset)
    ]


def count_organizations(session: Session, text: str = "") -> int:
    statement = select(func.count()).select_from(m.Organization)
    statement = matching_every_word(statement, col(m.Organization.search_text), text)
    return int(session.scalar(statement) or 0)


@dataclass(frozen=True)
class OrganizationRecord:
    """An organization as its form shows it (and as an edit expects to find it)."""

    id: int
    name: str
    kind: str
    domains: tuple[str, ...]
    emails: tuple[str, ...]
    phone: str | None
    website: str | None
    street: str | None
    postcode: str | None
    city: str | None
    region: str | None
    country: str | None
    owner_id: int | None
    owner_name: str | None = field(compare=False)  # the detail pane's; a renamed user changes nothing here
    coverage_regions: tuple[str, ...]
    coverage_postcodes: tuple[str, ...]
    custom: tuple[tuple[str, Any], ...]
    updated_at: datetime


def organization_record(session: Session, org_id: int) -> OrganizationRecord | None:
    row = session.execute(
        select(m.Organization, col(m.User.name))
        .outerjoin(m.User, col(m.User.id) == col(m.Organization.owner_id))
        .where(col(m.Organization.id) == org_id)
    ).first()
    if row is None:
        return None
    org, owner_name = row
    coverage = session.execute(
        select(col(m.PartnerCoverage.region), col(m.PartnerCoverage.postcode_prefix))
        .where(col(m.PartnerCoverage.organization_id) == org_id)
        .order_by(col(m.PartnerCoverage.id))
    ).all()
    return OrganizationRecord(
        id=org_id,
        name=org.name,
        kind=org.kind,
        domains=tuple(organization_domains(session, org_id)),
        emails=tuple(organization_emails(session, org_id)),
        phone=org.phone,
        website=org.website,
        street=org.street,
        postcode=org.postcode,
        city=org.city,
        region=org.region,
        country=org.country,
        owner_id=org.owner_id,
        owner_name=owner_name,
        coverage_regions=tuple(region for region, _ in coverage if region),
        coverage_postcodes=tuple(prefix for _, prefix in coverage if prefix),
        custom=custom_fields.values_of(session, RecordRef(RecordType.ORGANIZATION, org_id)),
        updated_at=org.updated_at,
    )
