"""The validation notice (Reg F 1006.34, model form B-1): its content as plain data, and
marking it sent. Rendering to PDF is correspondence/pdf.py's job."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from cases import audit, limitations
from cases.case import Case, change_status
from cases.compliance import NOTICE_DAYS
from cases.contact_log import record_contact
from cases.contacts import ComplianceAlert, raise_alert
from cases.ledger import itemization
from cases.model import Base, Timestamped, utcnow
from cases.validation import add_business_days, assumed_receipt, validation_period_end

LANGUAGES = ("en", "es")


class NoticeRun(Timestamped, Base):
    """One hand-over of validation notices to the mail house: a single print file (the
    notices in mailing order) and its manifest. `mailed_on` is the day the mail house (or a
    supervisor) confirmed they were mailed: the validation periods run from it."""

    __tablename__ = "notice_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_on: Mapped[dt.date]
    notice_count: Mapped[int] = mapped_column(default=0)
    print_document_id: Mapped[int | None] = mapped_column(sa.ForeignKey("documents.id"))
    manifest_document_id: Mapped[int | None] = mapped_column(sa.ForeignKey("documents.id"))
    mailed_on: Mapped[dt.date | None]
    confirmed_at: Mapped[dt.datetime | None]
    confirmed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))


class NoticeError(ValueError):
    """The notice may not be sent; the message says why."""


def validation_notice_data(
    session: Session, case: Case, *, sent_on: dt.date, agency: dict, language: str = "en"
) -> dict:
    """Everything the notice says, as plain values. Refuses an itemisation that does not add up:
    amount on the itemisation date + interest + fees − payments − credits = amount now."""
    if language not in LANGUAGES:
        raise NoticeError(f"language must be one of: {', '.join(LANGUAGES)}")
    items = itemization(session, case)
    if not items["adds_up"]:
        raise NoticeError(
            f"the itemisation does not add up ({items['problem']}); the notice is not sent "
            "until the ledger or the referral's itemisation is corrected"
        )
    if items["current_amount_cents"] <= 0:
        raise NoticeError("nothing is owed on this case")
    debtor = case.debtor
    address = debtor.primary_address
    return {
        "language": language,
        "agency": agency,
        "reference": case.reference,
        "sent_on": sent_on,
        "receipt_on": assumed_receipt(sent_on),
        "respond_by": validation_period_end(sent_on),
        "creditor": case.client.name,
        "account_number": case.account_number,
        "service_description": case.service_description or "",
        "debtor_name": debtor.display_name,
        "address": (
            [address.line1, address.line2, f"{address.city} {address.state} {address.postal_code}"]
            if address
            else []
        ),
        # The debtor's state, for the state's own notice (correspondence/state_notices).
        "state": address.state if address else None,
        "itemization": items,
        # What the debtor's state requires on a time-barred debt (SPEC §6.11), if anything.
        "time_barred_disclosure": limitations.disclosure(session, case, sent_on),
    }


def mark_validation_sent(
    session: Session,
    case: Case,
    *,
    sent_at: dt.datetime,
    sent_on: dt.date,
    document_id: int,
    actor: audit.Actor,
    run: NoticeRun | None = None,
) -> None:
    """The notice went out (to the mail house, or printed here): the case becomes active and
    its validation period is counted from today until the mailing is confirmed
    (`confirm_mailed`), which counts it from the day it was mailed."""
    if case.status != "new":
        raise NoticeError(
            f"a validation notice is sent once, to a new case (this one is {case.status})"
        )
    case.validation_sent_at = sent_at
    case.validation_period_ends_on = validation_period_end(sent_on)
    case.validation_mailed_on = None
    case.notice_run_id = run.id if run else None
    record_contact(
        session,
        case,
        channel="letter",
        direction="outbound",
        occurred_at=sent_at,
        actor=actor,
        subject="Validation notice",
        document_id=document_id,
        purpose="validation_notice",
        target=", ".join(a.line1 for a in case.debtor.addresses[:1]) or None,
    )
    change_status(session, case, "active", actor=actor, reason="validation notice sent")


LETTERS = {
    "collection": ("Your account", "collection"),
    "cease_confirmation": ("We have stopped collection", "cease_confirmation"),
    "verification": ("Verification of the debt", "verification"),
    "original_creditor": ("The original creditor", "original_creditor"),
}


def letter_data(
    session: Session, case: Case, kind: str, *, on: dt.date, agency: dict, note: str = ""
) -> dict:
    if kind not in LETTERS:
        raise NoticeError(f"letter must be one of: {', '.join(LETTERS)}")
    items = itemization(session, case)
    address = case.debtor.primary_address
    return {
        "kind": kind,
        "title": LETTERS[kind][0],
        "agency": agency,
        "reference": case.reference,
        "date": on,
        "debtor_name": case.debtor.display_name,
        "address": (
            [address.line1, address.line2, f"{address.city} {address.state} {address.postal_code}"]
            if address
            else []
        ),
        "creditor": case.client.name,
        "account_number": case.account_number,
        "balance_cents": items["current_amount_cents"],
        "itemization": items,
        "note": note,
        # What the debtor's state requires on a time-barred debt (SPEC §6.11), if anything.
        "time_barred_disclosure": limitations.disclosure(session, case, on),
        "original_creditor_name": case.original_creditor_name or "",
        "original_creditor_address": case.original_creditor_address or "",
    }


def letter_purpose(kind: str) -> str:
    return LETTERS[kind][1]


# --- mailing and the deadlines around it (12 CFR 1006.34(a)(1), SPEC §6.7) -----------------

# A notice handed over but not confirmed as mailed within this many business days raises an
# alert: the mail house acknowledges the day it mails.
MAILING_BUSINESS_DAYS = 2


def confirm_mailed(
    session: Session,
    cases: list[Case],
    *,
    mailed_on: dt.date,
    today: dt.date,
    zone: ZoneInfo,
    actor: audit.Actor,
) -> int:
    """The mail house (or a supervisor) confirms the notices were mailed on `mailed_on` (a day
    in the agency's time zone, `zone`): each case's validation period is counted from that day.
    Returns how many were confirmed."""
    if mailed_on > today:
        raise NoticeError("a notice cannot be confirmed as mailed on a day still to come")
    for case in cases:
        if case.validation_sent_at is None:
            raise NoticeError(f"{case.reference}: no validation notice has been sent")
        if case.validation_mailed_on is not None:
            raise NoticeError(
                f"{case.reference}: its notice was already confirmed as mailed on "
                f"{case.validation_mailed_on:%Y-%m-%d}"
            )
        handed_over = case.validation_sent_at.astimezone(zone).date()
        if mailed_on < handed_over:
            raise NoticeError(
                f"{case.reference}: its notice was handed over on {handed_over:%Y-%m-%d}; it "
                f"cannot have been mailed before that"
            )
    for case in cases:
        case.validation_mailed_on = mailed_on
        case.validation_period_ends_on = validation_period_end(mailed_on)
        audit.record(
            session,
            actor,
            "case",
            case.id,
            "notice.mailed",
            case_id=case.id,
            mailed_on=mailed_on.isoformat(),
            period_ends_on=case.validation_period_ends_on.isoformat(),
        )
    return len(cases)


def confirm_run_mailed(
    session: Session,
    run: NoticeRun,
    *,
    mailed_on: dt.date,
    today: dt.date,
    zone: ZoneInfo,
    actor: audit.Actor,
) -> int:
    """The mail house's acknowledgement of a whole print run."""
    if run.mailed_on is not None:
        raise NoticeError(f"this print run was already confirmed as mailed on {run.mailed_on}")
    cases = list(session.scalars(sa.select(Case).where(Case.notice_run_id == run.id)))
    count = confirm_mailed(session, cases, mailed_on=mailed_on, today=today, zone=zone, actor=actor)
    run.mailed_on = mailed_on
    run.confirmed_at = utcnow()
    run.confirmed_by_id = actor.user_id
    return count


def mailing_due_by(sent_on: dt.date) -> dt.date:
    """The last day on which a notice handed over on `sent_on` should be confirmed mailed."""
    return add_business_days(sent_on, MAILING_BUSINESS_DAYS)


def _not_alerted(kind: str) -> sa.ColumnElement[bool]:
    """The case has no alert of this kind yet (each is raised once)."""
    return ~(
        sa.select(ComplianceAlert.id)
        .where(ComplianceAlert.case_id == Case.id, ComplianceAlert.kind == kind)
        .exists()
    )


def unmailed_before(today: dt.date, zone: ZoneInfo) -> dt.datetime:
    """The moment before which a notice handed over and still not confirmed as mailed is late
    today: the start (in the agency's time zone) of the day after the last hand-over day whose
    mailing deadline has passed."""
    day = today
    while day > today - dt.timedelta(days=30) and today <= mailing_due_by(day):
        day -= dt.timedelta(days=1)
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=zone)


def raise_notice_alerts(
    session: Session, *, now: dt.datetime, today: dt.date, zone: ZoneInfo
) -> dict[str, list[str]]:
    """The daily checks: a case whose notice is overdue (5 days after its first communication
    and still none) and a notice not confirmed as mailed within 2 business days each raise an
    alert, once. Returns the references alerted, by kind.

    Only cases still to alert are read: a case already alerted is left out in the query, and
    the partial indexes ix_cases_awaiting_notice and ix_cases_notice_unmailed find the rest."""
    from_clock = session.scalars(
        sa.select(Case).where(
            Case.status == "new",
            Case.validation_sent_at.is_(None),
            Case.first_communication_at.is_not(None),
            Case.first_communication_at < now - NOTICE_DAYS,
            _not_alerted("notice_overdue"),
        )
    ).all()
    raised: dict[str, list[str]] = {"notice_overdue": [], "notice_not_mailed": []}
    for case in from_clock:
        due = case.first_communication_at + NOTICE_DAYS
        if raise_alert(
            session,
            case.id,
            "notice_overdue",
            "validation_notice_overdue",
            f"The validation notice was due by {due.astimezone(zone):%Y-%m-%d %H:%M} (5 days "
            f"after the first communication) and has not been sent; nothing but the notice "
            f"may go out.",
        ):
            raised["notice_overdue"].append(case.reference)
    unmailed = session.scalars(
        sa.select(Case).where(
            Case.status.in_(("new", "active", "plan", "disputed")),
            Case.validation_sent_at.is_not(None),
            Case.validation_mailed_on.is_(None),
            Case.validation_sent_at < unmailed_before(today, zone),
            _not_alerted("notice_not_mailed"),
        )
    ).all()
    for case in unmailed:
        sent_on = case.validation_sent_at.astimezone(zone).date()
        if today <= mailing_due_by(sent_on):
            continue
        if raise_alert(
            session,
            case.id,
            "notice_not_mailed",
            "validation_notice_not_mailed",
            f"The validation notice handed over on {sent_on:%Y-%m-%d} has not been confirmed as "
            f"mailed within {MAILING_BUSINESS_DAYS} business days; its validation period "
            f"cannot be dated until it is.",
        ):
            raised["notice_not_mailed"].append(case.reference)
    return raised
