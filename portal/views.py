"""Portal pages: sign-in (case reference + last name or company + ZIP), the debtor's cases,
what is owed and why, the validation notice, receipts, and the language switch."""

from __future__ import annotations

import sqlalchemy as sa
from flask import (
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy.orm import joinedload
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from cases import audit
from cases.case import OPEN_STATUSES, Case, case_by_reference
from cases.debtors import Debtor, fold, set_language
from cases.ledger import balance_after
from correspondence import i18n
from correspondence.pdf import agency_letterhead, render_pdf
from payments.posting import balances
from portal import pages
from portal.access import (
    bp,
    debtor_id_required,
    debtor_required,
    own_case,
    own_case_document,
    own_payment,
    session_ended,
    sign_in,
    sign_out,
    signed_in_debtor,
)
from portal.account import account
from portal.offer_pages import acceptance_wording
from shell import sign_in_guard
from shell.extensions import db
from shell.timezone import agency_today


class PortalSignInForm(FlaskForm):
    reference = StringField(
        _l("Case reference"),
        validators=[DataRequired(), Length(max=20)],
        description=_l("On your letter, like RC-2611-00042"),
    )
    name = StringField(
        _l("Last name, or company name"), validators=[DataRequired(), Length(max=200)]
    )
    postal_code = StringField(_l("ZIP code"), validators=[DataRequired(), Length(max=10)])


def _matches(case: Case, name: str, postal_code: str) -> bool:
    debtor = case.debtor
    own = debtor.company_name if debtor.kind == "commercial" else debtor.last_name
    if not own or fold(own) != fold(name):
        return False
    zips = {a.postal_code[:5] for a in debtor.addresses}
    return postal_code.strip()[:5] in zips


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = PortalSignInForm()
    if form.validate_on_submit():
        reference = form.reference.data.strip().upper()
        # A place for this attempt is taken before the details are checked (SPEC §8).
        attempt = sign_in_guard.reserve("portal", "ref", reference)
        if attempt.refusal is not None:
            flash(
                _(
                    "Too many attempts. For your security, please try again in %(seconds)s "
                    "seconds.",
                    seconds=attempt.refusal.retry_after,
                ),
                "error",
            )
            return sign_in_guard.refused(render_template("portal/login.html", form=form), attempt)
        case = case_by_reference(db.session, reference)
        if case is not None and _matches(case, form.name.data, form.postal_code.data):
            sign_in_guard.succeeded(attempt)
            if "portal_lang" not in session:
                session["portal_lang"] = i18n.known(case.debtor.language)
            sign_in(case.debtor_id)
            return redirect(url_for("portal.home"))
        sign_in_guard.failed(attempt)  # kept: the view returns, so its unit of work commits
        flash(_("We could not find a case with those details. Please check your letter."), "error")
        return render_template("portal/login.html", form=form), 401
    status = 400 if request.method == "POST" else 200
    return render_template("portal/login.html", form=form), status


@bp.post("/logout")
def logout():
    sign_out()
    flash(_("You are signed out."), "info")
    return redirect(url_for("portal.login"))


class LanguageForm(FlaskForm):
    pass


@bp.post("/language")
def language():
    """Switch between English and Spanish; remembered for the session and, once signed in, on
    the debtor (emails and letters follow it)."""
    form = LanguageForm()
    chosen = request.form.get("lang", "")
    if not form.validate_on_submit() or chosen not in i18n.LANGUAGES:
        abort(400)
    session["portal_lang"] = chosen
    debtor = signed_in_debtor()
    if debtor is not None:
        set_language(db.session, debtor, chosen, actor=audit.Actor(None, f"debtor:{debtor.id}"))
    target = request.form.get("next", "")
    if not target.startswith("/portal/"):
        target = url_for("portal.home")
    return redirect(target)


@bp.get("/")
@debtor_id_required
def home():
    def context() -> dict:
        cases = db.session.scalars(
            sa.select(Case)
            .options(joinedload(Case.client))
            .where(Case.debtor_id == g.debtor_id, Case.status.in_(OPEN_STATUSES))
            .order_by(Case.reference)
        ).all()
        return {
            "debtor": db.session.get(Debtor, g.debtor_id),
            "cases": cases,
            "balances": balances(db.session, [c.id for c in cases]),
        }

    # All the debtor's cases, closed ones too: the page shows the debtor's name, and a change
    # to the debtor changes the stamps of all their cases.
    shown = pages.stamps()
    if not shown:  # the session ended, or no case of theirs is left: signed out
        sign_out()
        return redirect(url_for("portal.login"))
    return pages.cached(shown, "portal/home.html", context)


@bp.get("/cases/<reference>")
@debtor_id_required
def case(reference: str):
    shown = pages.stamps(reference)
    if not shown:
        if session_ended():
            return redirect(url_for("portal.login", next=request.path))
        abort(404)

    def context() -> dict:
        return {
            "debtor": db.session.get(Debtor, g.debtor_id),
            "a": account(db.session, own_case(reference), agency_today()),
            "offer_wording": lambda o: acceptance_wording(o.amount_cents, o.expires_on),
            "offer_wording_for": acceptance_wording,
            "agency": agency_letterhead(),
        }

    return pages.cached(shown, "portal/case.html", context)


@bp.get("/cases/<reference>/validation-notice/<int:document_id>")
@debtor_required
def validation_notice(reference: str, document_id: int):
    return own_case_document(reference, document_id, "validation_notice")


def _receipt_context(entry_id: int) -> dict:
    entry = own_payment(entry_id)
    found = db.session.get(Case, entry.case_id)
    return {
        "debtor": g.debtor,
        "entry": entry,
        "case": found,
        "balance_after": balance_after(db.session, entry),
        "agency": agency_letterhead(),
    }


@bp.get("/receipts/<int:entry_id>")
@debtor_required
def receipt(entry_id: int):
    return render_template("portal/receipt.html", **_receipt_context(entry_id))


@bp.get("/receipts/<int:entry_id>.pdf")
@debtor_required
def receipt_pdf(entry_id: int):
    context = _receipt_context(entry_id)
    pdf = render_pdf("pdf/receipt.html", **context)
    return Response(
        pdf,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'inline; filename="receipt-{entry_id}.pdf"'},
    )
