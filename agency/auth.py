"""Sign-in and sign-out for agency staff and client users."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from cases import audit
from cases.model import utcnow
from cases.users import User, clear_failures, locked_keys, record_failure, user_by_email
from shell import signed_in
from shell.extensions import db, login_manager

bp = Blueprint("auth", __name__)


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


def client_address() -> str:
    return request.remote_addr or "unknown"


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
        keys = [f"staff:email:{email}", f"staff:ip:{client_address()}"]
        if locked_keys(db.session, keys):
            flash("Too many failed sign-ins. Please wait 15 minutes and try again.", "error")
            return render_template("auth/login.html", form=form), 429
        user = user_by_email(db.session, email)
        if user is not None and user.active and user.check_password(form.password.data):
            # Only the account's own counter is cleared: a good password for one account
            # must not reset the lock on an address trying many.
            clear_failures(db.session, keys[:1])
            user.last_sign_in_at = utcnow()
            audit.record(
                db.session,
                audit.Actor.user(user),
                "user",
                user.id,
                "user.signed_in",
                address=client_address(),
            )
            login_user(user)
            return redirect(_safe_next(request.args.get("next")) or home_for(user))
        record_failure(db.session, keys)
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
