"""Early-out on the monthly statement (issue #20): payments made during early-out earn the
client's early-out fee and go in their own section; the collection part stays exactly as it was
(the same figures and lines as without early-out)."""

import csv
import datetime as dt
import io

import time_machine

from cases.early_out import convert, set_terms, statement_section
from payments.statements import Month, csv_text, document
from tests.payments import test_statements
from tests.payments.test_statements import ACTOR, NOV, OCT, REFERRED, ZONE, pay, run

book = test_statements.book  # ACME's four collection cases paid in October


def _early_out(db_session, make_case, acme, placed=REFERRED):
    case = make_case(acme, principal=40_000, days_past_due=20, referred_on=placed)
    case.program = "early_out"
    case.early_out_placed_on = placed
    db_session.flush()
    return case


def test_early_out_payments_have_their_own_section_and_leave_collection_as_it_was(
    db_session, book, make_case
):
    acme, cases = book
    early = _early_out(db_session, make_case, acme)
    converted = _early_out(db_session, make_case, acme)
    pay(db_session, early, 10_000, dt.date(2026, 10, 5), "eo1")  # early-out fee 10%: 1000
    pay(db_session, converted, 5_000, dt.date(2026, 10, 6), "eo2")  # before conversion: 500
    convert(db_session, converted, today=dt.date(2026, 10, 10), actor=ACTOR)
    pay(db_session, converted, 4_000, dt.date(2026, 10, 20), "col")  # a collection payment
    statement = run(db_session, acme, OCT).statement
    # The collection part: the book's figures, plus the converted case's collection payment.
    assert {line.case_reference for line in statement.lines} == {
        *(c.reference for c in cases.values()),
        converted.reference,
    }
    assert statement.collected_by_agency == 10_002 + 3_350 + 5_001 + 4_000
    assert statement.collected_by_client == 20_000
    col = next(line for line in statement.lines if line.case_reference == converted.reference)
    assert col.amount_cents == 4_000 and col.fee_bps == 2500
    assert statement.fees == 2_501 + 1_106 + 8_000 + 1_250 + 1_000
    # The early-out section.
    section = statement.early_out
    assert [
        (p["reference"], p["amount_cents"], p["fee_bps"], p["fee_cents"])
        for p in section["payments"]
    ] == [
        (early.reference, 10_000, 1000, 1_000),
        (converted.reference, 5_000, 1000, 500),
    ]
    assert section["collected_cents"] == 15_000 and section["fees_cents"] == 1_500
    assert section["net_cents"] == 13_500
    rows = list(csv.DictReader(io.StringIO(csv_text(document(statement, ZONE)))))
    assert [r["section"] for r in rows].count("early-out") == 2
    assert [r["section"] for r in rows if r["section"] != "early-out"] == ["current"] * 5


def test_a_flat_early_out_fee_is_charged_per_account_placed(db_session, make_client, make_case):
    acme = make_client("ACME")
    set_terms(db_session, acme, actor=ACTOR, fee_kind="flat", flat_fee_cents=700)
    early = _early_out(db_session, make_case, acme, placed=dt.date(2026, 10, 2))
    _early_out(db_session, make_case, acme, placed=dt.date(2026, 10, 3))
    pay(db_session, early, 10_000, dt.date(2026, 10, 5), "eo1")  # no percentage fee
    statement = run(db_session, acme, OCT).statement
    assert statement.lines == [] and statement.fees == 0  # nothing on collection terms
    section = statement.early_out
    assert section["payments"][0]["fee_cents"] == 0 and len(section["placed"]) == 2
    assert section["fees_cents"] == 1_400 and section["net_cents"] == 10_000 - 1_400
    rows = list(csv.DictReader(io.StringIO(statement.csv)))
    assert [r["kind"] for r in rows] == ["payment", "placement", "placement"]


def test_an_early_out_payment_recorded_after_its_months_statement_is_a_late_adjustment(
    db_session, make_client, make_case
):
    acme = make_client("ACME")
    early = _early_out(db_session, make_case, acme, placed=dt.date(2026, 10, 2))
    pay(db_session, early, 10_000, dt.date(2026, 10, 5), "eo-oct")
    october = run(db_session, acme, OCT).statement
    assert [p["amount_cents"] for p in october.early_out["payments"]] == [10_000]
    assert october.early_out["late"] == []
    pay(db_session, early, 3_000, dt.date(2026, 10, 28), "eo-oct-late")  # after October issued
    pay(db_session, early, 2_000, dt.date(2026, 11, 4), "eo-nov")
    with time_machine.travel(dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)):
        november = run(db_session, acme, NOV).statement
    section = november.early_out
    assert [(p["date"], p["amount_cents"]) for p in section["payments"]] == [("2026-11-04", 2_000)]
    assert [(p["date"], p["amount_cents"], p["fee_cents"]) for p in section["late"]] == [
        ("2026-10-28", 3_000, 300)
    ]
    assert section["collected_cents"] == 5_000 and section["fees_cents"] == 500
    rows = list(csv.DictReader(io.StringIO(csv_text(document(november, ZONE)))))
    assert [r["section"] for r in rows] == ["early-out", "early-out late adjustment"]
    # Listed once: December's statement does not list it again.
    with time_machine.travel(dt.datetime(2027, 1, 2, 12, 0, tzinfo=dt.UTC)):
        december = run(db_session, acme, Month(2026, 12)).statement
    assert december.early_out is None


def test_statements_issued_before_the_list_count_their_months_as_listed(
    db_session, make_client, make_case
):
    acme = make_client("ACME")
    early = _early_out(db_session, make_case, acme)
    pay(db_session, early, 10_000, dt.date(2026, 10, 5), "eo-oct")
    late = pay(db_session, early, 3_000, dt.date(2026, 9, 28), "eo-sep")
    section = statement_section(
        db_session,
        acme.id,
        dt.date(2026, 11, 1),
        dt.date(2026, 11, 30),
        covered=((dt.date(2026, 10, 1), dt.date(2026, 10, 31)),),
    )
    # October's own payment was on October's statement; September's had no statement: late.
    assert [p["id"] for p in section["late"]] == [late.id]
