"""The balance pages are rendered once per version of what they show (portal/pages.py): a
second look is served from the cache, and every change the page shows, made through the
domain's own functions, renders it again with the change."""

from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import g, template_rendered
from sqlalchemy import event
from sqlalchemy.orm import Session

from bench.common import statements_run
from cases import audit
from cases.case import change_status
from cases.clients import update_client
from cases.disputes import record_dispute, send_verification
from cases.offers import add_band, propose_offer, remove_band, withdraw_offer
from cases.plans import create_plan, mark_paid
from cases.stamps import CASE_RECORDS
from payments.autopay import _claim
from payments.posting import post_adjustment, post_payment, reverse_payment
from portal import pages
from shell.document_store import store
from shell.extensions import db
from tests.conftest import csrf_from, portal_sign_in

STAFF = audit.Actor(None, "user:collector")
TODAY = dt.date(2026, 11, 23)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def rendered(app):
    """The names of the templates rendered since the list was last cleared."""
    names: list[str] = []

    def record(sender, template, context, **extra):
        names.append(template.name)

    template_rendered.connect(record, app)
    yield names
    template_rendered.disconnect(record, app)


def look(client, rendered, path) -> tuple[str, bool]:
    """The page at `path`, and whether it was rendered (rather than served from the cache)."""
    rendered.clear()
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True), bool(rendered)


def without_tokens(html: str) -> str:
    return re.sub(r'name="csrf_token" value="[^"]+"', "", html)


def test_a_second_look_is_served_from_the_cache_with_this_sessions_tokens(
    app, db_session, signed_in, rendered, make_client, make_case
):
    case = make_case(make_client(), status="active")
    client = signed_in(case)
    for path in ("/portal/", f"/portal/cases/{case.reference}"):
        first, was_rendered = look(client, rendered, path)
        assert was_rendered
        second, was_rendered = look(client, rendered, path)
        assert not was_rendered
        assert without_tokens(second) == without_tokens(first)
    # The cached page's tokens are this session's, and good: sign out with one.
    response = client.post("/portal/logout", data={"csrf_token": csrf_from(client.get("/portal/"))})
    assert response.status_code == 302 and response.location.endswith("/portal/login")
    # Signed out, the cached page is not shown.
    assert client.get(f"/portal/cases/{case.reference}").status_code == 302

    # Another session gets its own token in the same cached page.
    other = app.test_client()
    portal_sign_in(other, case.reference)
    mine, theirs = (
        csrf_from(c.get(f"/portal/cases/{case.reference}")) for c in (signed_in(case), other)
    )
    assert mine != theirs


def test_with_redis_a_page_this_process_served_makes_no_round_trip_to_redis(
    app, db_session, signed_in, rendered, make_client, make_case
):
    store = app.extensions[pages.EXTENSION]
    if not isinstance(store, pages.TieredPages):
        pytest.skip("REDIS_URL is not set: pages are cached in the process only")
    case = make_case(make_client(), status="active")
    client = signed_in(case)
    path = f"/portal/cases/{case.reference}"
    first, was_rendered = look(client, rendered, path)
    assert was_rendered
    keys = list(store.shared.redis.scan_iter("recourse:portal-page:*"))
    assert keys  # shared with the other processes
    store.shared.redis.delete(*keys)
    # Served from this process's copy: Redis no longer has it and it is not rendered again.
    second, was_rendered = look(client, rendered, path)
    assert not was_rendered and without_tokens(second) == without_tokens(first)
    assert not list(store.shared.redis.scan_iter("recourse:portal-page:*"))

    # A page another process rendered (in Redis only) is served from Redis, then kept here.
    store.local = pages.LocalPages()
    try:
        look(client, rendered, path)  # rendered: in neither
        store.local = pages.LocalPages()
        _, was_rendered = look(client, rendered, path)
        assert not was_rendered
        assert len(store.local._entries) == 1  # kept here from Redis
        # A write is shown at once, whichever copy the process holds.
        _pay(db_session, case)
        page, was_rendered = look(client, rendered, path)
        assert was_rendered and "$900.00" in page
    finally:
        store.local = pages.LocalPages()


def test_another_debtor_is_not_served_the_cached_page(
    app, db_session, signed_in, rendered, make_client, make_case
):
    acme = make_client()
    case = make_case(acme, status="active")
    someone_else = make_case(acme, last_name="Nguyen", postal_code="10002")
    look(signed_in(case), rendered, f"/portal/cases/{case.reference}")
    intruder = app.test_client()
    assert portal_sign_in(intruder, someone_else.reference, "Nguyen", "10002").status_code == 302
    assert intruder.get(f"/portal/cases/{case.reference}").status_code == 404
    assert case.reference not in intruder.get("/portal/").get_data(as_text=True)


def test_a_session_whose_debtor_has_no_case_is_signed_out(db_session, client):
    from cases.debtors import Debtor
    from cases.model import utcnow
    from cases.sessions import start
    from portal.access import SESSION_KEY
    from shell.signed_in import PORTAL

    debtor = Debtor(last_name="Nocase", match_key="nocase")
    db_session.add(debtor)
    db_session.flush()
    token = start(db_session, lifetime=dt.timedelta(hours=12), debtor_id=debtor.id)
    now = utcnow().timestamp()
    with client.session_transaction() as session:
        session[SESSION_KEY] = debtor.id
        session.update(zip(PORTAL.keys, (token, now, now), strict=True))
    response = client.get("/portal/")
    assert response.status_code == 302 and response.location.endswith("/portal/login")
    assert client.get("/portal/cases/RC-2611-00001").status_code == 302


def test_a_page_with_a_message_is_rendered_for_it(
    db_session, signed_in, rendered, make_client, make_case
):
    case = make_case(make_client(), status="active")
    client = signed_in(case)
    path = f"/portal/cases/{case.reference}"
    look(client, rendered, path)
    client.post("/portal/language", data={"csrf_token": csrf_from(client.get(path)), "lang": "es"})
    spanish, was_rendered = look(client, rendered, path)
    assert was_rendered and 'lang="es"' in spanish
    with client.session_transaction() as session:
        session["_flashes"] = [("info", "A message for this response only")]
    page, was_rendered = look(client, rendered, path)
    assert was_rendered and "A message for this response only" in page
    page, was_rendered = look(client, rendered, path)
    assert not was_rendered and "A message for this response only" not in page


def _pay(db_session, case, cents=10_000, ref="check:1"):
    return post_payment(
        db_session,
        case,
        cents,
        external_id=ref,
        received_at=TODAY,
        method="check",
        actor=STAFF,
    )


def _offer(db_session, case):
    return propose_offer(
        db_session,
        case,
        amount_cents=90_000,
        expires_on=TODAY + dt.timedelta(days=40),  # after the validation period
        today=TODAY,
        role="collector",
        actor=STAFF,
    )


def _plan(db_session, case):
    return create_plan(
        db_session,
        case,
        frequency="monthly",
        count=4,
        first_on=TODAY + dt.timedelta(days=7),
        today=TODAY,
        actor=STAFF,
    )


def _band(db_session, case):
    return add_band(
        db_session,
        case.client,
        min_balance_cents=50_000,
        max_balance_cents=None,
        pay_bps=8000,
        valid_days=14,
        actor=STAFF,
    )


def _dispute(db_session, case):
    return record_dispute(
        db_session,
        case,
        reason="Not my debt",
        channel="call",
        received_at=dt.datetime(2026, 11, 23, 9, tzinfo=dt.UTC),
        actor=STAFF,
    )


def _notice(db_session, case):
    return store(
        b"%PDF-1.4 notice",
        filename="notice.pdf",
        content_type="application/pdf",
        kind="validation_notice",
        case_id=case.id,
        debtor_id=case.debtor_id,
    )


# (what is set up before the first look, the change, what the page says after it)
CHANGES = {
    "a payment": (None, lambda s, c, _: _pay(s, c), "Balance: $900.00"),
    "a reversal": (
        _pay,
        lambda s, c, _: reverse_payment(
            s,
            _pay(s, c, 5_000, "check:2"),
            amount_cents=None,
            external_id="return:2",
            received_at=TODAY,
            reason="bounced",
            actor=STAFF,
        ),
        "Payment returned",
    ),
    "an adjustment": (
        None,
        lambda s, c, _: post_adjustment(
            s, c, -2_500, reason="goodwill", received_at=TODAY, actor=STAFF
        ),
        "Balance: $975.00",
    ),
    "an offer": (None, lambda s, c, _: _offer(s, c), "Offers for you"),
    "an offer withdrawn": (
        _offer,
        lambda s, c, offer: withdraw_offer(
            s, offer, role="supervisor", actor=STAFF, reason="no longer"
        ),
        "!Offers for you",
    ),
    "a plan": (None, lambda s, c, _: _plan(s, c), "Your payment plan"),
    "an installment paid": (
        _plan,
        lambda s, c, plan: mark_paid(s, plan.installments[0], actor=STAFF),
        '<td data-label="Status">Paid</td>',
    ),
    "an installment charged (a bulk update)": (
        _plan,
        lambda s, c, plan: _claim(s, plan.installments[:1], plan.installments[0].due_on),
        '<td data-label="Status">Processing</td>',
    ),
    "a dispute": (None, lambda s, c, _: _dispute(s, c), "Your dispute of November 23, 2026"),
    "a dispute answered": (
        _dispute,
        lambda s, c, _: send_verification(s, c, document_id=None, actor=STAFF),
        "!Your dispute of",
    ),
    "a document": (None, lambda s, c, _: _notice(s, c), "Your validation notice (PDF)"),
    "a status": (
        None,
        lambda s, c, _: change_status(
            s, c, "closed", actor=STAFF, reason="recalled", close_reason="recalled"
        ),
        "<dd>Closed</dd>",
    ),
    "the client's name": (
        None,
        lambda s, c, _: update_client(s, c.client, actor=STAFF, name="Acme Heating"),
        "Acme Heating",
    ),
    "a discount band": (None, lambda s, c, _: _band(s, c), "A discount for you"),
    "a discount band removed": (
        _band,
        lambda s, c, band: remove_band(s, band, actor=STAFF),
        "!A discount for you",
    ),
}


@pytest.mark.parametrize("change", CHANGES)
def test_every_change_the_case_page_shows_renders_it_again(
    change, db_session, signed_in, rendered, make_client, make_case
):
    before, make_change, expected = CHANGES[change]
    case = make_case(make_client(), status="active")
    case.validation_period_ends_on = TODAY + dt.timedelta(days=20)
    made = before(db_session, case) if before else None
    db_session.flush()
    client = signed_in(case)
    path = f"/portal/cases/{case.reference}"
    first, _ = look(client, rendered, path)
    _, was_rendered = look(client, rendered, path)
    assert not was_rendered  # cached until the change

    make_change(db_session, case, made)
    page, was_rendered = look(client, rendered, path)
    assert was_rendered
    if expected.startswith("!"):
        assert expected[1:] in first and expected[1:] not in page
    else:
        assert expected not in first and expected in page


def test_the_accounts_page_shows_a_payment_and_the_debtors_new_name(
    db_session, signed_in, rendered, make_client, make_case
):
    case = make_case(make_client(), status="active")
    client = signed_in(case)
    look(client, rendered, "/portal/")
    _pay(db_session, case)
    page, was_rendered = look(client, rendered, "/portal/")
    assert was_rendered and "$900.00" in page
    case.debtor.first_name = "Mariana"
    page, was_rendered = look(client, rendered, "/portal/")
    assert was_rendered and "Mariana" in page


def test_every_bulk_statement_on_what_the_pages_show_is_listed_here():
    """Bulk statements bypass the flush hook (cases/stamps.py): each must touch the stamps
    itself, or be an insert of new cases' records (nothing was shown of them before)."""
    shown = {cls.__name__ for cls in CASE_RECORDS} | {
        "Case",
        "Client",
        "Debtor",
        "Installment",
        "OfferBand",
    }
    # Core statements, and the referral import's COPY/executemany helper (new rows only).
    bulk = re.compile(
        r"(?:sa\.(update|delete|insert)\((\w+)\))|(?:_(insert)_rows\(\s*session,\s*(\w+),)"
    )
    found = set()
    for folder in ("agency", "cases", "payments", "portal"):
        for path in (ROOT / folder).rglob("*.py"):
            for match in bulk.finditer(path.read_text()):
                verb, name = match.group(1) or match.group(3), match.group(2) or match.group(4)
                if name in shown:
                    found.add((path.relative_to(ROOT).as_posix(), verb, name))
    assert found == {
        ("payments/autopay.py", "update", "Installment"),  # touches the plan's case
        ("cases/referrals.py", "insert", "Debtor"),  # new debtors, cases and placements
        ("cases/referrals.py", "insert", "Case"),
        ("cases/referrals.py", "insert", "LedgerEntry"),
        # Who works a case: the portal does not show it.
        ("cases/assignment.py", "update", "Case"),
    }


def test_stamps_change_in_the_same_transaction_never_once_a_flush(
    db_session, make_client, make_case
):
    """What flushes changed is stamped by the commit, in one statement; a posting's case, on
    PostgreSQL, by the posting's own one statement (the entry, its totals, its audit row and
    its case's stamp: no statement of its own), which leaves the commit nothing to stamp."""
    from cases.case import Case

    case = make_case(make_client(), status="active")
    db_session.commit()
    postgres = db_session.get_bind().dialect.name == "postgresql"

    def stamp():
        return db_session.scalar(sa.select(Case.stamp).where(Case.id == case.id))

    def folded(seen):
        return [" ".join(statement.split()) for statement in seen]

    def updates(seen):
        return [s for s in folded(seen) if s.startswith("UPDATE cases SET stamp")]

    def postings(seen):
        found = [s for s in folded(seen) if s.startswith("WITH e AS (INSERT INTO ledger_entries")]
        assert all("UPDATE cases SET stamp" in s for s in found)
        return found

    before = stamp()
    with statements_run(db_session.get_bind()) as seen:
        # Several flushes in one transaction ...
        _pay(db_session, case, ref="check:1")
        db_session.flush()
        _pay(db_session, case, ref="check:2")
        db_session.flush()
        # ... are stamped by its commit, in one statement (or by the postings themselves).
        assert not updates(seen)
        db_session.commit()
    assert (len(updates(seen)), len(postings(seen))) == ((0, 2) if postgres else (1, 0))
    assert stamp() != before

    # A transaction rolled back leaves nothing to stamp at the next one's commit.
    before = stamp()
    _pay(db_session, case, ref="check:3")
    db_session.flush()
    db_session.rollback()
    db_session.commit()
    assert stamp() == before


def test_a_change_made_while_the_commit_stamps_is_stamped_too(db_session, make_client, make_case):
    """Another before-commit hook, run after the stamping one, changes what a page shows: the
    flush that writes it stamps at once."""
    from cases.case import Case

    case = make_case(make_client(), status="active")
    db_session.commit()
    before = db_session.scalar(sa.select(Case.stamp).where(Case.id == case.id))

    def late_change(session):
        case.debtor.first_name = "Late"

    event.listen(Session, "before_commit", late_change)
    try:
        db_session.commit()
    finally:
        event.remove(Session, "before_commit", late_change)
    assert db_session.scalar(sa.select(Case.stamp).where(Case.id == case.id)) != before


def test_on_postgresql_a_cached_view_reads_its_stamps_outside_a_transaction(app):
    """The app's own session on the engine's pool (not the tests' connection): the stamps are
    read in autocommit on the stamps pool (through the driver's cursor, so seen as the pool
    hands out its connection), no session is made for them, and the session reads in a
    transaction again after that."""
    autocommit = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        autocommit.append(conn.connection.dbapi_connection.autocommit)

    def checked_out(dbapi_connection, record, proxy):
        autocommit.append(dbapi_connection.autocommit)

    with app.test_request_context("/portal/"):
        if db.engine.dialect.name != "postgresql":
            pytest.skip("a PostgreSQL matter")
        stamps_pool = app.extensions[pages.STAMPS_ENGINE].pool
        event.listen(db.engine, "before_cursor_execute", seen)
        event.listen(stamps_pool, "checkout", checked_out)
        try:
            g.debtor_id = -1  # no one's: nothing found, nothing to clean up
            assert pages.stamps() == [] and pages.stamps("RC-0000-00000") == []
            assert not db.session.registry.has()
            assert db.session.scalar(sa.text("SELECT 1")) == 1
            assert db.session().in_transaction()
        finally:
            db.session.remove()
            event.remove(db.engine, "before_cursor_execute", seen)
            event.remove(stamps_pool, "checkout", checked_out)
    assert autocommit == [True, True, False]


def test_on_postgresql_the_stamps_survive_a_connection_the_server_dropped(app):
    """The stamps pool has no pre-ping: a connection the server ended is found on use, and the
    read is made again on a new one."""
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("a PostgreSQL matter")
    engine = app.extensions[pages.STAMPS_ENGINE]
    with app.test_request_context("/portal/"):
        g.debtor_id = -1
        with engine.connect() as connection:  # the pool's connection, and its server process
            pid = connection.scalar(sa.text("SELECT pg_backend_pid()"))
        with db.engine.connect() as other:
            assert other.scalar(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        for _ in range(50):  # until the server has ended it
            with db.engine.connect() as other:
                gone = not other.scalar(
                    sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"),
                    {"pid": pid},
                )
            if gone:
                break
            time.sleep(0.05)

        assert pages.stamps() == []
        with engine.connect() as connection:
            assert connection.scalar(sa.text("SELECT pg_backend_pid()")) != pid


def test_on_postgresql_the_stamps_reads_errors_are_sqlalchemys(app):
    """The stamps query runs on the driver's cursor, but its errors are SQLAlchemy's, as every
    other query's: a database lost for good is the error page's 503 "try again", not a 500."""
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("a PostgreSQL matter")
    engine = app.extensions[pages.STAMPS_ENGINE]
    with app.test_request_context("/portal/"):
        with pytest.raises(sa.exc.DataError):  # division by zero: not retried
            pages._read_stamps(engine, "SELECT 1 / 0", {})
        # Ends its own connection each time: dropped, read again, dropped again.
        with pytest.raises(sa.exc.OperationalError) as lost:
            pages._read_stamps(engine, "SELECT pg_terminate_backend(pg_backend_pid())", {})
        assert lost.value.connection_invalidated
        assert pages._read_stamps(engine, "SELECT 1", {}) == [(1,)]  # a new connection
