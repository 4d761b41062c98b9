"""Importing referral files: cases opened with their debtors and itemisation, nothing twice."""

import datetime as dt

import pytest
import sqlalchemy as sa

from cases import audit
from cases.audit import AuditEvent
from cases.case import Case
from cases.debtors import Debtor, Phone
from cases.ledger import LedgerEntry
from cases.referral_file import FileRefused
from cases.referrals import ReferralBatch, confirm, import_file, preview

AS_OF = dt.date(2026, 11, 23)
ACTOR = audit.Actor(None, "test")
HEADER = (
    "account_number,debtor_type,first_name,last_name,company_name,email,phone,"
    "address_line1,city,state,postal_code,principal,interest,fees,due_date,itemization_date"
)


def csv_file(*rows: str) -> bytes:
    return ("\n".join([HEADER, *rows]) + "\n").encode()


GOOD = csv_file(
    "A-1,consumer,Maria,Garcia,,maria@example.com,(212) 555-0100,1 Main St,New York,NY,10001,"
    '"$1,234.56",10.00,5,2026-05-01,',
    "A-2,commercial,,,Riverside Bakery LLC,,,3 Main,Seattle,WA,98101,2500.00,,,06/15/2026,",
    "A-3,consumer,John,Smith,,,,2 Main St,Boston,MA,02108,500,,,2026-10-01,",  # too young
)


def count(session, model) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(model))


def test_an_import_opens_cases_with_debtor_contact_points_and_itemisation(db_session, make_client):
    acme = make_client()
    result = import_file(
        db_session, acme, GOOD, "march.csv", as_of=AS_OF, actor=ACTOR, source="cli"
    )
    assert result.accepted == 2
    assert result.rejected == [
        {
            "row": 4,
            "column": "due_date",
            "reason": "the account is 53 days past due on 2026-11-23; this client accepts "
            "accounts at least 90 days past due",
        }
    ]
    assert result.cases == ["RC-2611-00001", "RC-2611-00002"]

    case = db_session.scalar(sa.select(Case).where(Case.reference == "RC-2611-00001"))
    assert (case.status, case.account_number, case.batch_row) == ("new", "A-1", 2)
    assert case.itemization_date == dt.date(2026, 5, 1)  # defaults to the due date
    assert case.days_past_due_at_referral == (AS_OF - dt.date(2026, 5, 1)).days
    assert case.debtor.display_name == "Maria Garcia"
    assert case.debtor.phones[0].number == "+12125550100"
    assert case.debtor.emails[0].address == "maria@example.com"
    assert case.debtor.addresses[0].postal_code == "10001"
    placements = {
        e.component: e.amount_cents
        for e in db_session.scalars(sa.select(LedgerEntry).where(LedgerEntry.case_id == case.id))
    }
    assert placements == {"principal": 123_456, "interest": 1_000, "fees": 500}
    bakery = db_session.scalar(sa.select(Case).where(Case.reference == "RC-2611-00002"))
    assert bakery.debtor.kind == "commercial"
    assert bakery.debtor.display_name == "Riverside Bakery LLC"
    assert (
        db_session.scalar(
            sa.select(sa.func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "case.opened")
        )
        == 2
    )


def test_reimporting_the_same_file_imports_nothing_twice(db_session, make_client):
    acme = make_client()
    import_file(db_session, acme, GOOD, "a.csv", as_of=AS_OF, actor=ACTOR, source="cli")
    before = (count(db_session, Case), count(db_session, LedgerEntry), count(db_session, Debtor))
    again = import_file(db_session, acme, GOOD, "a.csv", as_of=AS_OF, actor=ACTOR, source="cli")
    assert again.accepted == 0 and again.cases == []
    assert [r["row"] for r in again.rejected] == [2, 3, 4]
    assert again.rejected[0] == {
        "row": 2,
        "column": "account_number",
        "reason": "account_number A-1 is already open as case RC-2611-00001",
    }
    assert (
        count(db_session, Case),
        count(db_session, LedgerEntry),
        count(db_session, Debtor),
    ) == before


def test_another_client_may_use_the_same_account_numbers(db_session, make_client):
    import_file(
        db_session, make_client("ACME"), GOOD, "a.csv", as_of=AS_OF, actor=ACTOR, source="cli"
    )
    other = import_file(
        db_session,
        make_client("OTHER", "Other"),
        GOOD,
        "a.csv",
        as_of=AS_OF,
        actor=ACTOR,
        source="cli",
    )
    assert other.accepted == 2


def test_the_same_debtor_referred_again_is_linked(db_session, make_client):
    import_file(
        db_session, make_client("ACME"), GOOD, "a.csv", as_of=AS_OF, actor=ACTOR, source="cli"
    )
    again = csv_file(
        # Same name (other case and accents folded), same ZIP, same phone: the same person.
        "B-9,consumer,MARIA,García,,,212-555-0100,9 Elm,New York,NY,10001-2222,99.00,,,2026-01-01,",
        # Same name and ZIP but no phone or email in common: not assumed to be her.
        "B-10,consumer,Maria,Garcia,,other@example.com,,9 Elm,New York,NY,10001,99.00,,,"
        "2026-01-01,",
    )
    result = import_file(
        db_session,
        make_client("OTHER", "Other"),
        again,
        "b.csv",
        as_of=AS_OF,
        actor=ACTOR,
        source="cli",
    )
    first = db_session.scalar(sa.select(Case).where(Case.reference == "RC-2611-00001"))
    linked = db_session.scalar(sa.select(Case).where(Case.reference == result.cases[0]))
    separate = db_session.scalar(sa.select(Case).where(Case.reference == result.cases[1]))
    assert linked.debtor_id == first.debtor_id
    assert separate.debtor_id != first.debtor_id
    assert count(db_session, Phone) == 1  # no duplicate contact point for the linked debtor


def test_one_debtor_twice_in_a_file_is_one_debtor(db_session, make_client):
    data = csv_file(
        "C-1,consumer,Ann,Lee,,ann@example.com,,1 A St,New York,NY,10001,100,,,2026-01-01,",
        "C-2,consumer,Ann,Lee,,ann@example.com,,1 A St,New York,NY,10001,200,,,2026-01-01,",
    )
    result = import_file(
        db_session, make_client(), data, "c.csv", as_of=AS_OF, actor=ACTOR, source="cli"
    )
    cases = db_session.scalars(sa.select(Case).where(Case.reference.in_(result.cases))).all()
    assert len(cases) == 2 and cases[0].debtor_id == cases[1].debtor_id


def test_a_dry_run_imports_nothing(db_session, make_client):
    result = import_file(
        db_session,
        make_client(),
        GOOD,
        "a.csv",
        as_of=AS_OF,
        actor=ACTOR,
        source="cli",
        dry_run=True,
    )
    assert result.accepted == 2 and result.cases == [] and len(result.rejected) == 1
    assert count(db_session, Case) == 0


def test_a_refused_file_records_nothing(db_session, make_client):
    acme = make_client()
    with pytest.raises(FileRefused, match="principal"):
        preview(
            db_session,
            acme,
            b"account_number,state,postal_code,due_date,last_name\nA-1,NY,10001,2026-01-01,Smith\n",
            "x.csv",
            as_of=AS_OF,
            actor=ACTOR,
        )
    assert count(db_session, ReferralBatch) == 0


def test_confirm_queues_the_import_once(app, db_session, make_client):
    acme = make_client()
    batch = preview(db_session, acme, GOOD, "a.csv", as_of=AS_OF, actor=ACTOR)
    assert (batch.status, batch.total_rows, batch.accepted_count) == ("previewed", 3, 2)
    assert count(db_session, Case) == 0  # a preview saves no case
    confirm(db_session, batch, actor=ACTOR)
    db_session.commit()
    from tests.conftest import drain_jobs

    drain_jobs(app)
    db_session.refresh(batch)
    assert batch.status == "imported" and batch.accepted_count == 2
    assert count(db_session, Case) == 2
    with pytest.raises(ValueError, match="already imported"):
        confirm(db_session, batch, actor=ACTOR)
