"""The agency's pages (/agency): the staff home, and the admin pages for clients and users."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from wtforms import SelectChoice

from agency.admin_forms import ClientForm, UserForm
from cases import audit
from cases.assignment import WORKERS, AssignmentError, can_work, hand_over, open_case_count
from cases.case import WORKED_STATUSES, Case
from cases.clients import Client, ClientError, create_client, update_client
from cases.users import User, UserError, create_user, normalise_email, update_user
from payments.fees import (
    DEFAULT_TIERS,
    FeeSchedule,
    FeeScheduleError,
    checked_tiers,
    current_schedule,
    parse_tiers,
    set_schedule,
)
from shell.extensions import db
from shell.security import STAFF, require_roles, roles_required
from shell.unit_of_work import attempt

bp = Blueprint("staff", __name__, url_prefix="/agency")
bp.before_request(require_roles(*STAFF))


def actor() -> audit.Actor:
    return audit.Actor.user(current_user)


@bp.get("/")
def home():
    counts = dict(
        db.session.execute(sa.select(Case.status, sa.func.count()).group_by(Case.status)).all()
    )
    mine = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Case)
        .where(Case.assigned_to_id == current_user.id, Case.status.in_(WORKED_STATUSES))
    )
    return render_template("agency/home.html", counts=counts, mine=mine)


# --- clients (admin) ---------------------------------------------------------------------


@bp.get("/clients")
@roles_required("admin")
def clients():
    rows = db.session.scalars(sa.select(Client).order_by(Client.code)).all()
    schedules = {c.id: current_schedule(db.session, c.id) for c in rows}
    return render_template("agency/clients.html", clients=rows, schedules=schedules)


def _entered_tiers(form: ClientForm) -> list[tuple[int, int]]:
    """The fee tiers of the form's rows (days, basis points), the empty rows left out."""
    tiers = []
    for n, row in enumerate(form.tier_rows, start=1):
        days, fee = row.form.days.data, row.form.fee.data
        if days is None and fee is None:
            continue
        if days is None or fee is None:
            raise FeeScheduleError(f"fee tier {n}: give both the days past due and the fee")
        tiers.append((days, fee))
    return checked_tiers(tiers)


def _show_tiers(form: ClientForm, tiers: list[tuple[int, int]]) -> None:
    for row, (days, bps) in zip(form.tier_rows, tiers, strict=False):
        row.form.days.data, row.form.fee.data = days, bps


def _save_client(form: ClientForm, client: Client | None) -> Client:
    """Create or update a client and its fee schedule; raises ValueError with the reason."""
    tiers = _entered_tiers(form)
    terms = dict(
        min_age_days=form.min_age_days.data,
        min_settlement_bps=form.min_settlement.data,
        max_plan_months=form.max_plan_months.data,
    )
    if client is None:
        client = create_client(db.session, form.code.data, form.name.data, actor=actor(), **terms)
        set_schedule(db.session, client, tiers, actor=actor(), legal_bps=form.legal_fee.data)
        return client
    update_client(
        db.session,
        client,
        actor=actor(),
        name=form.name.data.strip(),
        active=form.active.data,
        **terms,
    )
    set_schedule(db.session, client, tiers, actor=actor(), legal_bps=form.legal_fee.data)
    return client


@bp.route("/clients/new", methods=["GET", "POST"])
@roles_required("admin")
def client_new():
    form = ClientForm()
    if request.method == "GET":
        _show_tiers(form, parse_tiers(DEFAULT_TIERS))
    if form.validate_on_submit():
        try:
            with attempt():
                client = _save_client(form, None)
        except (ClientError, FeeScheduleError) as exc:
            flash(str(exc), "error")
            return render_template("agency/client_form.html", form=form, client=None), 422
        flash(f"Client {client.code} created.", "success")
        return redirect(url_for("staff.clients"))
    status = 422 if request.method == "POST" else 200
    return render_template("agency/client_form.html", form=form, client=None), status


@bp.route("/clients/<code>", methods=["GET", "POST"])
@roles_required("admin")
def client_edit(code: str):
    client = db.session.scalar(sa.select(Client).where(Client.code == code)) or abort(404)
    schedule = current_schedule(db.session, client.id)
    form = ClientForm(obj=client)
    if request.method == "GET":
        form.min_settlement.data = client.min_settlement_bps
        _show_tiers(form, [(t.min_days, t.bps) for t in schedule.tiers] if schedule else [])
        form.legal_fee.data = schedule.legal_bps if schedule else None
    form.code.data = client.code  # the code is fixed once created
    if form.validate_on_submit():
        try:
            with attempt():
                _save_client(form, client)
        except (ClientError, FeeScheduleError) as exc:
            flash(str(exc), "error")
            return render_template("agency/client_form.html", form=form, client=client), 422
        flash(f"Client {client.code} saved.", "success")
        return redirect(url_for("staff.clients"))
    status = 422 if request.method == "POST" else 200
    history = db.session.scalars(
        sa.select(FeeSchedule)
        .where(FeeSchedule.client_id == client.id)
        .order_by(FeeSchedule.effective_from.desc(), FeeSchedule.id.desc())
    ).all()
    return render_template(
        "agency/client_form.html", form=form, client=client, history=history
    ), status


# --- users (admin) -----------------------------------------------------------------------


@bp.get("/users")
@roles_required("admin")
def users():
    rows = db.session.scalars(sa.select(User).order_by(User.role, User.email)).all()
    return render_template("agency/users.html", users=rows)


def _user_form(user: User | None = None) -> UserForm:
    form = UserForm(obj=user)
    clients = db.session.scalars(sa.select(Client).order_by(Client.code)).all()
    form.client_id.choices = [SelectChoice(0, "—")] + [
        SelectChoice(c.id, f"{c.code} — {c.name}") for c in clients
    ]
    if user is not None and request.method == "GET":
        form.client_id.data = user.client_id or 0
    return form


def _hand_over_choices(form: UserForm, user: User) -> int:
    """Where the user's open cases may go if they stop working them; how many there are."""
    count = open_case_count(db.session, user.id)
    others = db.session.scalars(
        sa.select(User)
        .where(User.role.in_(WORKERS), User.active, User.id != user.id)
        .order_by(User.email)
    ).all()
    form.hand_over_to.choices = [
        SelectChoice("", "Choose where they go"),
        SelectChoice("round_robin", "Round robin over the active collectors"),
    ] + [SelectChoice(str(u.id), f"{u.email} ({u.role})") for u in others]
    form.hand_over_to.label.text = f"Their {count} open case(s) go to"
    return count


def _hand_over(user: User, count: int, choice: str) -> str:
    """Hand the user's open cases over if they can no longer work them; what was done."""
    if not count or can_work(user):
        return ""
    if not choice:
        raise UserError(
            f"say where {user.email}'s {count} open case(s) go: another collector, or round robin"
        )
    if choice != "round_robin" and not choice.isdigit():
        raise UserError("choose another active collector or supervisor, or round robin")
    given = hand_over(
        db.session, user, None if choice == "round_robin" else int(choice), actor=actor()
    )
    return f" {sum(given.values())} open case(s) handed over to {len(given)} collector(s)."


def _selected_client(form: UserForm) -> Client | None:
    return db.session.get(Client, form.client_id.data) if form.client_id.data else None


@bp.route("/users/new", methods=["GET", "POST"])
@roles_required("admin")
def user_new():
    form = _user_form()
    if form.validate_on_submit():
        try:
            with attempt():
                user = create_user(
                    db.session,
                    form.email.data,
                    form.password.data or "",
                    form.role.data,
                    actor=actor(),
                    client=_selected_client(form),
                    name=form.name.data or "",
                )
        except UserError as exc:
            flash(str(exc), "error")
            return render_template("agency/user_form.html", form=form, user=None), 422
        flash(f"User {user.email} created.", "success")
        return redirect(url_for("staff.users"))
    status = 422 if request.method == "POST" else 200
    return render_template("agency/user_form.html", form=form, user=None), status


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@roles_required("admin")
def user_edit(user_id: int):
    user = db.session.get(User, user_id) or abort(404)
    form = _user_form(user)
    open_count = _hand_over_choices(form, user)
    if form.validate_on_submit():
        try:
            with attempt():
                if normalise_email(form.email.data) != user.email:
                    raise UserError("the email address of an existing user cannot be changed")
                update_user(
                    db.session,
                    user,
                    actor=actor(),
                    role=form.role.data,
                    client=_selected_client(form),
                    active=form.active.data,
                    name=form.name.data or "",
                    password=form.password.data or None,
                )
                handed = _hand_over(user, open_count, form.hand_over_to.data or "")
        except (UserError, AssignmentError) as exc:
            flash(f"Not saved: {exc}.", "error")
            db.session.refresh(user)
            open_count = _hand_over_choices(form, user)
            return render_template(
                "agency/user_form.html", form=form, user=user, open_count=open_count
            ), 422
        flash(f"User {user.email} saved.{handed}", "success")
        return redirect(url_for("staff.users"))
    status = 422 if request.method == "POST" else 200
    return render_template(
        "agency/user_form.html", form=form, user=user, open_count=open_count
    ), status
