"""Sign-in and sign-out for agency staff and client users."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from cases import audit
from cases.model import utcnow
from cases.users import User, user_by_email
from shell import sign_in_guard, signed_in
from shell.extensions import db, login_manager

bp = Blueprint("auth", __name__)
# A user whose password was right but who has not given the second factor yet
# (agency/second_step.py): {"user": id, "next": path or None, "at": ISO time}.
HALF_SIGNED_IN = "half_signed_in"


class SignInForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    return signed_in.user(user_id)


def home_for(user: User) -> str:
    return url_for("client_area.dashboard") if user.role == "client" else url_for("staff.home")


def _safe_next(target: str | None) -> str | None:
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def sign_in(user: User) -> None:
    """Sign the user in: the password, and the second factor when it is required, were right."""
    session.pop(HALF_SIGNED_IN, None)
    user.last_sign_in_at = utcnow()
    audit.record(
        db.session,
        audit.Actor.user(user),
        "user",
        user.id,
        "user.signed_in",
        address=sign_in_guard.client_address(),
    )
    login_user(user)


@bp.route("/")
def index():
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    return redirect(url_for("auth.login"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    form = SignInForm()
    status = 200
    if form.validate_on_submit():
        email = form.email.data.strip().lower()
        # A place for this attempt is taken before the password is checked (SPEC §11).
        attempt = sign_in_guard.reserve("staff", "email", email)
        if attempt.refusal is not None:
            flash(
                f"Too many failed sign-ins. Please try again in {attempt.refusal.retry_after} "
                "seconds.",
                "error",
            )
            return sign_in_guard.refused(render_template("auth/login.html", form=form), attempt)
        user = user_by_email(db.session, email)
        if user is not None and user.active and user.check_password(form.password.data):
            sign_in_guard.succeeded(attempt)
            next_page = _safe_next(request.args.get("next"))
            if current_app.config["MFA_REQUIRED"]:
                session[HALF_SIGNED_IN] = {
                    "user": user.id,
                    "next": next_page,
                    "at": utcnow().isoformat(),
                }
                return redirect(url_for("second_factor.code"))
            sign_in(user)
            return redirect(next_page or home_for(user))
        sign_in_guard.failed(attempt)
        flash("The email or password is not right.", "error")
        status = 401
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))
