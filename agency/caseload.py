"""The whole caseload, for supervisors: the case list, assignment, round robin, and the
compliance alerts."""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy.orm import selectinload

from agency.staff import actor, bp
from cases import audit
from cases.assignment import (
    WORKERS,
    AssignmentError,
    assign,
    assign_matching,
    can_work,
    round_robin,
    unassigned,
)
from cases.case import STATUSES, Case, search
from cases.contacts import ComplianceAlert, Contact
from cases.debtors import Debtor
from cases.ledger import balances
from cases.model import utcnow
from cases.sign_in_limits import SignInAlert
from cases.users import User
from shell.extensions import db
from shell.security import roles_required
from shell.unit_of_work import attempt

STAFF_PAGE = 50
# Beyond any caseload, and small enough that its offset fits every database's integer.
MAX_PAGE = 1_000_000


def _matching(args) -> tuple[sa.Select, dict]:
    """The cases the case list's filters select (from the page's query string, or the
    "select all matching" form that repeats it), and the filters as given."""
    q = args.get("q", "").strip()[:100]
    status = args.get("status", "")
    collector = args.get("collector", "")
    filters = {"q": q, "status": status, "collector": collector}
    query = search(db.session, sa.select(Case).join(Debtor, Debtor.id == Case.debtor_id), q, status)
    if args.get("unassigned"):
        query = query.where(unassigned())
        filters["unassigned"] = "1"
    if collector.isdigit():
        query = query.where(Case.assigned_to_id == int(collector))
    return query, filters


@bp.get("/cases")
def cases():
    # Not a whole number: the first page; past the end (however far): the last.
    page = min(max(request.args.get("page", 1, type=int), 1), MAX_PAGE)
    query, filters = _matching(request.args)
    rows = _page_of(query, page)
    total = None
    if not rows and page > 1:  # counted only when asked for a page past the end
        total = _count(query)
        page = max((total + STAFF_PAGE - 1) // STAFF_PAGE, 1)
        rows = _page_of(query, page)
    # Whoever holds cases, inactive included (labelled), for the collector filter.
    staff = db.session.scalars(
        sa.select(User).where(User.role.in_(("admin", *WORKERS))).order_by(User.email)
    ).all()
    workers = [u for u in staff if can_work(u)]
    if len(rows) == STAFF_PAGE or page > 1:  # more than a page: say how many match
        total = total if total is not None else _count(query)
    return render_template(
        "agency/cases.html",
        cases=rows,
        balances=balances(db.session, [c.id for c in rows]),
        filters=filters,
        q=filters["q"],
        status=filters["status"],
        statuses=STATUSES,
        page=page,
        page_size=STAFF_PAGE,
        total=total if total is not None else len(rows),
        workers=workers,
        holders=[u for u in staff if u.role in WORKERS or not u.active],
        names={u.id: u.email + ("" if can_work(u) else " (inactive)") for u in staff},
        form=FlaskForm(),
    )


def _count(query: sa.Select) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))


def _page_of(query: sa.Select, page: int) -> list[Case]:
    return db.session.scalars(
        query.options(selectinload(Case.debtor), selectinload(Case.client))
        .order_by(Case.id.desc())
        .limit(STAFF_PAGE)
        .offset((page - 1) * STAFF_PAGE)
    ).all()


@bp.post("/cases/assign")
@roles_required("admin", "supervisor")
def assign_cases():
    if not FlaskForm().validate_on_submit():
        abort(400)
    collector_id = request.form.get("collector_id", type=int) or 0
    try:
        with attempt():
            if request.form.get("all_matching"):
                query, filters = _matching(request.form)
                count = assign_matching(
                    db.session, query, collector_id, actor=actor(), filters=filters
                )
            else:
                ids = [int(i) for i in request.form.getlist("case_id")]
                count = assign(db.session, ids, collector_id, actor=actor())
    except (ValueError, AssignmentError) as exc:
        flash(f"Nothing assigned: {exc}.", "error")
    else:
        flash(f"{count} case(s) assigned.", "success")
    return redirect(request.referrer or url_for("staff.cases"))


@bp.post("/cases/round-robin")
@roles_required("admin", "supervisor")
def distribute():
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        with attempt():
            given = round_robin(db.session, actor=actor())
    except AssignmentError as exc:
        flash(str(exc), "error")
    else:
        flash(
            f"{sum(given.values())} unassigned case(s) spread across {len(given)} collectors.",
            "success",
        )
    return redirect(url_for("staff.cases"))


@bp.get("/alerts")
@roles_required("admin", "supervisor")
def alerts():
    rows = db.session.execute(
        sa.select(ComplianceAlert, Case.reference, Contact)
        .join(Case, Case.id == ComplianceAlert.case_id)
        .outerjoin(Contact, Contact.id == ComplianceAlert.contact_id)
        .where(ComplianceAlert.resolved_at.is_(None))
        .order_by(ComplianceAlert.created_at.desc())
        .limit(200)
    ).all()
    sign_ins = db.session.scalars(
        sa.select(SignInAlert)
        .where(SignInAlert.resolved_at.is_(None))
        .order_by(SignInAlert.last_failure_at.desc())
        .limit(200)
    ).all()
    return render_template("agency/alerts.html", rows=rows, sign_ins=sign_ins, form=FlaskForm())


def _resolve(alert: ComplianceAlert | SignInAlert, entity: str, **audited):
    """An alert resolved with a note saying what was done (audited); the note is required."""
    if not FlaskForm().validate_on_submit():
        abort(400)
    note = request.form.get("resolution", "").strip()[:1000]
    if not note:
        flash("Say what was done about it.", "error")
        return redirect(url_for("staff.alerts"))
    alert.resolved_at = utcnow()
    alert.resolved_by_id = current_user.id
    alert.resolution = note
    audit.record(db.session, actor(), entity, alert.id, "alert.resolved", **audited, reason=note)
    flash("Alert resolved.", "success")
    return redirect(url_for("staff.alerts"))


@bp.post("/alerts/<int:alert_id>/resolve")
@roles_required("admin", "supervisor")
def resolve_alert(alert_id: int):
    alert = db.session.get(ComplianceAlert, alert_id) or abort(404)
    return _resolve(alert, "compliance_alert", case_id=alert.case_id)


@bp.post("/alerts/sign-in/<int:alert_id>/resolve")
@roles_required("admin", "supervisor")
def resolve_sign_in_alert(alert_id: int):
    alert = db.session.get(SignInAlert, alert_id) or abort(404)
    return _resolve(alert, "sign_in_alert", key=alert.key)
