"""The collector's workspace: the queue, the case screen and its actions (/agency)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm

from agency.case_forms import (
    WEEKDAYS,
    AttorneyForm,
    CallForm,
    CloseForm,
    DisputeForm,
    EmailForm,
    InconvenientForm,
    LetterForm,
    NoteForm,
    OfferForm,
    OptOutForm,
    PaymentForm,
    PlanForm,
    PromiseForm,
    ReversalForm,
    SituationForm,
    StatementsForm,
    TextForm,
    VerificationForm,
)
from agency.staff import actor, bp
from cases import debtors as debtor_rules
from cases.audit import AuditEvent
from cases.case import Case, TransitionError, change_status
from cases.compliance import window
from cases.contact_log import (
    ContactRefused,
    debtor_facts,
    gate,
    history,
    record_contact,
)
from cases.contacts import CaseNote, Contact, add_note
from cases.disputes import open_disputes, record_dispute, send_verification
from cases.documents import Document
from cases.ledger import LedgerEntry, balance_cents, itemization
from cases.messages import OutboundMessage, send_case_email, send_case_text
from cases.model import utcnow
from cases.notices import (
    LANGUAGES,
    NoticeError,
    letter_data,
    letter_purpose,
    mark_validation_sent,
    validation_notice_data,
)
from cases.offers import SettlementOffer
from cases.plans import (
    PromiseToPay,
    active_plan,
    create_plan,
    record_promise,
)
from cases.queue import queue_for
from cases.users import User
from correspondence.mail import render_email, render_text
from correspondence.pdf import agency_letterhead, render_pdf
from correspondence.plan_agreement import store_agreement
from shell.document_store import check_upload, inline_response, store
from shell.extensions import db
from shell.timezone import agency_today, agency_zone


def staff_case(reference: str) -> Case:
    case = db.session.scalar(sa.select(Case).where(Case.reference == reference.upper()))
    if case is None:
        abort(404)
    return case


def _forms(case: Case) -> dict:
    call = CallForm(prefix="call")
    call.phone.choices = [p.number for p in case.debtor.phones] + ["other"]
    return {
        "call_form": call,
        "note_form": NoteForm(prefix="note"),
        "promise_form": PromiseForm(prefix="promise"),
        "plan_form": PlanForm(prefix="plan"),
        "dispute_form": DisputeForm(prefix="dispute"),
        "attorney_form": AttorneyForm(prefix="attorney"),
        "inconvenient_form": InconvenientForm(prefix="inconvenient"),
        "optout_form": OptOutForm(prefix="optout"),
        "statements_form": StatementsForm(prefix="stm", wanted=case.debtor.monthly_statements),
        "situation_form": SituationForm(prefix="sit"),
        "close_form": CloseForm(prefix="close"),
        "verification_form": VerificationForm(prefix="ver"),
        "plain_form": FlaskForm(),
        "email_form": _email_form(case),
        "text_form": _text_form(case),
        "letter_form": LetterForm(prefix="letter"),
        "payment_form": PaymentForm(prefix="pay"),
        "reversal_form": ReversalForm(prefix="rev"),
        "offer_form": OfferForm(prefix="offer"),
    }


def _email_form(case: Case) -> FlaskForm:
    form = EmailForm(prefix="email")
    form.to.choices = [e.address for e in case.debtor.emails if not e.opted_out_at]
    if not form.template.data and case.debtor.situation in ("hardship", "juggling"):
        form.template.data = "payment_options"  # lead with a plan for those who cannot pay all
    return form


def _text_form(case: Case) -> FlaskForm:
    """Only the phones the debtor agreed to receive texts at and did not opt out of."""
    form = TextForm(prefix="text")
    form.to.choices = [
        p.number for p in case.debtor.phones if p.text_consent and not p.texts_opted_out_at
    ]
    if not form.template.data and case.debtor.situation in ("hardship", "juggling"):
        form.template.data = "payment_options"
    return form


# The rows a collector sees at once (ranked among twice as many): they work from the top, and
# "next case" takes the first callable one.
QUEUE_PAGE = 25


@bp.get("/queue")
def queue():
    only = request.args.get("only", "")
    collector_id = current_user.id
    collectors = []  # whose queue to show: a supervisor's choice
    if current_user.role in ("admin", "supervisor"):
        collector_id = request.args.get("collector", current_user.id, type=int)
        collectors = db.session.scalars(
            sa.select(User)
            .where(User.role.in_(("collector", "supervisor")), User.active)
            .order_by(User.email)
        ).all()
    rows = queue_for(
        db.session, collector_id, now=utcnow(), today=agency_today(), limit=QUEUE_PAGE, only=only
    )
    return render_template(
        "agency/queue.html",
        rows=rows,
        only=only,
        collectors=collectors,
        collector_id=collector_id,
        form=FlaskForm(),
    )


@bp.get("/queue/next")
def next_case():
    rows = queue_for(
        db.session, current_user.id, now=utcnow(), today=agency_today(), limit=1, only="callable"
    )
    if not rows:
        flash(
            "Nothing to call right now: no case in your queue may be called at this hour.", "info"
        )
        return redirect(url_for("staff.queue"))
    return redirect(url_for("staff.case", reference=rows[0].case.reference))


@bp.get("/cases/<reference>")
def case(reference: str):
    case = staff_case(reference)
    return _render_case(case, _forms(case))


def _reversed_amounts(entries: list[LedgerEntry]) -> dict[int, int]:
    """How much of each payment has been reversed, from the case's entries already read."""
    reversed_amounts = dict.fromkeys((e.id for e in entries if e.reverses_id is None), 0)
    for e in entries:
        if e.reverses_id is not None:
            reversed_amounts[e.reverses_id] += e.amount_cents
    return reversed_amounts


def _render_case(case: Case, forms: dict, status: int = 200):
    now = utcnow()
    facts = debtor_facts(case)
    past = history(db.session, case.id)
    windows = {ch: window(facts, past, ch, now) for ch in ("call", "text", "email")}
    local_times = [(zone, now.astimezone(ZoneInfo(zone))) for zone in facts.zones]
    timeline = _timeline(case)
    entries = db.session.scalars(
        sa.select(LedgerEntry)
        .where(LedgerEntry.case_id == case.id)
        .order_by(LedgerEntry.received_at, LedgerEntry.id)
    ).all()
    promises = db.session.scalars(
        sa.select(PromiseToPay)
        .where(PromiseToPay.case_id == case.id)
        .order_by(PromiseToPay.due_on.desc())
    ).all()
    return render_template(
        "agency/case.html",
        case=case,
        facts=facts,
        windows=windows,
        local_times=local_times,
        timeline=timeline,
        entries=entries,
        items=itemization(db.session, case),
        promises=promises,
        plan=active_plan(db.session, case.id),
        disputes=open_disputes(db.session, case.id),
        weekdays=WEEKDAYS,
        reversed_amounts=_reversed_amounts(entries),
        documents=db.session.scalars(
            sa.select(Document).where(Document.case_id == case.id).order_by(Document.id.desc())
        ).all(),
        offers=db.session.scalars(
            sa.select(SettlementOffer)
            .where(SettlementOffer.case_id == case.id)
            .order_by(SettlementOffer.id.desc())
        ).all(),
        today=agency_today(),
        outbox=db.session.scalars(
            sa.select(OutboundMessage)
            .where(OutboundMessage.case_id == case.id)
            .order_by(OutboundMessage.id.desc())
        ).all(),
        **forms,
    ), status


def _timeline(case: Case) -> list[dict]:
    """Contacts, notes and audit events as one list, newest first."""
    items: list[dict] = []
    for c in db.session.scalars(sa.select(Contact).where(Contact.case_id == case.id)):
        items.append({"at": c.occurred_at, "kind": "contact", "item": c})
    for n in db.session.scalars(sa.select(CaseNote).where(CaseNote.case_id == case.id)):
        items.append({"at": n.created_at, "kind": "note", "item": n})
    for e in db.session.scalars(
        sa.select(AuditEvent).where(
            AuditEvent.case_id == case.id, AuditEvent.action != "contact.recorded"
        )
    ):
        items.append({"at": e.at, "kind": "event", "item": e})
    items.sort(key=lambda i: i["at"], reverse=True)
    return items[:200]


def act(case: Case, form_key: str, action) -> object:
    """Validate one of the case screen's forms, run its action, commit, or show the errors."""
    forms = _forms(case)
    form = forms[form_key]
    if form.validate_on_submit():
        try:
            message = action(form)
        except ContactRefused as exc:
            db.session.rollback()
            flash(f"Not sent: {exc}", "error")
        except ValueError as exc:  # every refusal in the domain is a ValueError with a reason
            db.session.rollback()
            flash(str(exc), "error")
        else:
            db.session.commit()
            flash(message, "success")
            return redirect(url_for("staff.case", reference=case.reference))
    elif request.method == "POST" and not form.errors:
        abort(400)
    else:
        for name, errors in form.errors.items():
            label = getattr(form, name).label.text if hasattr(form, name) else name
            flash(f"{label}: {'; '.join(errors)}", "error")
    return _render_case(case, forms, 422)


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


@bp.post("/cases/<reference>/promises")
def promise(reference: str):
    case = staff_case(reference)

    def do(form):
        record_promise(
            db.session,
            case,
            amount_cents=form.amount.data,
            due_on=form.due_on.data,
            today=agency_today(),
            actor=actor(),
        )
        return "Promise to pay recorded."

    return act(case, "promise_form", do)


@bp.post("/cases/<reference>/plans")
def plan(reference: str):
    case = staff_case(reference)

    def do(form):
        plan = create_plan(
            db.session,
            case,
            frequency=form.frequency.data,
            count=form.count.data,
            first_on=form.first_on.data,
            today=agency_today(),
            actor=actor(),
            down_payment_cents=form.down_payment.data or 0,
            autopay=form.autopay.data,
        )
        store_agreement(case, plan, uploaded_by_id=current_user.id)
        return f"Payment plan set up: {len(plan.installments)} payments."

    return act(case, "plan_form", do)


@bp.post("/cases/<reference>/disputes")
def dispute(reference: str):
    case = staff_case(reference)

    def do(form):
        d = record_dispute(
            db.session,
            case,
            reason=form.reason.data,
            channel=form.channel.data,
            received_at=utcnow(),
            actor=actor(),
            on_local=agency_today(),
        )
        _store_upload(form.document.data, case, "dispute_upload")
        if d.within_validation_period:
            return "Dispute recorded. The case is on hold until verification is sent."
        return "Dispute recorded (outside the validation period: flagged, not held)."

    return act(case, "dispute_form", do)


def _store_upload(upload, case: Case, kind: str) -> Document | None:
    """Keep an uploaded document with the case (refusing anything but PDF/PNG/JPEG)."""
    if not upload or not upload.filename:
        return None
    data = upload.read()
    content_type = check_upload(data)
    return store(
        data,
        filename=upload.filename,
        content_type=content_type,
        kind=kind,
        case_id=case.id,
        debtor_id=case.debtor_id,
        uploaded_by_id=current_user.id,
    )


@bp.post("/cases/<reference>/verification")
def verification(reference: str):
    """Send the verification letter (with the client's documents, if any): the hold ends."""
    case = staff_case(reference)

    def do(form):
        _store_upload(form.document.data, case, "verification")
        letter = _send_letter(case, "verification", note=form.note.data)
        send_verification(
            db.session, case, document_id=letter.id, actor=actor(), note=form.note.data
        )
        return "Verification sent; collection may resume."

    return act(case, "verification_form", do)


@bp.post("/cases/<reference>/letters")
def letter(reference: str):
    case = staff_case(reference)

    def do(form):
        _send_letter(case, form.kind.data)
        return "Letter generated and recorded as sent."

    return act(case, "letter_form", do)


def _send_letter(case: Case, kind: str, note: str = "") -> Document:
    """Render a letter, refuse it if a rule forbids it, keep it and record it as sent."""
    purpose = letter_purpose(kind)
    now = utcnow()
    gate(db.session, case, "letter", now, purpose=purpose)
    data = letter_data(
        db.session, case, kind, on=agency_today(), agency=agency_letterhead(), note=note
    )
    pdf = render_pdf("pdf/letter.html", l=data)
    document = store(
        pdf,
        filename=f"{kind}-{case.reference}.pdf",
        content_type="application/pdf",
        kind="letter",
        case_id=case.id,
        debtor_id=case.debtor_id,
        uploaded_by_id=current_user.id,
    )
    record_contact(
        db.session,
        case,
        channel="letter",
        direction="outbound",
        occurred_at=now,
        actor=actor(),
        subject=data["title"],
        document_id=document.id,
        purpose=purpose,
    )
    return document


@bp.post("/cases/<reference>/cease")
def cease(reference: str):
    case = staff_case(reference)

    def do(form):
        debtor_rules.record_cease(
            db.session, case.debtor, at=utcnow(), actor=actor(), case_id=case.id
        )
        return "Cease request recorded: only the notices the law allows may be sent."

    return act(case, "plain_form", do)


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
        return "Attorney recorded: contact goes to the attorney from now on."

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


@bp.post("/cases/<reference>/situation")
def situation(reference: str):
    case = staff_case(reference)

    def do(form):
        debtor_rules.set_situation(
            db.session, case.debtor, form.situation.data, actor=actor(), case_id=case.id
        )
        return "Situation saved."

    return act(case, "situation_form", do)


@bp.post("/cases/<reference>/close")
def close(reference: str):
    case = staff_case(reference)

    def do(form):
        change_status(
            db.session,
            case,
            "closed",
            actor=actor(),
            reason=form.reason.data,
            close_reason=form.close_reason.data,
        )
        return f"Case closed ({form.close_reason.data})."

    return act(case, "close_form", do)


@bp.post("/cases/<reference>/validation-notice")
def validation_notice(reference: str):
    case = staff_case(reference)
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        send_validation_notice(case, actor=actor())
    except (NoticeError, TransitionError) as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("staff.case", reference=case.reference))
    db.session.commit()
    flash("Validation notice generated and sent; the case is active.", "success")
    return redirect(url_for("staff.case", reference=case.reference))


def send_validation_notice(case: Case, *, actor) -> Document:
    """Generate the notice in the debtor's language (and English), keep it, mark it sent."""
    sent_at = utcnow()
    sent_on = agency_today()
    language = case.debtor.language if case.debtor.language in LANGUAGES else "en"
    data = validation_notice_data(
        db.session, case, sent_on=sent_on, agency=agency_letterhead(), language=language
    )
    pdf = render_pdf("pdf/validation_notice.html", n=data)
    document = store(
        pdf,
        filename=f"validation-notice-{case.reference}-{language}.pdf",
        content_type="application/pdf",
        kind="validation_notice",
        case_id=case.id,
        debtor_id=case.debtor_id,
        uploaded_by_id=actor.user_id,
    )
    mark_validation_sent(
        db.session, case, sent_at=sent_at, sent_on=sent_on, document_id=document.id, actor=actor
    )
    return document


@bp.get("/documents/<int:document_id>")
def document(document_id: int):
    doc = db.session.get(Document, document_id) or abort(404)
    return inline_response(doc)


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
        return f"Email queued to {form.to.data}."

    return act(case, "email_form", do)


@bp.post("/cases/<reference>/texts")
def text(reference: str):
    case = staff_case(reference)

    def do(form):
        language, context = _message_context(case)
        body = render_text(form.template.data, language, **context)
        send_case_text(db.session, case, to=form.to.data, body=body, actor=actor())
        return f"Text queued to {form.to.data}."

    return act(case, "text_form", do)
