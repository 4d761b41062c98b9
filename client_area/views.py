"""The client area (/client): its blueprint, the dashboard and the client's own cases (recall,
and payments made to the client directly). Referral files are in client_area.referral_pages."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm import selectinload

from cases import audit, limitations
from cases.case import OPEN_STATUSES, STATUSES, Case, TransitionError, change_status, search
from cases.contacts import Contact
from cases.disputes import Dispute
from cases.early_out import recovery as early_out_recovery
from cases.ledger import cents_sum, entries_of
from cases.messages import OutboundMessage
from client_area.forms import DirectPaymentForm, RecallForm
from correspondence.charts import hbar_chart
from payments.posting import (
    LedgerEntry,
    LedgerError,
    ReceivedDateError,
    balance_cents,
    balances,
    client_external_id,
    post_payment,
)
from shell.extensions import db
from shell.security import require_roles
from shell.timezone import agency_today
from shell.unit_of_work import attempt

bp = Blueprint("client_area", __name__, url_prefix="/client")
bp.before_request(require_roles("client"))

PAGE_SIZE = 25
MESSAGES_SHOWN = 50  # the case page's latest emails and texts
# Counted exactly up to this many; beyond, the list says "more than 10,000" (a client's whole
# book of half a million cases is not counted on every page).
COUNT_LIMIT = 10_000
# A search's matches are counted to fewer: each is a row read to check it (the trigram index
# only narrows them down), where the plain list counts index entries.
SEARCH_COUNT_LIMIT = 1_000
# Page numbers go this far by OFFSET (a short range of an index); "Next" and "Previous" go on
# from any page by the sort key of the row at the page's edge.
MAX_PAGE = 1_000_000
# Each order: its columns, and whether each is descending. Every order ends in a unique column,
# so the row at a page's edge says exactly where the next page starts.
SORTS = {
    "newest": ((Case.referred_on, True), (Case.id, True)),
    "oldest": ((Case.referred_on, False), (Case.id, False)),
    "reference": ((Case.reference, False),),
    "status": ((Case.status, False), (Case.reference, False)),
}


def actor() -> audit.Actor:
    return audit.Actor.user(current_user)


def own_case(reference: str) -> Case:
    """The signed-in client's case with this reference, or 404 (never another client's)."""
    case = db.session.scalar(
        sa.select(Case).where(
            Case.reference == reference.upper(), Case.client_id == current_user.client_id
        )
    )
    if case is None:
        abort(404)
    return case


# --- dashboard and cases -------------------------------------------------------------------


@bp.get("/")
def dashboard():
    client_id = current_user.client_id
    counts = dict(
        db.session.execute(
            sa.select(Case.status, sa.func.count())
            .where(Case.client_id == client_id)
            .group_by(Case.status)
        ).all()
    )
    month_start = agency_today().replace(day=1)
    money = dict(
        db.session.execute(
            sa.select(LedgerEntry.kind, cents_sum(LedgerEntry.amount_cents))
            .join(Case, Case.id == LedgerEntry.case_id)
            .where(Case.client_id == client_id)
            .group_by(LedgerEntry.kind)
        ).all()
    )
    this_month = dict(
        db.session.execute(
            sa.select(LedgerEntry.kind, cents_sum(LedgerEntry.amount_cents))
            .join(Case, Case.id == LedgerEntry.case_id)
            .where(
                Case.client_id == client_id,
                LedgerEntry.received_at >= month_start,
                LedgerEntry.kind.in_(("payment", "direct_payment", "reversal")),
            )
            .group_by(LedgerEntry.kind)
        ).all()
    )
    placed = money.get("placement", 0)
    collected = -sum(money.get(k, 0) for k in ("payment", "direct_payment", "reversal"))
    recent = db.session.execute(
        sa.select(Contact.occurred_at, Contact.channel, Contact.direction, Case.reference)
        .join(Case, Case.id == Contact.case_id)
        .where(Case.client_id == client_id)
        .order_by(Contact.occurred_at.desc())
        .limit(10)
    ).all()
    open_disputes = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Dispute)
        .join(Case, Case.id == Dispute.case_id)
        .where(Case.client_id == client_id, Dispute.status == "open")
    )
    early_out = early_out_recovery(db.session, client_id)
    return render_template(
        "client/dashboard.html",
        open_disputes=open_disputes,
        counts=counts,
        placed=placed,
        collected=collected,
        collected_this_month=-sum(this_month.values()),
        recent=recent,
        liquidation=(collected / placed * 100) if placed else 0,
        early_out=early_out,
        early_out_chart=hbar_chart(
            [(f"Day {s.day} {s.channel}", s.paid) for s in early_out.steps],
            title="Accounts paid after each early-out reminder",
            fmt=str,
        ),
    )


def _edge(case: Case, sort: str) -> str:
    """Where a page starts or ends, as the query string carries it: the sort key of its first
    or last row ("2026-11-03.412" for the newest and oldest orders)."""
    if sort in ("newest", "oldest"):
        return f"{case.referred_on.isoformat()}.{case.id}"
    if sort == "status":
        return f"{case.status}.{case.reference}"
    return case.reference


def _key(edge: str, sort: str) -> tuple | None:
    """The sort key an `after` or `before` in the query string gives, or None if it is not
    one (then the list starts at the page number instead)."""
    first, _, second = edge.partition(".")
    try:
        if sort in ("newest", "oldest"):
            return (dt.date.fromisoformat(first), int(second))
        if sort == "status":
            return (first, second) if first in STATUSES and second else None
    except ValueError:
        return None
    return (edge,) if edge else None


def _beyond(sort: str, key: tuple, backwards: bool):
    """Rows after the key in the order (before it, backwards)."""
    columns = [c for c, _ in SORTS[sort]]
    descending = SORTS[sort][0][1]  # each order runs all one way
    row, edge = sa.tuple_(*columns), sa.tuple_(*(sa.literal(v) for v in key))
    return row < edge if descending != backwards else row > edge


def _ordered(sort: str, backwards: bool = False) -> list:
    return [
        column.desc() if descending != backwards else column.asc()
        for column, descending in SORTS[sort]
    ]


@bp.get("/cases")
def cases():
    page = min(max(request.args.get("page", 1, type=int), 1), MAX_PAGE)
    q = request.args.get("q", "").strip()[:100]
    status = request.args.get("status", "")
    sort = request.args.get("sort", "newest")
    sort = sort if sort in SORTS else "newest"
    mine = current_user.client_id
    ids = search(db.session, sa.select(Case.id).where(Case.client_id == mine), q, status, mine)
    # Counted up to one past the limit: exact for a few thousand, "more than" for a big book.
    limit = SEARCH_COUNT_LIMIT if q else COUNT_LIMIT
    total = db.session.scalar(
        sa.select(sa.func.count()).select_from(ids.limit(limit + 1).subquery())
    )
    exact = total <= limit
    after = _key(request.args.get("after", ""), sort)
    before = None if after else _key(request.args.get("before", ""), sort)
    if after or before:
        # "Next" or "Previous": the page beside a row, however deep, from the index alone.
        edge = after or before
        chosen = ids.where(_beyond(sort, edge, bool(before))).order_by(
            *_ordered(sort, bool(before))
        )
        found = db.session.scalars(chosen.limit(PAGE_SIZE + 1)).all()
        more = len(found) > PAGE_SIZE  # beyond this page, in the direction read
        found = found[:PAGE_SIZE]
        if before:
            found.reverse()
        has_previous, has_next = (more, True) if before else (True, more)
        if not found:  # nothing beyond: from the start
            has_previous, page = False, 1
    if not (after or before) or not found:
        if exact:
            # Not a whole number: the first page; past the end (however far): the last.
            page = min(page, max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1))
        ordered = ids.order_by(*_ordered(sort))
        found = db.session.scalars(
            ordered.limit(PAGE_SIZE + 1).offset((page - 1) * PAGE_SIZE)
        ).all()
        if not found and page > 1:  # past the end of a book too big to count on each page
            total, exact = (
                db.session.scalar(sa.select(sa.func.count()).select_from(ids.subquery())),
                True,
            )
            page = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
            found = db.session.scalars(
                ordered.limit(PAGE_SIZE + 1).offset((page - 1) * PAGE_SIZE)
            ).all()
        has_previous, has_next = page > 1, len(found) > PAGE_SIZE
        found = found[:PAGE_SIZE]
    shown = {
        c.id: c
        for c in db.session.scalars(
            sa.select(Case).where(Case.id.in_(found)).options(selectinload(Case.debtor))
        )
    }
    rows = [shown[i] for i in found]
    pages = (total + PAGE_SIZE - 1) // PAGE_SIZE if exact else None
    return render_template(
        "client/cases.html",
        cases=rows,
        balances=balances(db.session, found),
        page=page,
        pages=max(pages, 1) if pages is not None else None,
        more_pages=(limit + PAGE_SIZE - 1) // PAGE_SIZE,
        total=total,
        count_limit=limit,
        next_after=_edge(rows[-1], sort) if has_next and rows else None,
        previous_before=_edge(rows[0], sort) if has_previous and rows and page > 2 else None,
        has_previous=has_previous,
        q=q,
        status=status,
        sort=sort,
        statuses=STATUSES,
        sorts=list(SORTS),
    )


@bp.get("/cases/<reference>")
def case(reference: str):
    case = own_case(reference)
    return _case_page(case, RecallForm(), DirectPaymentForm())


def _case_page(case: Case, recall_form, payment_form, status: int = 200):
    entries = entries_of(db.session, case.id)
    # A summary of contact activity; the agency's notes and message texts stay internal. An
    # email or text is a contact once the provider took it; the messages list says how each
    # went (queued, sent, failed or held, and why), without its text.
    activity = db.session.execute(
        sa.select(Contact.channel, sa.func.count(), sa.func.max(Contact.occurred_at))
        .where(Contact.case_id == case.id)
        .group_by(Contact.channel)
    ).all()
    messages = db.session.execute(
        sa.select(
            OutboundMessage.created_at,
            OutboundMessage.channel,
            OutboundMessage.status,
            OutboundMessage.sent_at,
            OutboundMessage.error,
        )
        .where(OutboundMessage.case_id == case.id)
        .order_by(OutboundMessage.id.desc())
        .limit(MESSAGES_SHOWN)
    ).all()
    limitation = limitations.of_case(db.session, case)
    disputes = db.session.scalars(
        sa.select(Dispute).where(Dispute.case_id == case.id).order_by(Dispute.received_at)
    ).all()
    return render_template(
        "client/case.html",
        disputes=disputes,
        case=case,
        limitation=limitation,
        time_barred=limitation is not None and limitation.time_barred(agency_today()),
        entries=entries,
        activity=activity,
        messages=messages,
        balance=balance_cents(db.session, case.id),
        recall_form=recall_form,
        payment_form=payment_form,
    ), status


@bp.post("/cases/<reference>/recall")
def recall(reference: str):
    case = own_case(reference)
    form = RecallForm()
    if not form.validate_on_submit():
        return _case_page(case, form, DirectPaymentForm(), 422)
    if case.status not in OPEN_STATUSES:
        flash(f"This case is {case.status} and can no longer be recalled.", "error")
        return _case_page(case, form, DirectPaymentForm(), 422)
    try:
        with attempt():
            change_status(
                db.session,
                case,
                "closed",
                actor=actor(),
                reason=form.reason.data,
                close_reason="recalled",
            )
    except TransitionError as exc:
        flash(str(exc), "error")
        return _case_page(case, form, DirectPaymentForm(), 422)
    flash(f"{case.reference} was recalled. The agency has stopped collecting it.", "success")
    return redirect(url_for("client_area.case", reference=case.reference))


@bp.post("/cases/<reference>/direct-payments")
def direct_payment(reference: str):
    case = own_case(reference)
    form = DirectPaymentForm()
    if form.validate_on_submit():
        try:
            with attempt() as session:
                post_payment(
                    session,
                    case,
                    form.amount.data,
                    external_id=client_external_id(case.client.code, form.reference.data),
                    received_at=form.received_at.data,
                    method=form.method.data,
                    actor=actor(),
                    direct=True,
                    memo="reported by the client",
                    today=agency_today(),
                )
        except ReceivedDateError as exc:
            form.received_at.errors.append(f"{str(exc).capitalize()}.")
        except LedgerError as exc:
            form.amount.errors.append(str(exc).replace("direct:" + case.client.code + ":", ""))
        else:
            flash("Thank you. The payment was recorded and the balance updated.", "success")
            return redirect(url_for("client_area.case", reference=case.reference))
    return _case_page(case, RecallForm(), form, 422)
