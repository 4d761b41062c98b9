"""Who is signed in to the portal, and what they may see: their own cases, nothing else.

The portal's session is its own (separate keys from staff sign-in), kept on the server
(shell/signed_in.py): it ends when the debtor signs out, after 15 minutes idle, or 12 hours
after sign-in. Every view that takes an id looks it up through the signed-in debtor, so another
debtor's id is simply not found (404), never shown."""

from __future__ import annotations

from functools import wraps

import sqlalchemy as sa
from flask import Blueprint, Response, abort, g, redirect, request, session, url_for
from sqlalchemy.orm import joinedload

from cases import audit, limitations
from cases.case import OPEN_STATUSES, Case
from cases.debtors import Debtor
from cases.documents import Document
from cases.ledger import LedgerEntry
from cases.sessions import SignInSession
from shell import signed_in
from shell.document_store import inline_response
from shell.extensions import db
from shell.timezone import agency_today

bp = Blueprint("portal", __name__, url_prefix="/portal")

SESSION_KEY = "portal_debtor_id"


def sign_in(debtor_id: int) -> None:
    language = session.get("portal_lang")
    for kind in (signed_in.STAFF, signed_in.PORTAL):  # the sessions this cookie held end
        signed_in.end(kind)
    session.clear()
    if language:
        session["portal_lang"] = language
    session[SESSION_KEY] = debtor_id
    signed_in.start(signed_in.PORTAL, debtor_id=debtor_id)


def sign_out() -> None:
    """Ends the portal session, on the server too: a copy of the cookie is worthless after."""
    session.pop(SESSION_KEY, None)
    signed_in.end(signed_in.PORTAL)


def signed_in_debtor_id() -> int | None:
    """The signed-in debtor's id, from the cookie alone (no database read): neither idle for
    15 minutes nor older than its lifetime. Whether the session's record is still on the server
    is checked by the query that then loads the debtor (`signed_in_debtor`) or the pages'
    stamps (portal/pages.py), with `g.portal_session` (the token's stored form)."""
    debtor_id = session.get(SESSION_KEY)
    g.portal_session = signed_in.current_hash(signed_in.PORTAL)
    if debtor_id is None or g.portal_session is None:
        session.pop(SESSION_KEY, None)
        return None
    return debtor_id


def _live_debtor(debtor_id: int) -> Debtor | None:
    """The debtor, if this request's session record is still on the server (one query)."""
    return db.session.scalar(
        sa.select(Debtor)
        .join(SignInSession, SignInSession.debtor_id == Debtor.id)
        .where(Debtor.id == debtor_id, SignInSession.token_hash == g.portal_session)
    )


def signed_in_debtor() -> Debtor | None:
    debtor_id = signed_in_debtor_id()
    return None if debtor_id is None else _live_debtor(debtor_id)


def session_ended() -> bool:
    """For a page whose own query found nothing: was it because the session ended on the
    server (then it is signed out here too)?"""
    if _live_debtor(g.debtor_id) is not None:
        return False
    sign_out()
    return True


def _signed_in_only(view, load_debtor: bool):
    @wraps(view)
    def wrapper(*args, **kwargs):
        g.debtor_id = signed_in_debtor_id()
        g.debtor = None
        if load_debtor and g.debtor_id is not None:
            g.debtor = _live_debtor(g.debtor_id)
            if g.debtor is None:  # the session ended on the server
                sign_out()
        if g.debtor_id is None or (load_debtor and g.debtor is None):
            return redirect(url_for("portal.login", next=request.path))
        return view(*args, **kwargs)

    return wrapper


def debtor_required(view):
    """Signed in: `g.debtor` is the debtor, `g.debtor_id` their id."""
    return _signed_in_only(view, load_debtor=True)


def debtor_id_required(view):
    """Signed in as far as the cookie says, for pages that read the debtor's records by
    `g.debtor_id` in their own query, which must also check the session's record on the server
    (`g.portal_session`; see `pages.stamps`): one database read fewer."""
    return _signed_in_only(view, load_debtor=False)


@bp.context_processor
def time_barred_disclosures() -> dict:
    """The disclosures the debtor's state requires on a time-barred debt (SPEC §6.11), for
    every portal page: the case the page is about, or all the debtor's open cases."""
    debtor_id = g.get("debtor_id")
    if debtor_id is None:
        return {"time_barred_disclosures": []}
    query = sa.select(Case).where(Case.debtor_id == debtor_id)
    reference = (request.view_args or {}).get("reference")
    if reference:
        query = query.where(Case.reference == str(reference).strip().upper())
    else:
        query = query.where(Case.status.in_(OPEN_STATUSES))
    found = []
    for case in db.session.scalars(query.order_by(Case.reference)):
        text = limitations.disclosure(db.session, case, agency_today())
        if text:
            found.append((case.reference, text))
    return {"time_barred_disclosures": found}


def debtor_actor() -> audit.Actor:
    """The signed-in debtor, as audit events name them."""
    return audit.Actor(None, f"debtor:{g.debtor.id}")


def own_case(reference: str) -> Case:
    case = db.session.scalar(
        sa.select(Case)
        .options(joinedload(Case.client))
        .where(Case.reference == reference.strip().upper(), Case.debtor_id == g.debtor_id)
    )
    return case or abort(404)


def own_payment(entry_id: int) -> LedgerEntry:
    """A payment to the agency on one of the debtor's cases (what a receipt is for)."""
    entry = db.session.scalar(
        sa.select(LedgerEntry)
        .join(Case, Case.id == LedgerEntry.case_id)
        .where(
            LedgerEntry.id == entry_id,
            LedgerEntry.kind == "payment",
            Case.debtor_id == g.debtor_id,
        )
    )
    return entry or abort(404)


def own_document(document_id: int, kinds: tuple[str, ...]) -> Document:
    document = db.session.scalar(
        sa.select(Document)
        .join(Case, Case.id == Document.case_id)
        .where(
            Document.id == document_id,
            Document.kind.in_(kinds),
            Case.debtor_id == g.debtor_id,
        )
    )
    return document or abort(404)


def own_case_document(reference: str, document_id: int, kind: str) -> Response:
    """A document of this kind on this case of the signed-in debtor's, shown inline."""
    document = own_document(document_id, (kind,))
    if document.case_id != own_case(reference).id:
        abort(404)
    return inline_response(document)
