"""The admin's page of a user's access (/agency/users/<id>/access): the second factor and its
reset, and the user's API tokens (issue, revoke)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, url_for

from agency.admin_forms import ConfirmForm, TokenForm
from agency.staff import actor, bp
from cases.model import utcnow
from cases.second_factor import SecondFactorError, is_enrolled, unused_recovery_codes
from cases.second_factor import reset as reset_second_factor
from cases.users import ApiToken, User, UserError, issue_token, revoke_token
from shell.extensions import db
from shell.security import roles_required
from shell.unit_of_work import attempt


def _user(user_id: int) -> User:
    return db.session.get(User, user_id) or abort(404)


def _page(user: User, status: int = 200, new_token: str | None = None, form=None):
    tokens = db.session.scalars(
        sa.select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())
    ).all()
    return render_template(
        "agency/user_access.html",
        user=user,
        enrolled=is_enrolled(user),
        recovery_left=unused_recovery_codes(db.session, user),
        tokens=tokens,
        now=utcnow(),
        token_form=form or TokenForm(),
        confirm=ConfirmForm(),
        new_token=new_token,
    ), status


@bp.get("/users/<int:user_id>/access")
@roles_required("admin")
def user_access(user_id: int):
    return _page(_user(user_id))


@bp.post("/users/<int:user_id>/second-factor/reset")
@roles_required("admin")
def user_second_factor_reset(user_id: int):
    user = _user(user_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        with attempt():
            reset_second_factor(db.session, user, actor=actor())
    except SecondFactorError as exc:
        flash(str(exc), "error")
        return _page(user, 422)
    flash(f"The second factor of {user.email} is reset: they set up a new one at next sign-in.")
    return redirect(url_for("staff.user_access", user_id=user.id))


@bp.post("/users/<int:user_id>/tokens")
@roles_required("admin")
def user_token_new(user_id: int):
    user = _user(user_id)
    form = TokenForm()
    if not form.validate_on_submit():
        return _page(user, 422, form=form)
    try:
        with attempt():
            token = issue_token(
                db.session,
                user,
                actor=actor(),
                scope=form.scope.data,
                lifetime=dt.timedelta(days=form.days.data),
            )
    except UserError as exc:
        flash(str(exc), "error")
        return _page(user, 422, form=form)
    # Shown in this response only: only its hash is kept.
    return _page(user, 201, new_token=token)


@bp.post("/users/<int:user_id>/tokens/<int:token_id>/revoke")
@roles_required("admin")
def user_token_revoke(user_id: int, token_id: int):
    user = _user(user_id)
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        with attempt():
            revoke_token(db.session, token, actor=actor())
    except UserError as exc:
        flash(str(exc), "error")
        return _page(user, 422)
    flash(f"Token {token.prefix}… revoked.")
    return redirect(url_for("staff.user_access", user_id=user.id))
