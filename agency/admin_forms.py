"""The admin's forms for clients and users (Flask-WTF: every form carries a CSRF token)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    IntegerField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from cases.users import MAX_TOKEN_LIFETIME, ROLES, TOKEN_LIFETIME
from payments.fees import DEFAULT_TIERS


class ClientForm(FlaskForm):
    code = StringField(
        "Code",
        validators=[DataRequired(), Length(max=20)],
        description="Short and unique, e.g. ACME. Cannot be changed later.",
    )
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    min_age_days = IntegerField(
        "Minimum age at referral (days past due)",
        default=90,
        validators=[InputRequired(), NumberRange(0, 3650)],
    )
    min_settlement_bps = IntegerField(
        "Settlement floor (basis points of the balance)",
        default=7000,
        validators=[InputRequired(), NumberRange(1, 10000)],
        description="7000 = 70%. No offer may go below it.",
    )
    max_plan_months = IntegerField(
        "Longest payment plan (months)",
        default=12,
        validators=[InputRequired(), NumberRange(1, 120)],
    )
    fee_tiers = StringField(
        "Fee tiers",
        default=DEFAULT_TIERS,
        validators=[DataRequired(), Length(max=200)],
        description="Days past due at referral = fee in basis points, "
        "e.g. 90=2500,181=3300,366=4000",
    )
    legal_fee_bps = IntegerField(
        "Fee for cases in legal (basis points)", validators=[Optional(), NumberRange(0, 10000)]
    )
    active = BooleanField("Active", default=True)


class UserForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    name = StringField("Name", validators=[Optional(), Length(max=200)])
    role = SelectField("Role", choices=[SelectChoice(r, r.capitalize()) for r in ROLES])
    client_id = SelectField("Client (client users only)", coerce=int, choices=[])
    password = PasswordField(
        "Password",
        validators=[Optional(), Length(max=200)],
        description="At least 10 characters. Leave empty to keep it.",
    )
    active = BooleanField("Active", default=True)
    hand_over_to = SelectField(
        "Their open cases go to",
        choices=[],
        validate_choice=False,
        description="Asked when the user is deactivated or can no longer work cases.",
    )


class TokenForm(FlaskForm):
    scope = SelectField(
        "Scope",
        choices=[
            SelectChoice("read", "read: look up cases, contact windows and statements"),
            SelectChoice("write", "write: also send referrals, contacts and payments"),
        ],
    )
    days = IntegerField(
        "Expires after (days)",
        default=TOKEN_LIFETIME.days,
        validators=[InputRequired(), NumberRange(1, MAX_TOKEN_LIFETIME.days)],
    )


class ConfirmForm(FlaskForm):
    """A button that changes something: only its CSRF token."""
