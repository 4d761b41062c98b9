"""The client area's forms: recalling a case, reporting a payment made to the client directly,
uploading a referral file, and sending a document for a dispute."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, DateField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length

from shell.money import MoneyField


class RecallForm(FlaskForm):
    reason = TextAreaField(
        "Why are you recalling this account?", validators=[DataRequired(), Length(max=1000)]
    )


class DirectPaymentForm(FlaskForm):
    amount = MoneyField("Amount paid to you", validators=[InputRequired()])
    received_at = DateField("Date you received it", validators=[DataRequired()])
    method = SelectField("How it was paid", choices=["check", "ach", "wire", "cash", "card"])
    reference = StringField(
        "Your reference (check number, transaction id)", validators=[DataRequired(), Length(max=80)]
    )


class UploadForm(FlaskForm):
    file = FileField(
        "Referral file (CSV or Excel .xlsx, up to 200 MB)",
        validators=[FileRequired("Choose a file to upload.")],
    )
    early_out_attested = BooleanField(
        "We attest that no early-out account in this file is in default under our own terms",
        description="Needed only for a file with early_out rows (reminders in your name).",
    )


class DisputeDocumentForm(FlaskForm):
    document = FileField(
        "Document for the verification (PDF, PNG or JPEG, up to 10 MB)",
        validators=[FileRequired("Choose a document to upload.")],
    )
