"""The collector's workspace: the queue, the case screen, the shared way its forms are
handled (`act`), and closing a case. The case screen's other actions are in
agency/case_contact.py, agency/case_papers.py and agency/case_plans.py."""

from __future__ import annotations

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
    PhoneTypeForm,
    PlanForm,
    PromiseForm,
    ReversalForm,
    SituationForm,
    StatementsForm,
    TextForm,
    VerificationForm,
)
from agency.staff import actor, bp
from cases import limitations
from cases.audit import AuditEvent
from cases.case import Case, change_status
from cases.compliance import NOTICE_DAYS, window
from cases.contact_log import ContactRefused, debtor_facts, history
from cases.contacts import CaseNote, Contact
from cases.disputes import open_disputes
from cases.documents import Document
from cases.ledger import LedgerEntry, itemization
from cases.messages import OutboundMessage
from cases.model import utcnow
from cases.offers import SettlementOffer
from cases.plans import PromiseToPay, active_plan
from cases.queue import queue_for
from cases.users import User
from shell.extensions import db
from shell.timezone import agency_today
from shell.unit_of_work import attempt


def staff_case(reference: str) -> Case:
    case = db.session.scalar(sa.select(Case).where(Case.reference == reference.upper()))
    if case is None:
        abort(404)
    return case


def _forms(case: Case) -> dict:
    call = CallForm(prefix="call")
    # A number a call found to be someone else's is never offered again (SPEC §6.13).
    call.phone.choices = [p.number for p in case.debtor.own_phones] + ["other"]
    phone_type = PhoneTypeForm(prefix="phonetype")
    phone_type.number.choices = [p.number for p in case.debtor.own_phones]
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
        "phone_type_form": phone_type,
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
        p.number for p in case.debtor.own_phones if p.text_consent and not p.texts_opted_out_at
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
    limitation = limitations.of_case(db.session, case)
    facts = debtor_facts(case)
    past = history(db.session, case.id)
    windows = {ch: window(facts, past, ch, now) for ch in ("call", "text", "email")}
    # A number a rule of its own refuses (Massachusetts' other numbers) while calls are allowed.
    refused_numbers = []
    if windows["call"].allowed:
        for phone in case.debtor.own_phones:
            answer = window(facts, past, "call", now, target=phone.number)
            if not answer.allowed:
                refused_numbers.append((phone.number, answer))
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
        limitation=limitation,
        time_barred=limitation is not None and limitation.time_barred(agency_today()),
        facts=facts,
        windows=windows,
        refused_numbers=refused_numbers,
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
        notice_days=NOTICE_DAYS,
        outbox=db.session.scalars(
            sa.select(OutboundMessage)
            .where(OutboundMessage.case_id == case.id)
            .order_by(OutboundMessage.id.desc())
        ).all(),
        **forms,
    ), status


def _timeline(case: Case) -> list[dict]:
    """Contacts, messages not (yet) sent, notes and audit events as one list, newest first.

    A sent email or text is its contact (with `message` beside it); one still queued, failed
    or held is a `message` item at the time it was queued, saying so and why: it was no
    contact with the debtor."""
    items: list[dict] = []
    messages = db.session.scalars(
        sa.select(OutboundMessage).where(OutboundMessage.case_id == case.id)
    ).all()
    sent = {m.contact_id: m for m in messages if m.contact_id is not None}
    for c in db.session.scalars(sa.select(Contact).where(Contact.case_id == case.id)):
        items.append({"at": c.occurred_at, "kind": "contact", "item": c, "message": sent.get(c.id)})
    for m in messages:
        if m.contact_id is None:
            items.append({"at": m.created_at, "kind": "message", "item": m})
    for n in db.session.scalars(sa.select(CaseNote).where(CaseNote.case_id == case.id)):
        items.append({"at": n.created_at, "kind": "note", "item": n})
    for e in db.session.scalars(
        sa.select(AuditEvent).where(
            AuditEvent.case_id == case.id,
            AuditEvent.action != "contact.recorded",
            AuditEvent.action.not_like("message.%"),  # the message items say it
        )
    ):
        items.append({"at": e.at, "kind": "event", "item": e})
    items.sort(key=lambda i: i["at"], reverse=True)
    return items[:200]


def act(case: Case, form_key: str, action) -> object:
    """Validate one of the case screen's forms and run its action, or show the errors. A
    refused action leaves nothing behind (it runs in `attempt()`); the request commits."""
    forms = _forms(case)
    form = forms[form_key]
    if form.validate_on_submit():
        try:
            with attempt():
                message = action(form)
        except ContactRefused as exc:
            flash(f"Not sent: {exc}", "error")
        except ValueError as exc:  # every refusal in the domain is a ValueError with a reason
            flash(str(exc), "error")
        else:
            flash(message, "success")
            return redirect(url_for("staff.case", reference=case.reference))
    elif request.method == "POST" and not form.errors:
        abort(400)
    else:
        for name, errors in form.errors.items():
            label = getattr(form, name).label.text if hasattr(form, name) else name
            flash(f"{label}: {'; '.join(errors)}", "error")
    return _render_case(case, forms, 422)


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
