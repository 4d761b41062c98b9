"""The forms of the case screen (agency/casework.py and the views beside it)."""

from __future__ import annotations

from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    IntegerField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from cases import debtors as debtor_rules
from cases.case import CLOSE_REASONS
from cases.contacts import CALL_OUTCOMES
from cases.plans import FREQUENCIES, FREQUENCY_LABELS
from shell.form_html import QuickForm
from shell.money import MoneyField

WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


# A call's outcome in words, on the form and the timeline.
CALL_OUTCOME_WORDS = {
    "no_answer": "no answer",
    "voicemail": "left a voicemail",
    "busy": "line busy",
    "wrong_number": "wrong number: not the debtor's",
    "conversation": "spoke with the debtor",
}

# What the debtor's situation means for the collector: how it reads in the heading, the tone
# to take, and the email and text to suggest first.
SITUATION_WORDS = {
    "unknown": "situation not known yet",
    "hardship": "hardship: cannot pay now",
    "juggling": "juggling debts: can pay some",
    "avoiding": "avoiding contact",
}
SITUATION_TONE = {
    "unknown": "Find out the situation first: ask what they can manage, then record it.",
    "hardship": "Be gentle and patient: offer a small plan or a pause, never press for all.",
    "juggling": "Be practical: offer a plan or a settlement that fits what they can pay.",
    "avoiding": "Be brief and clear: the balance, the deadline and the easy way to pay.",
}
SITUATION_TEMPLATES = {  # (email, text)
    "unknown": ("payment_reminder", "text_payment_reminder"),
    "hardship": ("payment_options", "text_payment_options"),
    "juggling": ("payment_options", "text_payment_options"),
    "avoiding": ("payment_reminder", "text_payment_reminder"),
}

CONFIRM_MESSAGE = "Tick the box to confirm: nothing was changed"


class CallForm(QuickForm):
    phone = SelectField("Number called", choices=[])
    outcome = SelectField(
        "Outcome",
        choices=[SelectChoice(o, CALL_OUTCOME_WORDS[o].capitalize()) for o in CALL_OUTCOMES],
    )
    occurred_at = DateTimeLocalField(
        "When (agency time; leave empty for now)", validators=[Optional()]
    )
    note = TextAreaField("Note", validators=[Optional(), Length(max=5000)])


class NoteForm(QuickForm):
    body = TextAreaField("Note", validators=[DataRequired(), Length(max=5000)])


class PromiseForm(QuickForm):
    amount = MoneyField("Amount promised", validators=[InputRequired()])
    due_on = DateField("Due on", validators=[DataRequired()])


class PlanForm(QuickForm):
    frequency = SelectField(
        "How often",
        choices=[SelectChoice(f, FREQUENCY_LABELS[f].capitalize()) for f in FREQUENCIES],
    )
    count = IntegerField("Number of installments", validators=[InputRequired()])
    down_payment = MoneyField("Down payment (optional)", validators=[Optional()])
    first_on = DateField("First payment on (within 30 days)", validators=[DataRequired()])
    autopay = BooleanField("Autopay: the debtor saves a card in the portal")


class DisputeForm(QuickForm):
    kind = SelectField(
        "The debtor asks for",
        choices=[
            SelectChoice("dispute", "A dispute of the debt"),
            SelectChoice(
                "original_creditor", "The original creditor's name and address (1006.38(c))"
            ),
        ],
        default="dispute",
    )
    document = FileField("Documents the debtor sent (PDF, PNG or JPEG, up to 10 MB)")
    reason = TextAreaField(
        "What the debtor disputes (optional for the original creditor)",
        validators=[Optional(), Length(max=5000)],
    )
    channel = SelectField("Received by", choices=["call", "letter", "email", "portal"])
    received_at = DateTimeLocalField(
        "Arrived (agency time; leave empty for now)", validators=[Optional()]
    )


LETTER_LABEL = "The debtor's letter (optional: PDF, PNG or JPEG, up to 10 MB)"


class AttorneyForm(QuickForm):
    name = StringField("Attorney's name", validators=[DataRequired(), Length(max=200)])
    phone = StringField("Attorney's phone", validators=[Optional(), Length(max=20)])
    email = StringField("Attorney's email", validators=[Optional(), Length(max=254)])
    document = FileField(LETTER_LABEL)
    confirm = BooleanField(
        "I confirm: from now on only the attorney is contacted, never the debtor",
        validators=[DataRequired(CONFIRM_MESSAGE)],
    )


class CeaseForm(QuickForm):
    document = FileField(LETTER_LABEL)
    confirm = BooleanField(
        "I confirm: the debtor asked in writing that we stop; only the notices the law "
        "allows go out from now on",
        validators=[DataRequired(CONFIRM_MESSAGE)],
    )


class InconvenientForm(QuickForm):
    days = SelectMultipleField(
        "Days",
        choices=[SelectChoice(str(i), d) for i, d in enumerate(WEEKDAYS)],
        validators=[DataRequired()],
    )
    start = TimeField("From", validators=[DataRequired()])
    end = TimeField("Until", validators=[DataRequired()])


class OptOutForm(QuickForm):
    channel = SelectField("Channel", choices=["email", "text", "call"])


class StatementsForm(QuickForm):
    wanted = BooleanField("The debtor asked for a monthly statement of balance")


class SituationForm(QuickForm):
    situation = SelectField("Situation", choices=list(debtor_rules.SITUATIONS))


class PhoneTypeForm(QuickForm):
    # The domain says why a type or number is refused (cases.debtors.set_phone_type).
    number = SelectField("Number", choices=[], validate_choice=False, validators=[DataRequired()])
    type = SelectField(
        "What the number is",
        choices=[
            SelectChoice("mobile", "The debtor's mobile"),
            SelectChoice("home", "The debtor's home"),
            SelectChoice("work", "The debtor's work"),
            SelectChoice("other", "Another number (not the debtor's own)"),
        ],
        validate_choice=False,
        validators=[DataRequired()],
    )


class CloseForm(QuickForm):
    close_reason = SelectField("Close reason", choices=list(CLOSE_REASONS))
    reason = TextAreaField("Why", validators=[DataRequired(), Length(max=1000)])
    confirm = BooleanField(
        "I confirm: close the case (a recall too); collection on it stops",
        validators=[DataRequired(CONFIRM_MESSAGE)],
    )


class LetterForm(QuickForm):
    kind = SelectField(
        "Letter",
        choices=[
            SelectChoice("collection", "Collection letter"),
            SelectChoice("cease_confirmation", "Confirmation that collection stopped"),
        ],
    )


class OfferForm(QuickForm):
    amount = MoneyField("Settlement amount", validators=[Optional()])
    percent = StringField(
        "or percent of the balance (e.g. 80)", validators=[Optional(), Length(max=10)]
    )
    expires_on = DateField("Expires on (at most 60 days)", validators=[DataRequired()])
    installments = SelectField(
        "Payments",
        choices=[SelectChoice("1", "One payment")]
        + [SelectChoice(str(n), f"Up to {n} installments") for n in range(2, 13)],
    )


class VerificationForm(QuickForm):
    document = FileField("Verification from the client (optional: PDF, PNG or JPEG)")
    note = TextAreaField("What was sent", validators=[DataRequired(), Length(max=1000)])


class EmailForm(QuickForm):
    to = SelectField("To", choices=[])
    template = SelectField(
        "Email",
        choices=[
            SelectChoice("payment_reminder", "Payment reminder"),
            SelectChoice("payment_options", "Payment options"),
        ],
    )


class TextForm(QuickForm):
    # The domain says why a number may not get texts (not on file, no consent, opted out).
    to = SelectField("To", choices=[], validate_choice=False, validators=[DataRequired()])
    template = SelectField(
        "Text",
        choices=[
            SelectChoice("text_payment_reminder", "Payment reminder"),
            SelectChoice("text_payment_options", "Payment options"),
        ],
    )


class PaymentForm(QuickForm):
    amount = MoneyField("Amount received", validators=[InputRequired()])
    received_at = DateField("Date received", validators=[DataRequired()])
    method = SelectField("Method", choices=["check", "ach", "wire", "cash"])
    reference = StringField(
        "Check number or transaction id (cash: empty for a receipt number)",
        validators=[Optional(), Length(max=80)],
    )


class ReversalForm(QuickForm):
    amount = MoneyField("Amount to reverse (empty: all that is left)", validators=[Optional()])
    reason = StringField("Why", validators=[DataRequired(), Length(max=500)])
