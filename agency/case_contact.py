"""The case screen's contact actions: calls, notes, emails and texts, and what the debtor
asked about being contacted (cease, attorney, inconvenient times, opt-outs, monthly
statements, their situation)."""

from __future__ import annotations

import datetime as dt

from agency.case_papers import store_upload
from agency.casework import act, staff_case
from agency.staff import actor, bp
from cases import debtors as debtor_rules
from cases.case import Case
from cases.contact_log import record_contact
from cases.contacts import add_note
from cases.ledger import balance_cents
from cases.messages import send_case_email, send_case_text
from cases.model import utcnow
from cases.notices import LANGUAGES
from correspondence.mail import render_email, render_text
from correspondence.pdf import agency_letterhead
from shell.extensions import db
from shell.timezone import agency_zone


def _local_now_or(value: dt.datetime | None) -> dt.datetime:
    """A datetime-local input is in the agency's zone; empty means now."""
    if value is None:
        return utcnow()
    return value.replace(tzinfo=agency_zone()).astimezone(dt.UTC)


@bp.post("/cases/<reference>/calls")
def log_call(reference: str):
    case = staff_case(reference)

    def do(form):
        recorded = record_contact(
            db.session,
            case,
            channel="call",
            direction="outbound",
            outcome=form.outcome.data,
            occurred_at=_local_now_or(form.occurred_at.data),
            actor=actor(),
            note=form.note.data or None,
            target=form.phone.data,
        )
        if recorded.violations:
            return "Call logged. It broke a rule and a supervisor was alerted: " + "; ".join(
                v.message for v in recorded.violations
            )
        return "Call logged."

    return act(case, "call_form", do)


@bp.post("/cases/<reference>/notes")
def note(reference: str):
    case = staff_case(reference)
    return act(
        case,
        "note_form",
        lambda f: (add_note(db.session, case, f.body.data, actor=actor()), "Note added.")[1],
    )


def _message_context(case: Case) -> tuple[str, dict]:
    """The debtor's language and what the email and text templates show."""
    language = case.debtor.language if case.debtor.language in LANGUAGES else "en"
    context = {
        "case": case,
        "agency": agency_letterhead(),
        "balance": balance_cents(db.session, case.id),
    }
    return language, context


@bp.post("/cases/<reference>/emails")
def email(reference: str):
    case = staff_case(reference)

    def do(form):
        language, context = _message_context(case)
        subject, body = render_email(form.template.data, language, **context)
        send_case_email(
            db.session, case, to=form.to.data, subject=subject, body=body, actor=actor()
        )
        return (
            f"Email queued to {form.to.data}. It counts as sent once the mail server takes it; "
            "the timeline shows whether it did."
        )

    return act(case, "email_form", do)


@bp.post("/cases/<reference>/texts")
def text(reference: str):
    case = staff_case(reference)

    def do(form):
        language, context = _message_context(case)
        body = render_text(form.template.data, language, **context)
        send_case_text(db.session, case, to=form.to.data, body=body, actor=actor())
        return (
            f"Text queued to {form.to.data}. It counts as sent once the text provider takes it; "
            "the timeline shows whether it did."
        )

    return act(case, "text_form", do)


@bp.post("/cases/<reference>/cease")
def cease(reference: str):
    case = staff_case(reference)

    def do(form):
        debtor_rules.record_cease(
            db.session, case.debtor, at=utcnow(), actor=actor(), case_id=case.id
        )
        kept = store_upload(form.document.data, case, "cease_letter")
        letter = " The debtor's letter is kept with the case." if kept else ""
        return "Cease request recorded: only the notices the law allows may be sent." + letter

    return act(case, "cease_form", do)


@bp.post("/cases/<reference>/attorney")
def attorney(reference: str):
    case = staff_case(reference)

    def do(form):
        debtor_rules.record_attorney(
            db.session,
            case.debtor,
            name=form.name.data,
            phone=form.phone.data,
            email=form.email.data,
            at=utcnow(),
            actor=actor(),
            case_id=case.id,
        )
        kept = store_upload(form.document.data, case, "attorney_letter")
        letter = " The debtor's letter is kept with the case." if kept else ""
        return "Attorney recorded: contact goes to the attorney from now on." + letter

    return act(case, "attorney_form", do)


@bp.post("/cases/<reference>/inconvenient-times")
def inconvenient(reference: str):
    case = staff_case(reference)

    def do(form):
        ranges = list(case.debtor.inconvenient_times) + [
            {
                "days": [int(d) for d in form.days.data],
                "start": form.start.data.strftime("%H:%M"),
                "end": form.end.data.strftime("%H:%M"),
            }
        ]
        debtor_rules.set_inconvenient_times(
            db.session, case.debtor, ranges, actor=actor(), case_id=case.id
        )
        return "Inconvenient time recorded."

    return act(case, "inconvenient_form", do)


@bp.post("/cases/<reference>/opt-out")
def opt_out(reference: str):
    case = staff_case(reference)

    def do(form):
        debtor_rules.opt_out(
            db.session, case.debtor, form.channel.data, at=utcnow(), actor=actor(), case_id=case.id
        )
        return f"The debtor is opted out of {form.channel.data}."

    return act(case, "optout_form", do)


@bp.post("/cases/<reference>/monthly-statements")
def monthly_statements(reference: str):
    case = staff_case(reference)

    def do(form):
        wanted = form.wanted.data
        debtor_rules.set_monthly_statements(
            db.session, case.debtor, wanted, actor=actor(), case_id=case.id
        )
        if wanted:
            return "The debtor gets a statement of balance every month (the reminders job)."
        return "No more monthly statements for the debtor."

    return act(case, "statements_form", do)


@bp.post("/cases/<reference>/phone-type")
def phone_type(reference: str):
    case = staff_case(reference)

    def do(form):
        phone = debtor_rules.set_phone_type(
            db.session,
            case.debtor,
            form.number.data,
            form.type.data,
            actor=actor(),
            case_id=case.id,
        )
        return f"{phone.number} is recorded as {phone.type}."

    return act(case, "phone_type_form", do)


@bp.post("/cases/<reference>/situation")
def situation(reference: str):
    case = staff_case(reference)

    def do(form):
        debtor_rules.set_situation(
            db.session, case.debtor, form.situation.data, actor=actor(), case_id=case.id
        )
        return "Situation saved."

    return act(case, "situation_form", do)
