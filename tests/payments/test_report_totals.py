"""The reports' running totals (cases/report_totals.py) against the live SQL over the ledger
(tests/payments/live_reports.py, the reports as they were computed before): random books
built through the real paths (placements, payments, direct payments, partial and whole
reversals, adjustments, status changes, reassignment one by one and in bulk, a referral
import, an early-out conversion's new referral day), on both databases; and `rebuild` gives
the same totals as the flushes kept."""

from __future__ import annotations

import datetime as dt
import random
import re
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from agency.report_pages import REPORTS
from bench.common import statements_run
from cases import audit, report_totals
from cases.assignment import assign, assign_matching, hand_over
from cases.case import Case, change_status
from cases.contact_log import record_contact
from cases.contacts import ComplianceAlert, Contact
from cases.ledger import LedgerError
from cases.plans import PromiseToPay, record_promise
from cases.referrals import import_file
from client_area import report_figures
from payments import reports
from payments.posting import post_adjustment, post_payment, reverse_payment
from payments.statements import MONEY_KINDS, Month
from shell.extensions import db
from tests.cases.test_referrals import GOOD
from tests.payments import live_reports as live

ACTOR = audit.Actor(None, "test")
TODAY = dt.date(2026, 11, 23)  # the suite's fixed day
ZONE = ZoneInfo("America/New_York")


@pytest.fixture(autouse=True)
def consistent_totals(db_session):
    """Start from totals that match the database: a test elsewhere that committed and then
    deleted its rows by hand (behind the app's back) leaves nothing to compare against."""
    report_totals.rebuild(db_session)


def test_the_totals_count_the_same_money_kinds_as_statements():
    assert report_totals.MONEY_KINDS == MONEY_KINDS


def _snapshot(session) -> dict:
    out = {}
    for model in report_totals.TABLES:
        table = model.__table__
        keys = [c.name for c in table.primary_key.columns]
        values = [c.name for c in table.columns if c.name not in keys]
        out[table.name] = {
            tuple(row[k] for k in keys): tuple(row[v] for v in values)
            for row in session.execute(sa.select(table)).mappings()
            if any(row[v] for v in values)
        }
    return out


def _random_book(rng, db_session, make_client, make_case, make_user, flushes=1.0):
    """`flushes`: the share of steps followed by a flush (below 1, postings meet cases with
    changes not yet flushed: a ledger entry is inserted without a flush)."""
    clients = [make_client(code, f"Client {code}") for code in ("ACME", "BETA", "CEDR")]
    staff = [make_user("collector", email=f"c{i}@recourse.test") for i in range(3)]
    staff.append(make_user("supervisor", email="boss@recourse.test"))
    cases = []
    for _ in range(18):
        referred = TODAY - dt.timedelta(days=rng.randrange(0, 420))
        case = make_case(
            rng.choice(clients),
            principal=rng.choice([0, 5_000, 120_000, 333_333]),
            interest=rng.choice([0, 1_234]),
            status=rng.choice(["new", "active", "active", "plan"]),
            referred_on=referred,
            days_past_due=rng.randrange(30, 900),
        )
        case.assigned_to_id = rng.choice([None, *(s.id for s in staff)])
        cases.append(case)
    db_session.flush()
    for n in range(12):  # promises made over the last months (the fixture's shortcut)
        made = TODAY - dt.timedelta(days=rng.randrange(0, 200))
        db_session.add(
            PromiseToPay(
                case_id=rng.choice(cases).id,
                amount_cents=rng.choice([500, 5_000, 30_000]),
                due_on=made + dt.timedelta(days=rng.randrange(0, 90)),
                status="kept" if n % 5 == 0 else "open",
                recorded_by_id=rng.choice(staff).id,
                created_at=dt.datetime.combine(made, dt.time(16), tzinfo=dt.UTC),
            )
        )
    db_session.flush()
    for _ in range(25):  # contacts by staff and by the system, either side of a month's start
        case = rng.choice(cases)
        at = dt.datetime.combine(
            TODAY - dt.timedelta(days=rng.randrange(0, 420)), dt.time(rng.choice([3, 12, 23]))
        ).replace(tzinfo=dt.UTC)
        who = rng.choice([None, *staff])
        record_contact(
            db_session,
            case,
            channel="call",
            direction="outbound",
            outcome=rng.choice(["no_answer", "voicemail"]),
            occurred_at=at,
            actor=audit.Actor(who.id, who.email) if who else ACTOR,
            now=dt.datetime.combine(TODAY, dt.time(23), tzinfo=dt.UTC),
        )
    if rng.random() < 0.5:  # a contact moved to another collector and one taken back
        unalerted = ~sa.exists().where(ComplianceAlert.contact_id == Contact.id)
        moved, gone = db_session.scalars(sa.select(Contact).where(unalerted).limit(2)).all()
        moved.user_id = staff[0].id
        moved.occurred_at = dt.datetime(2026, 11, 1, 3, tzinfo=dt.UTC)  # 10-31 in New York
        db_session.delete(gone)
    db_session.flush()
    payments = []
    for n in range(60):
        case = rng.choice(cases)
        action = rng.random()
        day = case.referred_on + dt.timedelta(
            days=rng.randrange(0, (TODAY - case.referred_on).days + 1)
        )
        try:
            if action < 0.5:
                payments.append(
                    post_payment(
                        db_session,
                        case,
                        rng.randrange(100, 40_000),
                        external_id=f"p{n}",
                        received_at=day,
                        method="check",
                        actor=ACTOR,
                        direct=rng.random() < 0.3,
                        allow_overpayment=True,
                        today=TODAY,
                    )
                )
            elif action < 0.65 and payments:
                paid = rng.choice(payments)
                reverse_payment(
                    db_session,
                    paid,
                    amount_cents=rng.choice([None, 50]),
                    external_id=f"r{n}",
                    received_at=max(paid.received_at, day),
                    reason="refund",
                    actor=ACTOR,
                    today=TODAY,
                )
            elif action < 0.72:
                post_adjustment(
                    db_session,
                    case,
                    rng.choice([-700, 900]),
                    reason="correction",
                    received_at=day,
                    actor=ACTOR,
                )
            elif action < 0.8:
                target = rng.choice(["closed", "active", "paid", "disputed"])
                change_status(
                    db_session, case, target, actor=ACTOR, reason="test", close_reason="recalled"
                )
            elif action < 0.87:
                assign(db_session, [case.id], rng.choice(staff).id, actor=ACTOR)
            elif action < 0.9:
                case.referred_on = case.referred_on - dt.timedelta(days=rng.randrange(0, 60))
            elif action < 0.95:
                assign_matching(
                    db_session,
                    sa.select(Case).where(Case.client_id == rng.choice(clients).id),
                    rng.choice(staff).id,
                    actor=ACTOR,
                    filters={},
                )
            else:
                hand_over(db_session, rng.choice(staff), rng.choice(staff).id, actor=ACTOR)
        except (LedgerError, ValueError):
            pass  # a refusal changes nothing; the totals must agree all the same
        if rng.random() < flushes:
            db_session.flush()
    db_session.flush()
    return clients, staff


def _same(ours, theirs) -> None:
    assert [vars(r) for r in ours] == [vars(r) for r in theirs]


def _compare(db_session, clients):
    last = Month.of(TODAY)
    since = reports.months(last)[0].start
    some = [clients[0].id, clients[-1].id]
    for name, args, kwargs in (
        ("collections_by_month", (last,), {}),
        ("liquidation_by_client", (), {}),
        ("aging", (TODAY,), {}),
        ("vintages", (last,), {}),
        ("vintages", (last,), {"client_ids": some}),
        ("collector_performance", (since, ZONE), {"today": TODAY}),
        ("promises_by_collector", (since,), {"today": TODAY, "zone": ZONE}),
        ("promises_by_collector", (since,), {"today": TODAY, "zone": ZONE, "client_ids": some}),
    ):
        ours = getattr(reports, name)(db_session, *args, **kwargs)
        _same(ours, getattr(live, name)(db_session, *args, **kwargs))
    for client in clients:
        _same(
            report_figures.liquidation_by_placement_month(db_session, client.id),
            live.liquidation_by_placement_month(db_session, client.id),
        )
        _same(
            report_figures.aging(db_session, client.id, TODAY),
            live.client_aging(db_session, client.id, TODAY),
        )


@pytest.mark.parametrize("seed", range(6))
def test_the_totals_equal_the_live_sql_over_a_random_book(
    seed, db_session, make_client, make_case, make_user
):
    rng = random.Random(seed)
    clients, _ = _random_book(rng, db_session, make_client, make_case, make_user)
    _compare(db_session, clients)
    since = reports.months(Month.of(TODAY))[0].start
    made = live.promises_by_collector(db_session, since, today=TODAY, zone=ZONE)
    assert sum(r.made for r in made) >= 10  # the promises made the comparison count
    kept = _snapshot(db_session)
    report_totals.rebuild(db_session)
    assert _snapshot(db_session) == kept
    assert sum(len(rows) for rows in kept.values()) > 10  # the book was not empty


@pytest.mark.parametrize("seed", range(6, 10))
def test_the_totals_equal_the_live_sql_when_postings_meet_changes_not_yet_flushed(
    seed, db_session, make_client, make_case, make_user
):
    rng = random.Random(seed)
    clients, _ = _random_book(rng, db_session, make_client, make_case, make_user, flushes=0.3)
    _compare(db_session, clients)
    kept = _snapshot(db_session)
    report_totals.rebuild(db_session)
    assert _snapshot(db_session) == kept


def test_a_referral_import_adds_its_cases_to_the_totals(db_session, make_client, make_case):
    acme = make_client()
    make_case(acme, principal=7_000, status="active")  # one case there already
    import_file(db_session, acme, GOOD, "march.csv", as_of=TODAY, actor=ACTOR, source="cli")
    db_session.flush()
    (november,) = [
        m
        for m in report_figures.liquidation_by_placement_month(db_session, acme.id)
        if m.month == "2026-11"
    ]
    # 1,234.56 + 10.00 + 5 and 2,500.00 imported (the third row is refused), 70.00 before.
    assert (november.cases, november.placed) == (3, 123_456 + 1_000 + 500 + 250_000 + 7_000)
    _compare(db_session, [acme])
    kept = _snapshot(db_session)
    report_totals.rebuild(db_session)
    assert _snapshot(db_session) == kept


def test_a_payment_shows_in_the_totals_in_the_same_flush(db_session, make_client, make_case):
    acme = make_client()
    case = make_case(acme, principal=10_000, status="active", referred_on=dt.date(2026, 10, 1))
    before = reports.collections_by_month(db_session, Month.of(TODAY))[-2].by_agency
    post_payment(
        db_session,
        case,
        2_500,
        external_id="now",
        received_at=dt.date(2026, 10, 20),
        method="check",
        actor=ACTOR,
    )
    db_session.flush()
    october = reports.collections_by_month(db_session, Month.of(TODAY))[-2]
    assert (october.month, october.by_agency - before) == ("2026-10", 2_500)


@pytest.fixture
def small_book(db_session, make_user, make_client, make_case):
    acme = make_client()
    case = make_case(acme, principal=50_000, status="active", referred_on=dt.date(2026, 9, 1))
    collector = make_user("collector", email="sam@recourse.test")
    case.assigned_to_id = collector.id
    post_payment(
        db_session,
        case,
        5_000,
        external_id="seen",
        received_at=dt.date(2026, 10, 2),
        method="check",
        actor=ACTOR,
    )
    record_promise(
        db_session, case, amount_cents=5_000, due_on=dt.date(2026, 12, 1), today=TODAY, actor=ACTOR
    )
    db_session.flush()
    return acme


def test_the_agency_reports_never_read_the_ledger(app, client, login, make_user, small_book):
    login(make_user("admin"))
    with statements_run(db.engine) as seen:
        pages = [client.get("/agency/reports")]
        pages += [client.get(f"/agency/reports/{name}.csv") for name in REPORTS]
    assert all(page.status_code == 200 for page in pages)
    assert "$500.00" in pages[0].get_data(as_text=True)  # placed
    assert any("report_money" in s for s in seen)
    assert any("report_promises" in s for s in seen)
    assert any("report_contacts" in s for s in seen)
    assert not [s for s in seen if "ledger_entries" in s]
    assert not [s for s in seen if re.search(r"(FROM|JOIN)\s+contacts\b", s)]  # the count is kept


def test_the_client_reports_never_read_the_ledger(app, client, login, make_user, small_book):
    login(make_user("client", client=small_book))
    with statements_run(db.engine) as seen:
        pages = [client.get("/client/reports")]
        pages += [client.get(f"/client/reports/{name}.csv") for name in ("liquidation", "aging")]
    assert all(page.status_code == 200 for page in pages)
    assert "2026-09,1,500.00,50.00,10.00%" in pages[1].get_data(as_text=True)
    assert any("report_money" in s for s in seen)
    assert not [s for s in seen if "ledger_entries" in s]
    assert not [s for s in seen if re.search(r"(FROM|JOIN)\s+contacts\b", s)]


def test_reports_rebuild_recomputes_totals_lost_behind_the_apps_back(
    cli, db_session, make_client, make_case, make_user
):
    rng = random.Random(99)
    _random_book(rng, db_session, make_client, make_case, make_user)
    kept = _snapshot(db_session)
    for model in report_totals.TABLES:  # as after a load that bypassed the app
        db_session.execute(sa.delete(model))
    assert _snapshot(db_session) != kept
    result = cli.invoke(args=["reports", "rebuild"])
    assert result.exit_code == 0, result.output
    assert "rebuilt the reports' totals" in result.output
    assert _snapshot(db_session) == kept


def test_an_entry_whose_external_id_is_taken_meanwhile_is_refused_and_changes_nothing(
    db_session, make_client, make_case
):
    """Two postings of one external id racing past the check made under their cases' locks
    (two cases): the second insert finds the first and is refused; its transaction goes on
    (no savepoint to roll back to), with the totals and the ledger as they were."""
    from cases.ledger import DuplicatePosting, LedgerEntry
    from payments.posting import _insert_once

    acme = make_client()
    first = make_case(acme, principal=10_000, status="active")
    second = make_case(acme, principal=20_000, status="active")
    post_payment(
        db_session, first, 2_500, external_id="pi_race", received_at=TODAY, method="card",
        actor=ACTOR, today=TODAY,
    )  # fmt: skip
    kept = _snapshot(db_session)
    late = LedgerEntry(
        case_id=second.id, kind="payment", amount_cents=-2_500, external_id="pi_race",
        method="card", received_at=TODAY,
    )  # fmt: skip
    with pytest.raises(DuplicatePosting, match="pi_race was already posted"):
        _insert_once(db_session, late)
    assert _snapshot(db_session) == kept
    posted = db_session.scalars(sa.select(LedgerEntry).where(LedgerEntry.external_id == "pi_race"))
    assert [(e.case_id, e.amount_cents) for e in posted] == [(first.id, -2_500)]
    db_session.flush()  # the session is still usable, and holds nothing of the refused entry
    assert late not in db_session


def test_a_posted_entry_is_in_the_session_as_written_without_reading_it_again(
    app, db_session, make_client, make_case
):
    acme = make_client()
    case = make_case(acme, principal=10_000, status="active")
    entry = post_payment(
        db_session, case, 2_500, external_id="chk-9", received_at=TODAY, method="check",
        actor=ACTOR, today=TODAY,
    )  # fmt: skip
    with statements_run(db.engine) as statements:
        seen = (entry.id, entry.fee_cents, entry.component, entry.created_at, entry.reverses_id)
    assert statements == []
    assert seen[0] is not None and seen[2] is None and seen[4] is None
    assert seen[1] == entry.fee_cents >= 0 and seen[3] is not None
    assert db_session.get(type(entry), entry.id) is entry
