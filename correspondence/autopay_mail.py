"""The autopay email: asking a debtor to come and confirm an installment their bank wants
authenticated (job `autopay.authentication_email`, queued by payments.autopay)."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from cases.case import Case
from cases.contact_log import ContactRefused
from cases.jobs import handles
from cases.messages import MessageError, send_case_email
from cases.plans import Installment
from correspondence import i18n
from correspondence.mail import render_email
from correspondence.pdf import agency_letterhead
from payments.autopay import AUTHENTICATION_EMAIL, AUTOPAY

log = logging.getLogger(__name__)


@handles(AUTHENTICATION_EMAIL.name)
def email_authentication(session: Session, installment_id: int) -> None:
    """Ask the debtor to come and confirm an installment their bank wants authenticated."""
    installment = session.get(Installment, installment_id)
    case = session.get(Case, installment.plan.case_id)
    email = case.debtor.email_to_use
    if email is None:
        log.info("installment %s needs authentication; no email to send to", installment_id)
        return
    agency = agency_letterhead()
    link = agency["portal"].rsplit("/portal", 1)[0] + (
        f"/portal/installments/{installment.id}/authenticate"
    )
    subject, body = render_email(
        "autopay_authentication",
        i18n.known(case.debtor.language),
        case=case,
        agency=agency,
        installment=installment,
        amount=f"${installment.amount_cents / 100:,.2f}",
        link=link,
    )
    try:
        send_case_email(session, case, to=email.address, subject=subject, body=body, actor=AUTOPAY)
    except (ContactRefused, MessageError) as exc:
        log.info("installment %s: authentication email held back: %s", installment_id, exc)
