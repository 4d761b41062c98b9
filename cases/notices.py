"""The validation notice (Reg F 1006.34, model form B-1): its content as plain data, and
marking it sent. Rendering to PDF is correspondence/pdf.py's job."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from cases import audit, limitations
from cases.case import Case, change_status
from cases.contact_log import record_contact
from cases.ledger import itemization
from cases.validation import assumed_receipt, validation_period_end

LANGUAGES = ("en", "es")


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
) -> None:
    """The notice went out: the case's validation period starts and it becomes active."""
    if case.status != "new":
        raise NoticeError(
            f"a validation notice is sent once, to a new case (this one is {case.status})"
        )
    case.validation_sent_at = sent_at
    case.validation_period_ends_on = validation_period_end(sent_on)
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
    }


def letter_purpose(kind: str) -> str:
    return LETTERS[kind][1]
