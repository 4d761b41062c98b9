"""The admin's forms for clients and users (Flask-WTF: every form carries a CSRF token)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    FieldList,
    Form,
    FormField,
    IntegerField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from cases.users import MAX_TOKEN_LIFETIME, ROLES, TOKEN_LIFETIME
from shell.money import PercentField

TIER_ROWS = 5


class FeeTierRow(Form):
    """One fee tier: from how many days past due at referral, and the fee."""

    days = IntegerField(
        "From (days past due at referral)",
        validators=[Optional(), NumberRange(0, 3650, "Days are from 0 to 3650.")],
    )
    fee = PercentField(
        "Fee (% of what is collected)",
        validators=[Optional(), NumberRange(0, 10000, "A fee is from 0%% to 100%%.")],
    )


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
    min_settlement = PercentField(
        "Settlement floor (% of the balance)",
        default=7000,
        validators=[
            InputRequired("Enter the settlement floor, like 70%."),
            NumberRange(1, 10000, "The settlement floor is from 0.01%% to 100%% of the balance."),
        ],
        description="No offer may go below it, e.g. 70%.",
    )
    max_plan_months = IntegerField(
        "Longest payment plan (months)",
        default=12,
        validators=[InputRequired(), NumberRange(1, 120)],
    )
    tier_rows = FieldList(FormField(FeeTierRow), min_entries=TIER_ROWS, max_entries=TIER_ROWS)
    legal_fee = PercentField(
        "Fee for cases in legal (%)",
        validators=[Optional(), NumberRange(0, 10000, "A fee is from 0%% to 100%%.")],
        description="Empty: the tier's fee applies in legal too.",
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
