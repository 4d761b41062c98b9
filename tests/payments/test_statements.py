"""Statements against hand-computed figures: tiers at their boundaries, half-up rounding per
payment, direct payments, reversals in a later month, late postings, negative remittances."""

import csv
import datetime as dt
import io
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine

from cases import audit
from cases.audit import AuditEvent
from cases.ledger import LedgerEntry
from cases.model import utcnow
from payments.posting import post_payment, reverse_payment
from payments.statements import (
    Month,
    Statement,
    StatementError,
    StatementLine,
    csv_text,
    document,
    issue,
    last_ended_month,
    month_has_ended,
    parse_month,
)

ACTOR = audit.Actor(None, "test")
ZONE = ZoneInfo("America/New_York")
SEP = Month(2026, 9)
OCT = Month(2026, 10)
NOV = Month(2026, 11)
# Money moves on a case from its referral date on: the book's cases are referred before the
# September and October payments posted on them.
REFERRED = dt.date(2026, 9, 1)


def fake_pdf(doc):
    return f"%PDF {doc.number} {doc.line_count}".encode()


def run(session, client, month):
    return issue(session, client, month, zone=ZONE, now=utcnow(), actor=ACTOR, render_pdf=fake_pdf)


def pay(session, case, cents, day, ref, direct=False):
    return post_payment(
        session,
        case,
        cents,
        external_id=ref,
        received_at=day,
        method="check",
        actor=ACTOR,
        direct=direct,
    )


@pytest.fixture
def book(db_session, make_client, make_case):
    """ACME (25% from 90 days, 33% from 181, 40% from 366) with four cases paid in October."""
    acme = make_client("ACME")
    cases = {
        days: make_case(
            acme, principal=500_000, status="active", days_past_due=days, referred_on=REFERRED
        )
        for days in (90, 180, 181, 366)
    }
    pay(db_session, cases[180], 10_002, dt.date(2026, 10, 3), "p180")  # 25%: 2500.50 -> 2501
    pay(db_session, cases[181], 3_350, dt.date(2026, 10, 9), "p181")  # 33%: 1105.50 -> 1106
    pay(db_session, cases[366], 20_000, dt.date(2026, 10, 31), "d366", direct=True)  # 40%: 8000
    pay(db_session, cases[90], 5_001, dt.date(2026, 10, 1), "p90")  # 25%: 1250.25 -> 1250
    pay(db_session, cases[90], 7_000, dt.date(2026, 9, 30), "sept")  # on September's statement
    pay(db_session, cases[90], 9_000, dt.date(2026, 11, 1), "nov")  # November: not listed
    run(db_session, acme, SEP)
    return acme, cases


def test_parse_month():
    assert parse_month("2026-10") == OCT
    assert OCT.start == dt.date(2026, 10, 1) and OCT.end == dt.date(2026, 10, 31)
    assert Month(2026, 12).shift(1) == Month(2027, 1) and Month(2026, 1).shift(-1).month == 12
    for bad in ("2026-13", "2026-1", "26-10", "", None, "2026-10-01", "1999-12"):
        with pytest.raises(StatementError, match="YYYY-MM"):
            parse_month(bad)


def test_a_month_ends_at_midnight_in_the_agency_time_zone():
    # Midnight of 1 December in New York is 05:00 UTC.
    assert not month_has_ended(NOV, ZONE, dt.datetime(2026, 12, 1, 4, 59, tzinfo=dt.UTC))
    assert month_has_ended(NOV, ZONE, dt.datetime(2026, 12, 1, 5, 0, tzinfo=dt.UTC))
    assert last_ended_month(ZONE, dt.datetime(2026, 12, 1, 4, 59, tzinfo=dt.UTC)) == OCT
    assert last_ended_month(ZONE, dt.datetime(2026, 12, 1, 5, 0, tzinfo=dt.UTC)) == NOV


def test_october_against_hand_computed_figures(db_session, book):
    acme, cases = book
    result = run(db_session, acme, OCT)
    statement = result.statement
    assert result.created
    assert statement.number == "ST-ACME-2026-10"
    assert statement.collected_by_agency == 10_002 + 3_350 + 5_001
    assert statement.collected_by_client == 20_000
    assert statement.fees == 2_501 + 1_106 + 8_000 + 1_250
    assert statement.net_remittance == 18_353 - 12_857 == 5_496
    by_ref = {line.case_reference: line for line in statement.lines}
    assert by_ref[cases[180].reference].fee_bps == 2500
    assert by_ref[cases[181].reference].fee_bps == 3300
    assert by_ref[cases[366].reference].fee_bps == 4000
    assert by_ref[cases[366].reference].paid_to == "client"
    assert not any(line.late for line in statement.lines)
    assert len(statement.lines) == 4
    history = {h["month"]: h["cents"] for h in statement.history}
    assert list(history)[0] == "2025-11" and list(history)[-1] == "2026-10"
    assert history["2026-09"] == 7_000 and history["2026-10"] == 38_353
    assert db_session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "statement.issued"))


def test_rerun_returns_the_issued_statement_unchanged(db_session, book):
    acme, cases = book
    first = run(db_session, acme, OCT).statement
    pdf, csv, total = first.pdf, first.csv, first.net_remittance
    pay(db_session, cases[90], 1_000, dt.date(2026, 10, 30), "late")  # posted after issue
    again = run(db_session, acme, OCT)
    assert not again.created
    assert again.statement.id == first.id and again.statement.number == first.number
    assert (again.statement.pdf, again.statement.csv) == (pdf, csv)
    assert again.statement.net_remittance == total
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Statement)) == 2


def test_a_month_never_issued_goes_on_the_next_statement_as_adjustments(
    db_session, make_client, make_case
):
    acme = make_client("ACME")
    case = make_case(acme, principal=50_000, status="active", referred_on=dt.date(2026, 8, 3))
    pay(db_session, case, 1_000, dt.date(2026, 8, 14), "aug")
    october = run(db_session, acme, OCT).statement
    assert [(line.late, line.received_at) for line in october.lines] == [
        (True, dt.date(2026, 8, 14))
    ]
    assert october.collected_by_agency == 1_000 and october.fees == 250


def test_a_month_not_ended_is_refused_and_nothing_is_issued(db_session, book):
    acme, _ = book
    with pytest.raises(StatementError, match="2026-11 has not ended yet in America/New_York"):
        run(db_session, acme, NOV)
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Statement)) == 1  # September


def test_reversal_next_month_and_a_late_posting_go_on_the_next_statement(db_session, book):
    acme, cases = book
    october = run(db_session, acme, OCT).statement
    p180 = db_session.scalar(sa.select(LedgerEntry).where(LedgerEntry.external_id == "p180"))
    reverse_payment(
        db_session,
        p180,
        amount_cents=None,
        external_id="refund-p180",
        received_at=dt.date(2026, 11, 5),
        reason="chargeback",
        actor=ACTOR,
    )
    pay(db_session, cases[90], 1_000, dt.date(2026, 10, 30), "late-oct")  # after October issued
    with time_machine.travel(dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)):
        november = run(db_session, acme, NOV).statement
    late = [line for line in november.lines if line.late]
    assert [(line.received_at, line.amount_cents, line.fee_cents) for line in late] == [
        (dt.date(2026, 10, 30), 1_000, 250)
    ]
    reversal = next(line for line in november.lines if line.kind == "reversal")
    assert (reversal.amount_cents, reversal.fee_cents, reversal.paid_to) == (
        -10_002,
        -2_501,
        "agency",
    )
    # November: the reversal, the late October payment, and the 9,000 of 1 November.
    assert november.collected_by_agency == -10_002 + 1_000 + 9_000 == -2
    assert november.fees == -2_501 + 250 + 2_250 == -1
    assert november.net_remittance == -2 - -1 == -1
    # Every money movement is on exactly one statement.
    movements = db_session.scalar(
        sa.select(sa.func.count())
        .select_from(LedgerEntry)
        .where(LedgerEntry.kind.in_(("payment", "direct_payment", "reversal")))
    )
    september = db_session.scalar(sa.select(Statement).where(Statement.month == "2026-09"))
    assert movements == len(september.lines) + len(october.lines) + len(november.lines) == 8
    # October is unchanged.
    assert len(october.lines) == 4 and october.net_remittance == 5_496


def test_negative_remittance_when_the_client_was_paid_directly(db_session, make_client, make_case):
    beta = make_client("BETA", "Beta", tiers="90=2500")
    case = make_case(beta, principal=50_000, status="active")
    pay(db_session, case, 10_000, dt.date(2026, 10, 12), "d1", direct=True)
    statement = run(db_session, beta, OCT).statement
    assert (statement.collected_by_agency, statement.collected_by_client) == (0, 10_000)
    assert statement.fees == 2_500 and statement.net_remittance == -2_500


def test_statements_are_issued_in_month_order(db_session, book):
    acme, _ = book
    with time_machine.travel(dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)):
        run(db_session, acme, NOV)
        with pytest.raises(StatementError, match="issued in month order"):
            run(db_session, acme, OCT)


def test_an_issued_statement_cannot_be_edited(db_session, book):
    acme, _ = book
    statement = run(db_session, acme, OCT).statement
    statement.fees = 0
    with pytest.raises(RuntimeError, match="never changes"):
        db_session.flush()
    db_session.rollback()


def test_csv_lines_and_neutralised_cells(db_session, make_client, make_case):
    acme = make_client("ACME")
    case = make_case(
        acme,
        principal=50_000,
        status="active",
        last_name="=cmd|calc",
        days_past_due=100,
        referred_on=REFERRED,
    )
    payment = pay(db_session, case, 10_000, dt.date(2026, 10, 2), "c1")
    reverse_payment(
        db_session,
        payment,
        amount_cents=4_000,
        external_id="c1-r",
        received_at=dt.date(2026, 10, 20),
        reason="partial refund",
        actor=ACTOR,
    )
    statement = run(db_session, acme, OCT).statement
    rows = list(csv.DictReader(io.StringIO(statement.csv)))
    assert [(r["kind"], r["amount"], r["fee"], r["fee_rate_percent"]) for r in rows] == [
        ("payment", "100.00", "25.00", "25.00"),
        ("reversal", "(40.00)", "(10.00)", "25.00"),
    ]
    assert rows[0]["debtor"] == "Maria =cmd|calc"
    assert statement.csv == csv_text(document(statement, ZONE))
    assert db_session.scalar(sa.select(sa.func.count()).select_from(StatementLine)) == 2
