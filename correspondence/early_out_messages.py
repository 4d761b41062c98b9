"""The early-out run: each day's reminders in the client's name (email, text, letter; English or
Spanish), sent only when the contact rules allow it now, and the conversions to collection.

Early-out messages name the client, carry its reply address and logo, and a link to its branded
payment page; they never say "debt collector" nor name the agency (cases.early_out explains
why). Run it hourly: a reminder the rules hold back now (the debtor's hours) goes on a later run,
and a step sent or a conversion made is never done twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import current_app, render_template
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from cases import audit
from cases.case import Case
from cases.compliance import PastContact
from cases.contact_log import ContactRefused, histories, record_contact
from cases.debtors import Debtor
from cases.early_out import (
    DueStep,
    EarlyOutReminder,
    EarlyOutTerms,
    clients_in_early_out,
    convert,
    due_candidates,
    due_conversions,
    due_steps,
    last_sent_days,
    terms_of,
)
from cases.early_out_plans import review_plans
from cases.jobs import declare, handles
from cases.ledger import balances
from cases.messages import MessageError, send_case_email, send_case_text
from cases.model import utcnow
from correspondence import i18n
from correspondence.notice_run import Sent, manifest
from correspondence.pdf import bind, render_document
from shell.document_store import store
from shell.timezone import agency_today

log = logging.getLogger(__name__)
RUN_DUE = declare("earlyout.run")
SYSTEM = audit.Actor(None, "early-out")
PURPOSE = "early_out"
PRINT_FILE = "eo_print_file"  # the mail house's print file of a run's letters (Document.kind)
PRINT_MANIFEST = "eo_print_manifest"
# Words an early-out message may never carry (tests check every rendered template).
FORBIDDEN_WORDS = ("debt collector", "cobrador de deudas", "collection agency")
_SALT = "early-out-pay"
CHUNK = 1000  # accounts loaded at a time


@dataclass
class Run:
    today: dt.date
    sent: list[str] = field(default_factory=list)  # "RC-…:day:channel"
    held: list[str] = field(default_factory=list)  # "RC-…:day: why"
    converted: list[str] = field(default_factory=list)
    letters: list[tuple[Case, Sent]] = field(default_factory=list)  # for the print file
    print_file_id: int | None = None

    def as_json(self) -> dict:
        return {"sent": len(self.sent), "converted": self.converted}


def pay_token(case: Case) -> str:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_SALT).dumps(case.reference)


def reference_of_token(token: str) -> str | None:
    try:
        reference = URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_SALT).loads(token)
    except BadSignature:
        return None
    return reference if isinstance(reference, str) else None


def pay_link(case: Case) -> str:
    return f"{current_app.config['APP_URL'].rstrip('/')}/portal/early-out/{pay_token(case)}"


def message_context(case: Case, terms: EarlyOutTerms, balance_cents: int, convert_on) -> dict:
    return {
        "client": case.client.name,
        "reply_to": terms.reply_to,
        "logo": terms.logo_path,
        "name": case.debtor.display_name,
        "account": case.account_number,
        "invoice": case.invoice_number,
        "amount": f"${balance_cents / 100:,.2f}",
        "due_date": case.due_date.isoformat(),
        "convert_on": convert_on.isoformat(),
        "link": pay_link(case),
    }


def render(template: str, language: str, **context) -> str:
    """templates/early_out/<template>.<language>.txt, checked for what it must never say."""
    text = render_template(f"early_out/{template}.{i18n.known(language)}.txt", **context)
    lowered = text.lower()
    for word in FORBIDDEN_WORDS:
        if word in lowered:
            raise ValueError(f"an early-out message may not say {word!r}")
    return text


def _send(
    session: Session,
    due: DueStep,
    terms: EarlyOutTerms,
    balance: int,
    run: Run,
    past: list[PastContact] | None = None,
) -> None:
    case = due.case
    language = i18n.known(case.debtor.language)
    context = message_context(case, terms, balance, due.convert_on)
    key = f"{case.reference}:{due.day}:{due.channel}"
    try:
        with session.begin_nested():
            message_id = document_id = None
            if due.channel == "email":
                text = render("email", language, tone=due.tone, **context)
                subject, _, body = text.partition("\n")
                message_id = send_case_email(
                    session,
                    case,
                    to=case.debtor.email_to_use.address,
                    subject=subject.removeprefix("Subject:").strip(),
                    body=body.lstrip("\n"),
                    actor=SYSTEM,
                    purpose=PURPOSE,
                    past=past,
                ).id
            elif due.channel == "text":
                body = render("text", language, tone=due.tone, **context).strip()
                message_id = send_case_text(
                    session,
                    case,
                    to=case.debtor.phone_for_texts.number,
                    body=body,
                    actor=SYSTEM,
                    purpose=PURPOSE,
                    past=past,
                ).id
            else:
                letter = _letter(session, case, language, context, due.tone)
                document_id = letter.document.id
            session.add(
                EarlyOutReminder(
                    case_id=case.id,
                    day=due.day,
                    channel=due.channel,
                    tone=due.tone,
                    language=language,
                    sent_on=run.today,
                    message_id=message_id,
                    document_id=document_id,
                )
            )
            session.flush()
    except (ContactRefused, MessageError) as exc:
        run.held.append(f"{case.reference}:{due.day}: {exc}")
        return
    except IntegrityError:  # another run sent this step a moment ago
        return
    run.sent.append(key)
    if due.channel == "letter":
        run.letters.append((case, letter))


def _print_file(session: Session, run: Run) -> int:
    """The run's letters for the mail house, as the notices go (correspondence.notice_run): one
    print file in the order sent and its manifest, listed on the agency's notices page."""
    stamp = f"{run.today:%Y-%m-%d}-{utcnow():%H%M%S}"
    print_file = store(
        bind([letter.rendered for _, letter in run.letters]),
        filename=f"early-out-letters-{stamp}.pdf",
        content_type="application/pdf",
        kind=PRINT_FILE,
        case_id=None,
        uploaded_by_id=None,
    )
    listing = store(
        manifest(run.letters).encode("utf-8"),
        filename=f"early-out-letters-{stamp}.csv",
        content_type="text/csv",
        kind=PRINT_MANIFEST,
        case_id=None,
        uploaded_by_id=None,
    )
    audit.record(
        session,
        SYSTEM,
        "document",
        print_file.id,
        "early_out.print_file",
        letters=len(run.letters),
        manifest_id=listing.id,
    )
    return print_file.id


def _letter(session: Session, case: Case, language: str, context: dict, tone: str) -> Sent:
    """A letter in the client's name, kept with the case and recorded as a contact."""
    address = case.debtor.primary_address
    body = render("letter", language, tone=tone, **context)
    rendered = render_document(
        "early_out/letter.html",
        body=body,
        lang=language,
        address=address,
        logo=context["logo"],
        client=context["client"],
        reply_to=context["reply_to"],
    )
    document = store(
        rendered.write_pdf(),
        filename=f"early-out-letter-{case.reference}-{context['convert_on']}.pdf",
        content_type="application/pdf",
        kind="early_out_letter",
        case_id=case.id,
        debtor_id=case.debtor_id,
        uploaded_by_id=None,
    )
    session.flush()
    record_contact(
        session,
        case,
        channel="letter",
        direction="outbound",
        occurred_at=utcnow(),
        actor=SYSTEM,
        target=f"{address.line1}, {address.city}, {address.state} {address.postal_code}",
        body=body,
        purpose=PURPOSE,
        document_id=document.id,
    )
    return Sent(document, rendered)


@handles(RUN_DUE.name)
def run_due(session: Session, as_of: str | None = None) -> Run:
    """The early-out job: convert the accounts whose day has come, then send the steps due."""
    today = dt.date.fromisoformat(as_of) if as_of else agency_today()
    run = Run(today)
    broken = review_plans(session, today, actor=SYSTEM)
    for case in due_conversions(session, today):
        convert(session, case, today=today, actor=SYSTEM)
        run.converted.append(case.reference)
    for client_id in clients_in_early_out(session):
        terms = terms_of(session, client_id)
        candidates = list(session.scalars(due_candidates(terms, today)))
        for start in range(0, len(candidates), CHUNK):
            ids = candidates[start : start + CHUNK]
            sent_days = last_sent_days(session, ids)
            cases = session.scalars(
                sa.select(Case)
                .where(Case.id.in_(ids))
                .options(
                    selectinload(Case.debtor).selectinload(Debtor.emails),
                    selectinload(Case.debtor).selectinload(Debtor.phones),
                    selectinload(Case.debtor).selectinload(Debtor.addresses),
                    selectinload(Case.client),
                )
                .order_by(Case.id)
            ).all()
            due = due_steps(list(cases), sent_days, {client_id: terms}, today)
            owed = balances(session, [d.case.id for d in due]) if due else {}
            # The contact rules' history of the chunk's cases in two queries, not two a case;
            # each message queued is added to its case's as it goes.
            past = histories(session, [d.case.id for d in due]) if due else {}
            for step in due:
                _send(
                    session, step, terms, owed[step.case.id], run, past.setdefault(step.case.id, [])
                )
    if run.letters:
        run.print_file_id = _print_file(session, run)
    log.info(
        "early-out %s: %d plan(s) broken, %d sent, %d held, %d converted",
        today,
        len(broken),
        len(run.sent),
        len(run.held),
        len(run.converted),
    )
    return run
