"""The second step of signing in (a TOTP or recovery code) and setting up the authenticator:
at first sign-in, or through the enrolment link `users create` prints."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import segno
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    session,
    url_for,
)
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from agency.auth import HALF_SIGNED_IN, home_for, sign_in
from cases import audit
from cases.model import utcnow
from cases.second_factor import (
    SecondFactorError,
    TooManyCodes,
    check_code,
    confirm_enrolment,
    enrolment_link,
    is_enrolled,
    pending_secret,
    provisioning_uri,
)
from cases.users import User
from shell.extensions import db
from shell.unit_of_work import attempt

bp = Blueprint("second_factor", __name__)

# The time from the password to the code.
HALF_SIGNED_IN_FOR = dt.timedelta(minutes=10)


class CodeForm(FlaskForm):
    code = StringField(
        "Code",
        validators=[DataRequired(), Length(max=40)],
        render_kw={"inputmode": "numeric"},
        description="The 6 digits your authenticator app shows, or one of your recovery codes.",
    )


def _key() -> str:
    return current_app.config["MFA_ENCRYPTION_KEY"]


def _half_signed_in() -> tuple[User, str | None]:
    """The user who gave the right password a moment ago, or back to the sign-in page."""
    state = session.get(HALF_SIGNED_IN)
    user = None
    if isinstance(state, dict) and isinstance(state.get("user"), int):
        started = dt.datetime.fromisoformat(state.get("at", "1970-01-01T00:00:00+00:00"))
        if utcnow() - started < HALF_SIGNED_IN_FOR:
            user = db.session.get(User, state["user"])
    if user is None or not user.active:
        session.pop(HALF_SIGNED_IN, None)
        flash("Please sign in again.", "info")
        abort(redirect(url_for("auth.login")))
    return user, state.get("next")


def _enrolment_page(user: User, form: CodeForm, status: int = 200, **extra):
    secret = pending_secret(db.session, user, _key())
    uri = provisioning_uri(secret, user, current_app.config["AGENCY_NAME"])
    qr = segno.make(uri, error="m").svg_inline(scale=4, title="QR code of your authenticator")
    return render_template(
        "auth/enrol.html", form=form, user=user, secret=secret, qr=qr, **extra
    ), status


@bp.route("/login/code", methods=["GET", "POST"])
def code():
    user, next_page = _half_signed_in()
    if not is_enrolled(user):
        return redirect(url_for("second_factor.enrol"))
    form = CodeForm()
    status = 200
    if form.validate_on_submit():
        # Not inside attempt(): a refused code writes only its failure, which must be kept
        # (it counts toward the limit) when the page shows the refusal.
        try:
            kind = check_code(db.session, user, _key(), form.code.data)
        except SecondFactorError as exc:
            flash(str(exc), "error")
            status = 429 if isinstance(exc, TooManyCodes) else 401
            return render_template("auth/code.html", form=form), status
        sign_in(user)
        if kind == "recovery":
            flash("You used a recovery code: each works only once.", "info")
        return redirect(next_page or home_for(user))
    elif form.is_submitted():
        status = 400
    return render_template("auth/code.html", form=form), status


def _enrolment(user: User, done: Callable[[list[str]], object]):
    """The enrolment page; for a right first code from the new authenticator, `done` with the
    recovery codes (shown once)."""
    form = CodeForm()
    if not form.validate_on_submit():
        return _enrolment_page(user, form, 400 if form.is_submitted() else 200)
    try:  # a refused code writes only its failure, which is kept (see `code`)
        codes = confirm_enrolment(
            db.session, user, _key(), form.code.data, actor=audit.Actor.user(user)
        )
    except SecondFactorError as exc:
        flash(str(exc), "error")
        return _enrolment_page(user, form, 429 if isinstance(exc, TooManyCodes) else 401)
    return done(codes)


@bp.route("/login/enrol", methods=["GET", "POST"])
def enrol():
    """At first sign-in: the password was right and the account has no authenticator yet."""
    user, next_page = _half_signed_in()
    if is_enrolled(user):
        return redirect(url_for("second_factor.code"))

    def signed_in(codes: list[str]):
        sign_in(user)
        return render_template(
            "auth/recovery_codes.html", codes=codes, next_page=next_page or home_for(user)
        )

    return _enrolment(user, signed_in)


@bp.route("/enrol/<token>", methods=["GET", "POST"])
def enrol_by_link(token: str):
    """From the link `users create` printed: set up the authenticator, then sign in with the
    password and a code."""
    try:
        with attempt():
            link = enrolment_link(db.session, token)
    except SecondFactorError as exc:
        return render_template("auth/link_refused.html", message=str(exc)), 410

    def link_used(codes: list[str]):
        link.used_at = utcnow()
        flash("Your authenticator is set up. Sign in with your password and a code.", "success")
        return render_template(
            "auth/recovery_codes.html", codes=codes, next_page=url_for("auth.login")
        )

    return _enrolment(db.session.get(User, link.user_id), link_used)
