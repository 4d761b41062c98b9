"""What a debtor asks of us from the portal: a dispute (with documents) and their contact
preferences (email and texts, inconvenient times, language, a monthly statement of balance).
Both feed the contact rules."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    MultipleFileField,
    RadioField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    widgets,
)
from wtforms.validators import Length, Optional, Regexp

from cases.debtors import (
    DebtorError,
    set_inconvenient_times,
    set_language,
    set_monthly_statements,
    set_preferences,
)
from cases.disputes import DisputeError, record_dispute
from cases.model import utcnow
from correspondence import i18n
from portal.access import bp, debtor_actor, debtor_required, own_case
from shell.document_store import UploadRefused, check_upload, store
from shell.extensions import db
from shell.unit_of_work import attempt

MAX_DISPUTE_FILES = 5
WEEKDAYS = [
    SelectChoice(str(day), name)
    for day, name in enumerate(
        (
            _l("Monday"),
            _l("Tuesday"),
            _l("Wednesday"),
            _l("Thursday"),
            _l("Friday"),
            _l("Saturday"),
            _l("Sunday"),
        )
    )
]


class DisputeForm(FlaskForm):
    kind = RadioField(
        _l("What do you ask for?"),
        choices=[
            SelectChoice("dispute", _l("I dispute this debt")),
            SelectChoice(
                "original_creditor", _l("I want the name and address of the original creditor")
            ),
        ],
        default="dispute",
    )
    reason = TextAreaField(
        _l("What do you dispute, and why?"),
        validators=[Optional(), Length(max=5000)],
        description=_l(
            "For example: I paid this bill, the amount is wrong, or it is not mine. "
            "Not needed to ask for the original creditor."
        ),
    )
    documents = MultipleFileField(
        _l("Documents (optional)"),
        description=_l("Up to 5 files: PDF, PNG or JPEG, at most 10 MB each."),
    )


def _checked_uploads(files) -> list[tuple[object, bytes, str]]:
    """Every uploaded file, read and checked, before anything is saved."""
    chosen = [f for f in files or [] if f and f.filename]
    if len(chosen) > MAX_DISPUTE_FILES:
        raise UploadRefused(_("Send at most %(n)d files.", n=MAX_DISPUTE_FILES))
    checked = []
    for upload in chosen:
        data = upload.read()
        try:
            content_type = check_upload(data)
        except UploadRefused:
            raise UploadRefused(
                _(
                    "%(name)s: documents must be PDF, PNG or JPEG files of at most 10 MB.",
                    name=upload.filename,
                )
            ) from None
        checked.append((upload, data, content_type))
    return checked


@bp.route("/cases/<reference>/dispute", methods=["GET", "POST"])
@debtor_required
def dispute(reference: str):
    case = own_case(reference)
    form = DisputeForm()
    if not case.is_open:
        flash(_("This account is closed; there is nothing to dispute."), "error")
        return redirect(url_for("portal.case", reference=case.reference))
    if request.method == "GET" and request.args.get("kind") == "original_creditor":
        form.kind.data = "original_creditor"
    if form.validate_on_submit():
        if form.kind.data == "dispute" and not (form.reason.data or "").strip():
            form.reason.errors = [_("Tell us what you dispute.")]
            return render_template(
                "portal/dispute.html", debtor=g.debtor, case=case, form=form
            ), 400
        try:
            uploads = _checked_uploads(form.documents.data)
            with attempt():
                found = record_dispute(
                    db.session,
                    case,
                    reason=form.reason.data,
                    channel="portal",
                    received_at=utcnow(),
                    actor=debtor_actor(),
                    kind=form.kind.data,
                )
        except (UploadRefused, DisputeError) as exc:
            form.documents.errors = [str(exc)]
            return render_template(
                "portal/dispute.html", debtor=g.debtor, case=case, form=form
            ), 400
        for upload, data, content_type in uploads:
            store(
                data,
                filename=upload.filename,
                content_type=content_type,
                kind="dispute_upload",
                case_id=case.id,
                debtor_id=case.debtor_id,
            )
        return render_template(
            "portal/dispute_received.html",
            debtor=g.debtor,
            case=case,
            held=found.within_validation_period,
            files=len(uploads),
            kind=found.kind,
        )
    status = 400 if request.method == "POST" else 200
    return render_template("portal/dispute.html", debtor=g.debtor, case=case, form=form), status


class MultiCheckboxField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


TIME = Regexp(r"^([01]\d|2[0-3]):[0-5]\d$", message=_l("Enter a time like 18:30."))


class PreferencesForm(FlaskForm):
    language = SelectField(
        _l("Language"), choices=[SelectChoice(k, v) for k, v in i18n.LANGUAGES.items()]
    )
    busy_days = MultiCheckboxField(_l("Days"), choices=WEEKDAYS)
    busy_start = StringField(
        _l("From"), validators=[Optional(), TIME], description=_l("Like 18:30")
    )
    busy_end = StringField(_l("To"), validators=[Optional(), TIME], description=_l("Like 21:00"))
    clear_times = BooleanField(_l("Remove the inconvenient times I gave before"))
    monthly_statements = BooleanField(
        _l("Send me a statement of my balance every month"),
        description=_l("By email, or by text if we can only text you. Untick to stop."),
    )


@bp.route("/preferences", methods=["GET", "POST"])
@debtor_required
def preferences():
    debtor = g.debtor
    form = PreferencesForm(
        language=i18n.known(debtor.language), monthly_statements=debtor.monthly_statements
    )
    if form.validate_on_submit():
        emails = {e.id: f"email-{e.id}" in request.form for e in debtor.emails}
        texts = {p.id: f"text-{p.id}" in request.form for p in debtor.own_phones}
        ranges = [] if form.clear_times.data else list(debtor.inconvenient_times)
        if form.busy_days.data or form.busy_start.data or form.busy_end.data:
            ranges.append(
                {
                    "days": [int(d) for d in form.busy_days.data],
                    "start": form.busy_start.data or "",
                    "end": form.busy_end.data or "",
                }
            )
        try:
            with attempt():
                set_inconvenient_times(db.session, debtor, ranges, actor=debtor_actor())
        except DebtorError as exc:
            form.busy_days.errors = [_translate_debtor_error(str(exc))]
            return render_template("portal/preferences.html", debtor=debtor, form=form), 400
        set_preferences(
            db.session,
            debtor,
            emails=emails,
            texts=texts,
            at=utcnow(),
            actor=debtor_actor(),
        )
        set_language(db.session, debtor, form.language.data, actor=debtor_actor())
        set_monthly_statements(
            db.session, debtor, form.monthly_statements.data, actor=debtor_actor()
        )
        session["portal_lang"] = form.language.data
        flash(_("Your preferences are saved."), "success")
        return redirect(url_for("portal.preferences"))
    status = 400 if request.method == "POST" else 200
    return render_template("portal/preferences.html", debtor=debtor, form=form), status


def _translate_debtor_error(message: str) -> str:
    return {
        "choose at least one day of the week": _("Choose at least one day of the week."),
        "times must look like 18:30": _("Enter both times, like 18:30."),
        "the start time must be before the end time": _(
            "The start time must be before the end time."
        ),
    }.get(message, message)
