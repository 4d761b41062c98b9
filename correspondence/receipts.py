"""Receipts: emailed to the debtor, in their language, when a card payment is applied.

A job on the `mail` queue (`email_receipt`), so the webhook's transaction only records that a
receipt is due. The receipt page and its PDF are in portal.views."""

from __future__ import annotations

from sqlalchemy.orm import Session

from cases import audit
from cases.case import Case
from cases.contact_log import ContactRefused
from cases.jobs import handles
from cases.ledger import LedgerEntry, balance_after
from cases.messages import MessageError, send_case_email
from correspondence import i18n
from correspondence.mail import render_email
from correspondence.pdf import agency_letterhead
from payments.webhooks import RECEIPT_EMAIL

SYSTEM = audit.Actor(None, "receipts")


@handles(RECEIPT_EMAIL.name)
def email_receipt(session: Session, entry_id: int) -> str:
    """Email the receipt for one payment to the debtor's first address still open to email.
    The contact rules decide (cease, attorney, opt-out); a refused receipt is audited."""
    entry = session.get(LedgerEntry, entry_id)
    if entry is None or entry.kind != "payment":
        return "no such payment"
    case = session.get(Case, entry.case_id)
    email = case.debtor.email_to_use
    if email is None:
        return "no email address open to us"
    to = email.address
    subject, body = render_email(
        "receipt",
        i18n.known(case.debtor.language),
        case=case,
        entry=entry,
        balance_after=balance_after(session, entry),
        agency=agency_letterhead(),
    )
    try:
        send_case_email(
            session, case, to=to, subject=subject, body=body, actor=SYSTEM, purpose="receipt"
        )
    except (ContactRefused, MessageError) as exc:
        audit.record(
            session,
            SYSTEM,
            "ledger_entry",
            entry.id,
            "receipt.not_emailed",
            case_id=case.id,
            reason=str(exc),
        )
        return f"not emailed: {exc}"
    return f"emailed to {to}"
