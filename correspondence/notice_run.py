"""Validation notices to the mail house (SPEC §6.7): `flask notices send`, the daily job and
the supervisors' button. Every `new` case without a notice gets one; the run writes a single
print file (the notices in mailing order) and its manifest (CSV), and raises the alerts of the
deadlines around the notice (cases.notices.raise_notice_alerts).

Run twice, it sends nothing twice: a case that got its notice is `active`, and an empty run
keeps no print file."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from cases import audit
from cases.case import Case
from cases.contact_log import ContactRefused, gate
from cases.csvsafe import write_csv
from cases.debtors import Address, Debtor
from cases.documents import Document
from cases.jobs import declare, handles
from cases.model import utcnow
from cases.notices import (
    NoticeError,
    NoticeRun,
    mark_validation_sent,
    raise_notice_alerts,
)
from correspondence.pdf import agency_letterhead, bind
from correspondence.validation_notice import notice_languages, validation_notice_document
from shell.document_store import store
from shell.timezone import agency_today, agency_zone

SEND_NOTICES = declare("notices.send")
SYSTEM = audit.Actor(None, "notices")
MANIFEST_HEADER = (
    "sequence",
    "reference",
    "debtor_name",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
    "first_page",
    "pages",
)


@dataclass
class Sent:
    document: Document
    rendered: object  # the laid-out pages, for the print file


@dataclass
class NoticeRunResult:
    today: dt.date
    run: NoticeRun | None = None
    sent: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)  # "RC-…: why"
    alerts: dict[str, list[str]] = field(default_factory=dict)


def send_notice(
    session: Session,
    case: Case,
    *,
    actor: audit.Actor,
    sent_at: dt.datetime,
    sent_on: dt.date,
    run: NoticeRun | None = None,
) -> Sent:
    """Generate a case's notice (in English, and Spanish too for a Spanish-speaking debtor, in
    one PDF: one mailing), keep it and mark it sent."""
    gate(session, case, "letter", sent_at, purpose="validation_notice")
    rendered = validation_notice_document(
        session, case, sent_on=sent_on, agency=agency_letterhead()
    )
    languages = "-".join(notice_languages(case))
    document = store(
        rendered.write_pdf(),
        filename=f"validation-notice-{case.reference}-{languages}.pdf",
        content_type="application/pdf",
        kind="validation_notice",
        case_id=case.id,
        debtor_id=case.debtor_id,
        uploaded_by_id=actor.user_id,
    )
    mark_validation_sent(
        session,
        case,
        sent_at=sent_at,
        sent_on=sent_on,
        document_id=document.id,
        actor=actor,
        run=run,
    )
    return Sent(document, rendered)


def waiting_cases(session: Session) -> list[Case]:
    """`new` cases with no notice yet, in mailing order (ZIP code, then reference): the
    partial index ix_cases_awaiting_notice holds exactly those, so a book of cases already
    noticed is not read. Their debtors' addresses come with them (a query, not one per case)."""
    first_zip = (
        sa.select(sa.func.min(Address.postal_code))
        .where(Address.debtor_id == Debtor.id)
        .scalar_subquery()
    )
    return list(
        session.scalars(
            sa.select(Case)
            .join(Debtor, Debtor.id == Case.debtor_id)
            .where(
                Case.status == "new",
                Case.validation_sent_at.is_(None),
                Case.program == "collection",  # an early-out account gets no notice
            )
            .order_by(first_zip, Case.reference)
            .options(selectinload(Case.debtor).selectinload(Debtor.addresses))
            .with_for_update(of=Case, skip_locked=True)
        )
    )


def send_notices(session: Session, *, today: dt.date, actor: audit.Actor) -> NoticeRunResult:
    """Send every waiting notice, write the print file and the manifest, raise the alerts."""
    result = NoticeRunResult(today)
    now = utcnow()
    sent: list[tuple[Case, Sent]] = []
    waiting = waiting_cases(session)
    run = NoticeRun(run_on=today)
    if waiting:  # a day with none writes nothing (not even a run to delete)
        session.add(run)
        session.flush()
    for case in waiting:
        if case.debtor.primary_address is None:
            result.held.append(f"{case.reference}: no postal address to mail the notice to")
            continue
        try:
            with session.begin_nested():
                one = send_notice(session, case, actor=actor, sent_at=now, sent_on=today, run=run)
        except (NoticeError, ContactRefused) as exc:
            result.held.append(f"{case.reference}: {exc}")
            continue
        sent.append((case, one))
    if sent:
        run.notice_count = len(sent)
        run.print_document_id = store(
            bind([one.rendered for _, one in sent]),
            filename=f"validation-notices-{today:%Y-%m-%d}-{run.id}.pdf",
            content_type="application/pdf",
            kind="print_file",
            case_id=None,
            uploaded_by_id=actor.user_id,
        ).id
        run.manifest_document_id = store(
            manifest(sent).encode("utf-8"),
            filename=f"validation-notices-{today:%Y-%m-%d}-{run.id}.csv",
            content_type="text/csv",
            kind="print_manifest",
            case_id=None,
            uploaded_by_id=actor.user_id,
        ).id
        audit.record(session, actor, "notice_run", run.id, "notices.sent", notices=len(sent))
        result.run = run
        result.sent = [case.reference for case, _ in sent]
    elif waiting:
        session.delete(run)
        session.flush()
    result.alerts = raise_notice_alerts(session, now=now, today=today, zone=agency_zone())
    return result


def manifest(sent: list[tuple[Case, Sent]]) -> str:
    """The mail house's manifest of a print file: each mailing's address and pages."""
    rows, page = [], 1
    for sequence, (case, one) in enumerate(sent, start=1):
        address = case.debtor.primary_address
        pages = len(one.rendered.pages)
        rows.append(
            (
                sequence,
                case.reference,
                case.debtor.display_name,
                address.line1,
                address.line2 or "",
                address.city,
                address.state,
                address.postal_code,
                page,
                pages,
            )
        )
        page += pages
    return write_csv(rows, MANIFEST_HEADER)


@handles(SEND_NOTICES.name)
def send_notices_job(session: Session, as_of: str | None = None) -> NoticeRunResult:
    """The daily job: the day's notices and the alerts."""
    today = dt.date.fromisoformat(as_of) if as_of else agency_today()
    return send_notices(session, today=today, actor=SYSTEM)
