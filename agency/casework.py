"""The collector's workspace: the queue, the case screen, the shared way its forms are
handled (`act`), and closing a case. The case screen's other actions are in
agency/case_contact.py, agency/case_papers.py and agency/case_plans.py; its timeline in
agency/case_timeline.py."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy.orm import joinedload

from agency.case_forms import (
    SITUATION_TEMPLATES,
    SITUATION_TONE,
    SITUATION_WORDS,
    WEEKDAYS,
    AttorneyForm,
    CallForm,
    CeaseForm,
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
from agency.case_timeline import timeline
from agency.staff import actor, bp
from cases import limitations
from cases.case import Case, change_status
from cases.compliance import NOTICE_DAYS, window
from cases.contact_log import ContactRefused, debtor_facts, history_of
from cases.contacts import Contact
from cases.debtors import Debtor
from cases.disputes import open_disputes
from cases.documents import Document
from cases.ledger import LedgerEntry, entries_of, itemize
from cases.messages import OutboundMessage
from cases.model import utcnow
from cases.offers import SettlementOffer
from cases.plans import PromiseToPay, active_plan
from cases.queue import queue_for
from cases.users import User
from shell.extensions import db
from shell.form_html import QuickForm
from shell.timezone import agency_today
from shell.unit_of_work import attempt


def staff_case(reference: str) -> Case:
    """The case with its client, debtor and the debtor's addresses, phones and emails, in one
    query (every case page shows them; a debtor has a few of each)."""
    debtor = joinedload(Case.debtor)
    case = (
        db.session.execute(
            sa.select(Case)
            .where(Case.reference == reference.upper())
            .options(
                joinedload(Case.client),
                debtor.joinedload(Debtor.addresses),
                debtor.joinedload(Debtor.phones),
                debtor.joinedload(Debtor.emails),
            )
        )
        .unique()
        .scalar_one_or_none()
    )
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
        "cease_form": CeaseForm(prefix="cease"),
        "inconvenient_form": InconvenientForm(prefix="inconvenient"),
        "optout_form": OptOutForm(prefix="optout"),
        "statements_form": StatementsForm(prefix="stm", wanted=case.debtor.monthly_statements),
        "situation_form": SituationForm(prefix="sit", situation=case.debtor.situation),
        "close_form": CloseForm(prefix="close"),
        "phone_type_form": phone_type,
        "verification_form": VerificationForm(prefix="ver"),
        "plain_form": QuickForm(),
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
    if not form.template.data:  # the situation suggests what to send first
        form.template.data = _suggested(case)[0]
    return form


def _suggested(case: Case) -> tuple[str, str]:
    """The email and text templates the debtor's situation suggests."""
    return SITUATION_TEMPLATES.get(case.debtor.situation, SITUATION_TEMPLATES["unknown"])


def _text_form(case: Case) -> FlaskForm:
    """Only the phones the debtor agreed to receive texts at and did not opt out of."""
    form = TextForm(prefix="text")
    form.to.choices = [
        p.number for p in case.debtor.own_phones if p.text_consent and not p.texts_opted_out_at
    ]
    if not form.template.data:
        form.template.data = _suggested(case)[1]
    return form


# The case screen's action tabs: (id, label, access key). `?tab=` picks one; without
# JavaScript each is a link, with it they are ARIA tabs (static/case-screen.js).
TABS = (
    ("call", "Log a call", "c"),
    ("note", "Note", "n"),
    ("message", "Message", "m"),
    ("promise", "Promise", "p"),
    ("plan", "Plan", "l"),
    ("offer", "Offer", "o"),
    ("dispute", "Dispute", "u"),
    ("prefs", "Preferences", "s"),
    ("represent", "Attorney / cease", "r"),
    ("close", "Close", "x"),
    ("account", "Account", "a"),
)
TAB_IDS = {t[0] for t in TABS}
NEXT_CASE_KEY = "j"
# The tab a form lives on: its errors show there, and a saved form comes back to it (a logged
# call goes on to the note, the common path).
FORM_TABS = {
    "call_form": "note",
    "note_form": "note",
    "email_form": "message",
    "text_form": "message",
    "letter_form": "message",
    "promise_form": "promise",
    "plan_form": "plan",
    "offer_form": "offer",
    "dispute_form": "dispute",
    "verification_form": "dispute",
    "plain_form": "dispute",
    "inconvenient_form": "prefs",
    "optout_form": "prefs",
    "statements_form": "prefs",
    "phone_type_form": "prefs",
    "situation_form": "prefs",
    "attorney_form": "represent",
    "cease_form": "represent",
    "close_form": "close",
    "payment_form": "account",
    "reversal_form": "account",
}


def _error_tab(form_key: str) -> str:
    return "call" if form_key == "call_form" else FORM_TABS.get(form_key, "call")


def _validation_state(case: Case, today) -> str:
    """Where the validation period stands, in words for the case heading."""
    if case.validation_sent_at is None:
        return "validation notice not sent"
    ends = case.validation_period_ends_on
    if ends is None:
        return "validation notice sent"
    if ends >= today:
        left = (ends - today).days
        unconfirmed = "" if case.validation_mailed_on else ", mailing not confirmed"
        return f"validation period until {ends.isoformat()} ({left} day{'s' if left != 1 else ''} left{unconfirmed})"
    return f"validation period ended {ends.isoformat()}"


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
    tab = request.args.get("tab", "call")
    return _render_case(case, _forms(case), tab=tab if tab in TAB_IDS else "call")


def _reversed_amounts(entries: list[LedgerEntry]) -> dict[int, int]:
    """How much of each payment has been reversed, from the case's entries already read."""
    reversed_amounts = dict.fromkeys((e.id for e in entries if e.reverses_id is None), 0)
    for e in entries:
        if e.reverses_id is not None:
            reversed_amounts[e.reverses_id] += e.amount_cents
    return reversed_amounts


def _render_case(case: Case, forms: dict, status: int = 200, tab: str = "call"):
    """The case screen. Each of the case's rows is read once, by the case (never the book):
    its ledger, contacts, outbox and documents serve every part of the page that shows them."""
    now = utcnow()
    today = agency_today()
    entries = entries_of(db.session, case.id)
    contacts = db.session.scalars(
        sa.select(Contact).where(Contact.case_id == case.id).order_by(Contact.id)
    ).all()
    outbox = db.session.scalars(
        sa.select(OutboundMessage)
        .where(OutboundMessage.case_id == case.id)
        .order_by(OutboundMessage.id.desc())
    ).all()
    documents = db.session.scalars(
        sa.select(Document).where(Document.case_id == case.id).order_by(Document.id.desc())
    ).all()
    limitation = limitations.of_case_ledger(case, entries)
    facts = debtor_facts(case)
    past = history_of(contacts, outbox)
    windows = {ch: window(facts, past, ch, now) for ch in ("call", "text", "email")}
    # A number a rule of its own refuses (Massachusetts' other numbers) while calls are allowed.
    refused_numbers = []
    if windows["call"].allowed:
        for phone in case.debtor.own_phones:
            answer = window(facts, past, "call", now, target=phone.number)
            if not answer.allowed:
                refused_numbers.append((phone.number, answer))
    local_times = [(zone, now.astimezone(ZoneInfo(zone))) for zone in facts.zones]
    promises = db.session.scalars(
        sa.select(PromiseToPay)
        .where(PromiseToPay.case_id == case.id)
        .order_by(PromiseToPay.due_on.desc())
    ).all()
    return render_template(
        "agency/case.html",
        case=case,
        limitation=limitation,
        time_barred=limitation is not None and limitation.time_barred(today),
        facts=facts,
        windows=windows,
        refused_numbers=refused_numbers,
        local_times=local_times,
        timeline=timeline(case, contacts, outbox, documents),
        tabs=TABS,
        tab=tab,
        next_case_key=NEXT_CASE_KEY,
        validation_state=_validation_state(case, today),
        situation_words=SITUATION_WORDS.get(case.debtor.situation, case.debtor.situation),
        tone=SITUATION_TONE.get(case.debtor.situation, SITUATION_TONE["unknown"]),
        suggested=_suggested(case),
        entries=entries,
        items=itemize(case, entries),
        promises=promises,
        plan=active_plan(db.session, case.id),
        disputes=open_disputes(db.session, case.id),
        weekdays=WEEKDAYS,
        reversed_amounts=_reversed_amounts(entries),
        documents=documents,
        offers=db.session.scalars(
            sa.select(SettlementOffer)
            .where(SettlementOffer.case_id == case.id)
            .order_by(SettlementOffer.id.desc())
        ).all(),
        today=today,
        notice_days=NOTICE_DAYS,
        outbox=outbox,
        **forms,
    ), status


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
            tab = FORM_TABS.get(form_key, "call")
            return redirect(url_for("staff.case", reference=case.reference, tab=tab))
    elif request.method == "POST" and not form.errors:
        abort(400)
    else:
        for name, errors in form.errors.items():
            label = getattr(form, name).label.text if hasattr(form, name) else name
            flash(f"{label}: {'; '.join(errors)}", "error")
    return _render_case(case, forms, 422, tab=_error_tab(form_key))


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
