"""The client area (/client): a creditor business refers accounts and follows its own cases."""

from __future__ import annotations

import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import DateField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length

from cases import audit
from cases.case import OPEN_STATUSES, STATUSES, Case, TransitionError, change_status, search
from cases.contacts import Contact
from cases.csvsafe import write_csv
from cases.debtors import Debtor
from cases.ledger import cents_sum
from cases.referral_file import KNOWN_COLUMNS, REQUIRED_COLUMNS, FileRefused, raw_rows, read_header
from cases.referrals import (
    ReferralBatch,
    apply_mapping,
    cancel,
    confirm,
    hold_for_mapping,
    preview,
)
from payments.ledger import (
    LedgerEntry,
    LedgerError,
    ReceivedDateError,
    balance_cents,
    balances,
    client_external_id,
    post_payment,
)
from shell.extensions import db
from shell.money import MoneyField
from shell.security import require_roles
from shell.timezone import agency_today
from shell.unit_of_work import attempt

bp = Blueprint("client_area", __name__, url_prefix="/client")
bp.before_request(require_roles("client"))

PAGE_SIZE = 25
SORTS = {
    "newest": (Case.referred_on.desc(), Case.id.desc()),
    "oldest": (Case.referred_on.asc(), Case.id.asc()),
    "reference": (Case.reference.asc(),),
    "status": (Case.status.asc(), Case.reference.asc()),
}


def actor() -> audit.Actor:
    return audit.Actor.user(current_user)


def own_case(reference: str) -> Case:
    """The signed-in client's case with this reference, or 404 (never another client's)."""
    case = db.session.scalar(
        sa.select(Case).where(
            Case.reference == reference.upper(), Case.client_id == current_user.client_id
        )
    )
    if case is None:
        abort(404)
    return case


def own_batch(batch_id: int) -> ReferralBatch:
    batch = db.session.get(ReferralBatch, batch_id)
    if batch is None or batch.client_id != current_user.client_id:
        abort(404)
    return batch


# --- dashboard and cases -------------------------------------------------------------------


@bp.get("/")
def dashboard():
    client_id = current_user.client_id
    counts = dict(
        db.session.execute(
            sa.select(Case.status, sa.func.count())
            .where(Case.client_id == client_id)
            .group_by(Case.status)
        ).all()
    )
    month_start = agency_today().replace(day=1)
    money = dict(
        db.session.execute(
            sa.select(LedgerEntry.kind, cents_sum(LedgerEntry.amount_cents))
            .join(Case, Case.id == LedgerEntry.case_id)
            .where(Case.client_id == client_id)
            .group_by(LedgerEntry.kind)
        ).all()
    )
    this_month = dict(
        db.session.execute(
            sa.select(LedgerEntry.kind, cents_sum(LedgerEntry.amount_cents))
            .join(Case, Case.id == LedgerEntry.case_id)
            .where(
                Case.client_id == client_id,
                LedgerEntry.received_at >= month_start,
                LedgerEntry.kind.in_(("payment", "direct_payment", "reversal")),
            )
            .group_by(LedgerEntry.kind)
        ).all()
    )
    placed = money.get("placement", 0)
    collected = -sum(money.get(k, 0) for k in ("payment", "direct_payment", "reversal"))
    recent = db.session.execute(
        sa.select(Contact.occurred_at, Contact.channel, Contact.direction, Case.reference)
        .join(Case, Case.id == Contact.case_id)
        .where(Case.client_id == client_id)
        .order_by(Contact.occurred_at.desc())
        .limit(10)
    ).all()
    return render_template(
        "client/dashboard.html",
        counts=counts,
        placed=placed,
        collected=collected,
        collected_this_month=-sum(this_month.values()),
        recent=recent,
        liquidation=(collected / placed * 100) if placed else 0,
    )


@bp.get("/cases")
def cases():
    page = max(request.args.get("page", 1, type=int), 1)
    q = request.args.get("q", "").strip()[:100]
    status = request.args.get("status", "")
    sort = request.args.get("sort", "newest")
    query = (
        sa.select(Case)
        .join(Debtor, Debtor.id == Case.debtor_id)
        .where(Case.client_id == current_user.client_id)
    )
    query = search(query, q, status)
    total = db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
    rows = db.session.scalars(
        query.order_by(*SORTS.get(sort, SORTS["newest"]))
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    ).all()
    return render_template(
        "client/cases.html",
        cases=rows,
        balances=balances(db.session, [c.id for c in rows]),
        page=page,
        pages=max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1),
        total=total,
        q=q,
        status=status,
        sort=sort,
        statuses=STATUSES,
        sorts=list(SORTS),
    )


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


@bp.get("/cases/<reference>")
def case(reference: str):
    case = own_case(reference)
    return _case_page(case, RecallForm(), DirectPaymentForm())


def _case_page(case: Case, recall_form, payment_form, status: int = 200):
    entries = db.session.scalars(
        sa.select(LedgerEntry)
        .where(LedgerEntry.case_id == case.id)
        .order_by(LedgerEntry.received_at, LedgerEntry.id)
    ).all()
    # A summary of contact activity; the agency's notes and message texts stay internal.
    activity = db.session.execute(
        sa.select(Contact.channel, sa.func.count(), sa.func.max(Contact.occurred_at))
        .where(Contact.case_id == case.id)
        .group_by(Contact.channel)
    ).all()
    return render_template(
        "client/case.html",
        case=case,
        entries=entries,
        activity=activity,
        balance=balance_cents(db.session, case.id),
        recall_form=recall_form,
        payment_form=payment_form,
    ), status


@bp.post("/cases/<reference>/recall")
def recall(reference: str):
    case = own_case(reference)
    form = RecallForm()
    if not form.validate_on_submit():
        return _case_page(case, form, DirectPaymentForm(), 422)
    if case.status not in OPEN_STATUSES:
        flash(f"This case is {case.status} and can no longer be recalled.", "error")
        return _case_page(case, form, DirectPaymentForm(), 422)
    try:
        change_status(
            db.session,
            case,
            "closed",
            actor=actor(),
            reason=form.reason.data,
            close_reason="recalled",
        )
    except TransitionError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _case_page(case, form, DirectPaymentForm(), 422)
    db.session.commit()
    flash(f"{case.reference} was recalled. The agency has stopped collecting it.", "success")
    return redirect(url_for("client_area.case", reference=case.reference))


@bp.post("/cases/<reference>/direct-payments")
def direct_payment(reference: str):
    case = own_case(reference)
    form = DirectPaymentForm()
    if form.validate_on_submit():
        try:
            with attempt() as session:
                post_payment(
                    session,
                    case,
                    form.amount.data,
                    external_id=client_external_id(case.client.code, form.reference.data),
                    received_at=form.received_at.data,
                    method=form.method.data,
                    actor=actor(),
                    direct=True,
                    memo="reported by the client",
                    today=agency_today(),
                )
        except ReceivedDateError as exc:
            form.received_at.errors.append(f"{str(exc).capitalize()}.")
        except LedgerError as exc:
            form.amount.errors.append(str(exc).replace("direct:" + case.client.code + ":", ""))
        else:
            flash("Thank you. The payment was recorded and the balance updated.", "success")
            return redirect(url_for("client_area.case", reference=case.reference))
    return _case_page(case, RecallForm(), form, 422)


# --- referrals -----------------------------------------------------------------------------


class UploadForm(FlaskForm):
    file = FileField(
        "Referral file (CSV or Excel .xlsx, up to 20 MB)",
        validators=[FileRequired("Choose a file to upload.")],
    )


def _referrals_page(form: UploadForm, status: int = 200):
    batches = db.session.scalars(
        sa.select(ReferralBatch)
        .where(ReferralBatch.client_id == current_user.client_id)
        .order_by(ReferralBatch.created_at.desc(), ReferralBatch.id.desc())
        .limit(100)
    ).all()
    return render_template("client/referrals.html", batches=batches, form=form), status


@bp.get("/referrals")
def referrals():
    return _referrals_page(UploadForm())


@bp.post("/referrals")
def upload():
    form = UploadForm()
    if not form.validate_on_submit():
        return _referrals_page(form, 422)
    upload = form.file.data
    data, filename = upload.read(), upload.filename or "upload.csv"
    client = current_user.client
    try:
        batch = preview(db.session, client, data, filename, as_of=agency_today(), actor=actor())
    except FileRefused as exc:
        db.session.rollback()
        if _needs_mapping(data, filename, str(exc)):
            batch = hold_for_mapping(
                db.session, client, data, filename, as_of=agency_today(), actor=actor()
            )
            db.session.commit()
            flash(f"{exc} Match your columns to ours below.", "error")
            return redirect(url_for("client_area.mapping", batch_id=batch.id))
        form.file.errors.append(str(exc))
        return _referrals_page(form, 422)
    db.session.commit()
    return redirect(url_for("client_area.batch", batch_id=batch.id))


def _needs_mapping(data: bytes, filename: str, message: str) -> bool:
    """A readable file refused only for its column names can be mapped."""
    try:
        read_header(data, filename)
    except FileRefused:
        return False
    return "column" in message.lower()


@bp.route("/referrals/<int:batch_id>/mapping", methods=["GET", "POST"])
def mapping(batch_id: int):
    batch = own_batch(batch_id)
    if batch.status != "mapping":
        return redirect(url_for("client_area.batch", batch_id=batch.id))
    header = [h for h in read_header(batch.content, batch.filename) if h.strip()]
    current = {ours: theirs for theirs, ours in (current_user.client.header_mapping or {}).items()}
    if request.method == "POST":
        if not FlaskForm().validate_on_submit():
            abort(400)
        chosen = {}
        for ours in KNOWN_COLUMNS:
            theirs = request.form.get(f"map-{ours}", "")
            if theirs and theirs in header:
                chosen[theirs] = ours
        try:
            apply_mapping(db.session, batch, chosen, actor=actor())
        except FileRefused as exc:
            db.session.rollback()
            flash(str(exc), "error")
            current = {ours: theirs for theirs, ours in chosen.items()}
        else:
            db.session.commit()
            flash("Columns matched. We will use this mapping for your next files too.", "success")
            return redirect(url_for("client_area.batch", batch_id=batch.id))
    return render_template(
        "client/mapping.html",
        batch=batch,
        header=header,
        current=current,
        known=KNOWN_COLUMNS,
        required=REQUIRED_COLUMNS,
        form=FlaskForm(),
    )


@bp.get("/referrals/<int:batch_id>")
def batch(batch_id: int):
    batch = own_batch(batch_id)
    if batch.status == "mapping":
        return redirect(url_for("client_area.mapping", batch_id=batch.id))
    return render_template("client/batch.html", batch=batch, form=FlaskForm())


@bp.get("/referrals/<int:batch_id>/status.json")
def batch_status(batch_id: int):
    batch = own_batch(batch_id)
    db.session.refresh(batch)
    return jsonify(
        status=batch.status,
        processed=batch.processed_rows,
        total=batch.total_rows,
        percent=batch.percent_done,
        accepted=batch.accepted_count,
        rejected=batch.rejected_count,
    )


@bp.post("/referrals/<int:batch_id>/confirm")
def batch_confirm(batch_id: int):
    batch = own_batch(batch_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        confirm(db.session, batch, actor=actor())
    except ValueError as exc:
        flash(str(exc), "error")
        return redirect(url_for("client_area.batch", batch_id=batch.id))
    db.session.commit()  # the import job is sent after this commit
    return redirect(url_for("client_area.batch", batch_id=batch.id))


@bp.post("/referrals/<int:batch_id>/cancel")
def batch_cancel(batch_id: int):
    batch = own_batch(batch_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        cancel(db.session, batch, actor=actor())
    except ValueError as exc:
        flash(str(exc), "error")
    else:
        db.session.commit()
        flash("The file was set aside; nothing was imported.", "info")
    return redirect(url_for("client_area.referrals"))


@bp.get("/referrals/<int:batch_id>/rejected.csv")
def batch_rejected(batch_id: int):
    """The rejected rows as the client sent them, with a `reason` column, to fix and re-upload."""
    batch = own_batch(batch_id)
    reasons = {
        r["row"]: f"{r['column']}: {r['reason']}" if r["column"] else r["reason"]
        for r in batch.rejected
    }
    header, rows = raw_rows(batch.content, batch.filename)
    body = write_csv(
        ([*cells, reasons[number]] for number, cells in rows if number in reasons),
        [*header, "reason"],
    )
    name = f"rejected-rows-{batch.id}.csv"
    return Response(
        body, mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )
