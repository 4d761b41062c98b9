"""Importing referral files: cases opened with their debtors and itemisation, nothing twice."""

import datetime as dt
import itertools
import threading

import pytest
import sqlalchemy as sa
import time_machine

from cases import audit
from cases.audit import AuditEvent
from cases.case import Case
from cases.debtors import Address, Debtor, Email, Phone
from cases.ledger import LedgerEntry
from cases.referral_file import FileRefused
from cases.referrals import ReferralBatch, _read_ahead, confirm, import_file, preview

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


def test_a_row_like_two_debtors_on_file_goes_to_the_first(db_session, make_client):
    # Two Ann Lees at one ZIP with nothing in common are two debtors; a later row with the
    # email of one and the phone of the other is the first of them, whichever it names first.
    data = csv_file(
        "D-1,consumer,Ann,Lee,,ann@example.com,,1 A St,New York,NY,10001,100,,,2026-01-01,",
        "D-2,consumer,Ann,Lee,,,(212) 555-0199,1 A St,New York,NY,10001,200,,,2026-01-01,",
    )
    first = import_file(
        db_session, make_client(), data, "d.csv", as_of=AS_OF, actor=ACTOR, source="cli"
    )
    again = csv_file(
        "E-1,consumer,Ann,Lee,,ann@example.com,212-555-0199,1 A St,New York,NY,10001,5,,,"
        "2026-01-01,",
        "E-2,consumer,ann,LEE,,,212-555-0199,1 A St,New York,NY,10001,5,,,2026-01-01,",
        "E-3,consumer,Ann,Lee,,nobody@example.com,,1 A St,New York,NY,10001,5,,,2026-01-01,",
    )
    later = import_file(
        db_session,
        make_client("OTHER", "Other"),
        again,
        "e.csv",
        as_of=AS_OF,
        actor=ACTOR,
        source="cli",
    )

    def debtor_of(reference: str) -> int:
        return db_session.scalar(sa.select(Case.debtor_id).where(Case.reference == reference))

    d1, d2 = (debtor_of(r) for r in first.cases)
    assert d1 < d2
    assert [debtor_of(r) for r in later.cases[:2]] == [d1, d2]
    assert debtor_of(later.cases[2]) not in (d1, d2)
    assert count(db_session, Debtor) == 3


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


def test_an_import_writes_exactly_these_rows(db_session, make_client, make_user):
    """Every column of every row an import writes, on both databases (COPY on PostgreSQL)."""
    acme = make_client()
    user = make_user("admin")
    data = (
        "account_number,debtor_type,first_name,last_name,company_name,email,phone,address_line1,"
        "address_line2,city,state,postal_code,principal,interest,fees,due_date,itemization_date,"
        "last_payment_date,invoice_number,service_description,debt_kind\n"
        "F-1,consumer,Zoë,O'Hara,,Zoe@Example.com,+1 617 555 0123,1 Main St,Apt 2,Boston,MA,"
        "02108-1234,100.10,2.02,3,2026-01-15,2026-02-01,2025-12-01,INV-9,Roof <repair>,"
        "Written Contract\n"
        "F-2,commercial,,,Riverside LLC,,,3 Main,,Seattle,WA,98101,50,,,2026-03-01,,,,,\n"
    ).encode()
    at = dt.datetime(2026, 11, 23, 15, 30, 45, 123456, tzinfo=dt.UTC)
    actor = audit.Actor.user(user)
    with time_machine.travel(at, tick=False):
        result = import_file(
            db_session, acme, data, "f.csv", as_of=AS_OF, actor=actor, source="cli"
        )
    batch = db_session.scalar(sa.select(ReferralBatch))
    assert result.cases == ["RC-2611-00001", "RC-2611-00002"]

    def rows(model, *where):
        """The rows, in the order of their ids (ascending in file order, as before COPY)."""
        table = model.__table__
        query = sa.select(table).where(*where).order_by(table.c.id)
        return [dict(row) for row in db_session.execute(query).mappings()]

    debtors = rows(Debtor)
    zoe, riverside = (d.pop("id") for d in debtors)
    assert riverside > zoe
    unset = {
        "language": "en",
        "situation": "unknown",
        "inconvenient_times": [],
        "cease_requested_at": None,
        "attorney_name": None,
        "attorney_phone": None,
        "attorney_email": None,
        "attorney_since": None,
        "monthly_statements": False,
        "created_at": at,
    }
    assert debtors == [
        unset
        | {
            "kind": "consumer",
            "first_name": "Zoë",
            "last_name": "O'Hara",
            "company_name": "",
            "match_key": "consumer|zoe o hara|02108",
        },
        unset
        | {
            "kind": "commercial",
            "first_name": "",
            "last_name": "",
            "company_name": "Riverside LLC",
            "match_key": "commercial|riverside llc|98101",
        },
    ]

    def without_ids(model, *where):
        return [{k: v for k, v in row.items() if k != "id"} for row in rows(model, *where)]

    assert without_ids(Address) == [
        {
            "debtor_id": zoe,
            "line1": "1 Main St",
            "line2": "Apt 2",
            "city": "Boston",
            "state": "MA",
            "postal_code": "02108-1234",
        },
        {
            "debtor_id": riverside,
            "line1": "3 Main",
            "line2": "",
            "city": "Seattle",
            "state": "WA",
            "postal_code": "98101",
        },
    ]
    assert without_ids(Phone) == [
        {
            "debtor_id": zoe,
            "number": "+16175550123",
            "type": "other",
            "text_consent": False,
            "calls_opted_out_at": None,
            "texts_opted_out_at": None,
            "wrong_number_at": None,
        }
    ]
    assert without_ids(Email) == [
        {"debtor_id": zoe, "address": "Zoe@example.com", "consent": True, "opted_out_at": None}
    ]

    cases = rows(Case)
    first, second = (c.pop("id") for c in cases)
    assert second > first
    stamps = [c.pop("stamp") for c in cases]  # the portal's version stamps: random, set
    assert all(stamps) and stamps[0] != stamps[1]
    common = {
        "client_id": acme.id,
        "batch_id": batch.id,
        "status": "new",
        "program": "collection",
        "early_out_placed_on": None,
        "early_out_converts": True,
        "close_reason": None,
        "assigned_to_id": None,
        "referred_on": AS_OF,
        "in_legal": False,
        "validation_sent_at": None,
        "validation_period_ends_on": None,
        "validation_mailed_on": None,
        "notice_run_id": None,
        "first_communication_at": None,
        "last_contact_at": None,
        "status_changed_at": at,
        "created_at": at,
        # A file without the itemisation columns: the total was owed on the itemisation date.
        "itemization_date_type": "last_statement",
        "interest_since_itemization_cents": 0,
        "fees_since_itemization_cents": 0,
        "payments_since_itemization_cents": 0,
        "credits_since_itemization_cents": 0,
    }
    assert [c.pop("amount_on_itemization_date_cents") for c in cases] == [10_512, 5_000]
    assert cases == [
        common
        | {
            "reference": "RC-2611-00001",
            "debtor_id": zoe,
            "batch_row": 2,
            "account_number": "F-1",
            "open_account_number": "F-1",
            "due_date": dt.date(2026, 1, 15),
            "itemization_date": dt.date(2026, 2, 1),
            "days_past_due_at_referral": 312,
            "last_payment_date": dt.date(2025, 12, 1),
            "invoice_number": "INV-9",
            "service_description": "Roof <repair>",
            "debt_kind": "written_contract",
            "original_creditor_name": None,
            "original_creditor_address": None,
            "search_text": "rc-2611-00001 f-1 zoë o'hara",  # what the search box matches
            "statement_month": None,  # the debtor did not ask for monthly statements
            "chase_from": None,  # no promise or plan to chase
        },
        common
        | {
            "reference": "RC-2611-00002",
            "debtor_id": riverside,
            "batch_row": 3,
            "account_number": "F-2",
            "open_account_number": "F-2",
            "due_date": dt.date(2026, 3, 1),
            "itemization_date": dt.date(2026, 3, 1),
            "days_past_due_at_referral": 267,
            "last_payment_date": None,
            "invoice_number": None,
            "service_description": None,
            "debt_kind": None,
            "original_creditor_name": None,
            "original_creditor_address": None,
            "search_text": "rc-2611-00002 f-2 riverside llc",
            "statement_month": None,
            "chase_from": None,
        },
    ]

    def placement(case_id, reference, component, cents, received):
        return {
            "case_id": case_id,
            "kind": "placement",
            "component": component,
            "amount_cents": cents,
            "fee_bps": 0,
            "fee_cents": 0,
            "external_id": f"placement:{reference}:{component}",
            "method": None,
            "received_at": received,
            "reverses_id": None,
            "memo": None,
            "recorded_by_id": None,
            "created_at": at,
        }

    assert without_ids(LedgerEntry) == [
        placement(first, "RC-2611-00001", "principal", 10_010, dt.date(2026, 2, 1)),
        placement(first, "RC-2611-00001", "interest", 202, dt.date(2026, 2, 1)),
        placement(first, "RC-2611-00001", "fees", 300, dt.date(2026, 2, 1)),
        placement(second, "RC-2611-00002", "principal", 5_000, dt.date(2026, 3, 1)),
    ]

    assert without_ids(AuditEvent, AuditEvent.action == "case.opened") == [
        {
            "at": at,
            "actor_user_id": user.id,
            "actor_label": actor.label,
            "entity_type": "case",
            "entity_id": str(case_id),
            "case_id": case_id,
            "action": "case.opened",
            "reason": None,
            "detail": {"reference": reference, "batch": batch.id, "row": row, "account_number": n},
        }
        for case_id, reference, row, n in [
            (first, "RC-2611-00001", 2, "F-1"),
            (second, "RC-2611-00002", 3, "F-2"),
        ]
    ]


def test_rows_are_read_ahead_in_order_in_chunks():
    assert list(_read_ahead(iter(range(2500)), size=1000)) == [
        list(range(1000)),
        list(range(1000, 2000)),
        list(range(2000, 2500)),
    ]
    assert list(_read_ahead(iter([]))) == []


def test_a_problem_met_reading_ahead_is_raised_at_its_place():
    def rows():
        yield from range(1500)
        raise FileRefused("the workbook is damaged")

    chunks = _read_ahead(rows(), size=1000)
    assert next(chunks) == list(range(1000))
    with pytest.raises(FileRefused, match="damaged"):
        next(chunks)


def test_stopping_early_stops_the_reading_thread():
    chunks = _read_ahead(itertools.count(), size=10)
    assert next(chunks) == list(range(10))
    chunks.close()  # as when the import fails part-way: the endless source is read no further
    assert not [t for t in threading.enumerate() if t.name == "referral-rows"]


def test_the_planner_settings_of_the_lookups_do_not_outlive_them(db_session, make_client):
    if db_session.get_bind().dialect.name != "postgresql":
        pytest.skip("planner settings exist on PostgreSQL only")
    again = csv_file(
        "B-9,consumer,Maria,Garcia,,,212-555-0100,9 Elm,New York,NY,10001,99.00,,,2026-01-01,"
    )
    acme = make_client()
    import_file(db_session, acme, GOOD, "a.csv", as_of=AS_OF, actor=ACTOR, source="cli")
    result = import_file(db_session, acme, again, "b.csv", as_of=AS_OF, actor=ACTOR, source="cli")
    assert result.accepted == 1  # the lookups ran, and found the debtor to link
    settings = ("enable_seqscan", "max_parallel_workers_per_gather", "plan_cache_mode")
    assert [db_session.scalar(sa.text(f"SHOW {name}")) for name in settings] == ["on", "2", "auto"]


def test_an_import_that_fails_part_way_leaves_no_thread_reading(db_session, make_client):
    rows = [
        f"L-{n},consumer,Ann,Lee{n},,,,1 A St,New York,NY,10001,100,,,2026-01-01,"
        for n in range(2500)
    ]

    def progress(done, total):
        raise RuntimeError("the worker was stopped")

    with pytest.raises(RuntimeError, match="stopped"):
        import_file(
            db_session,
            make_client(),
            csv_file(*rows),
            "l.csv",
            as_of=AS_OF,
            actor=ACTOR,
            source="cli",
            progress=progress,
        )
    # At once, while the exception (and the import's frames) may still be referenced.
    assert not [t for t in threading.enumerate() if t.name == "referral-rows"]


def test_the_original_creditor_comes_from_the_referral_and_a_long_one_is_rejected(
    db_session, make_client
):
    """SPEC §5: optional `original_creditor_name` and `original_creditor_address` columns, for
    a request under 1006.38(c)."""
    header = "account_number,first_name,last_name,state,postal_code,principal,due_date,"
    header += "Original Creditor Name,original-creditor-address"
    data = "\n".join(
        [
            header,
            'A-1,Maria,Garcia,NY,10001,100,2026-05-01,First Bank,"1 Bank Plaza, Springfield IL"',
            "A-2,John,Smith,NY,10001,100,2026-05-01,,",
            f"A-3,Ann,Lee,NY,10001,100,2026-05-01,{'X' * 201},",
        ]
    ).encode()
    result = import_file(
        db_session, make_client(), data, "oc.csv", as_of=AS_OF, actor=ACTOR, source="cli"
    )
    assert result.accepted == 2
    assert result.rejected == [
        {
            "row": 4,
            "column": "original_creditor_name",
            "reason": "original_creditor_name is longer than 200 characters",
        }
    ]
    first, second = (
        db_session.scalar(sa.select(Case).where(Case.reference == reference))
        for reference in result.cases
    )
    assert (first.original_creditor_name, first.original_creditor_address) == (
        "First Bank",
        "1 Bank Plaza, Springfield IL",
    )
    assert (second.original_creditor_name, second.original_creditor_address) == (None, None)


def test_a_case_referred_for_a_debtor_who_asked_for_statements_gets_them_too(
    db_session, make_client
):
    acme = make_client("ACME")
    import_file(db_session, acme, GOOD, "a.csv", as_of=AS_OF, actor=ACTOR, source="cli")
    first = db_session.scalar(sa.select(Case).where(Case.reference == "RC-2611-00001"))
    assert first.statement_month is None  # not asked: out of the statements' index
    first.debtor.monthly_statements = True
    db_session.flush()
    db_session.refresh(first)
    assert first.statement_month == ""  # asked, none sent yet
    again = csv_file(
        "B-9,consumer,Maria,Garcia,,,212-555-0100,9 Elm,New York,NY,10001,99.00,,,2026-01-01,",
        "B-10,consumer,Jo,Lee,,jo@example.com,,9 Elm,New York,NY,10001,99.00,,,2026-01-01,",
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
    linked, other = (
        db_session.scalar(sa.select(Case).where(Case.reference == ref)) for ref in result.cases
    )
    assert linked.debtor_id == first.debtor_id
    assert (linked.statement_month, other.statement_month) == ("", None)
    first.debtor.monthly_statements = False
    db_session.flush()
    db_session.expire_all()
    assert {first.statement_month, linked.statement_month} == {None}
