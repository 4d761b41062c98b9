"""Statutes of limitations (SPEC §6.11, 12 CFR 1006.26(b)): the data, the dates, and `legal`."""

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from cases import audit
from cases.case import DEBT_KINDS, TransitionError, change_status
from cases.ledger import LedgerEntry
from cases.limitations import (
    DATA,
    add_years,
    latest_us_date,
    laws,
    limitation,
    of_case,
    of_case_ledger,
)
from payments.posting import post_payment, reverse_payment

ACTOR = audit.Actor(None, "test")
US_STATES_AND_DC = set(
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH "
    "NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY".split()
)


def test_the_data_covers_every_state_and_dc_for_every_kind_and_cites_its_sources():
    raw = json.loads(DATA.read_text(encoding="utf-8"))
    assert raw["reviewed_by_counsel"] is False  # to be reviewed by counsel: it says so
    assert "REVIEWED BY COUNSEL" in raw["_about"]
    assert set(laws()) == US_STATES_AND_DC
    for law in laws().values():
        assert set(law.years) == set(DEBT_KINDS)
        assert all(1 <= years <= 15 for years in law.years.values())
        assert law.source and law.revival
        assert (law.disclosure is None) == (law.disclosure_source is None)


@pytest.mark.parametrize(
    ("state", "kind", "expires_on"),
    [
        # Texas: 4 years for every kind (Tex. Civ. Prac. & Rem. Code 16.004, 16.051).
        ("TX", "written_contract", dt.date(2024, 3, 1)),
        # California: 4 years written (CCP 337), 2 years oral (CCP 339).
        ("CA", "written_contract", dt.date(2024, 3, 1)),
        ("CA", "oral", dt.date(2022, 3, 1)),
        # Illinois: 10 years written, 5 years open account.
        ("IL", "written_contract", dt.date(2030, 3, 1)),
        ("IL", "open_account", dt.date(2025, 3, 1)),
        # Kind not given: the state's shortest period (California: oral, 2 years).
        ("CA", None, dt.date(2022, 3, 1)),
        ("IL", None, dt.date(2025, 3, 1)),
    ],
)
def test_the_limitation_date_by_state_and_kind(state, kind, expires_on):
    found = limitation(state, kind, dt.date(2020, 3, 1))
    assert found.expires_on == expires_on
    assert found.runs_from_what == "the due date"
    assert found.time_barred(expires_on)
    assert not found.time_barred(expires_on - dt.timedelta(days=1))


def test_a_kind_not_given_says_the_shortest_period_applies():
    found = limitation("CA", None, dt.date(2020, 3, 1))
    assert found.applied_kind == "oral"
    assert "kind of debt not given: the shortest period, oral contract, applies" in (
        found.describe()
    )


def test_a_last_payment_restarts_the_period_where_the_state_says_so():
    due = dt.date(2020, 3, 1)
    paid = dt.date(2021, 6, 15)
    # Illinois: a part payment restarts the period (735 ILCS 5/13-206).
    found = limitation("IL", "open_account", due, [paid])
    assert (found.runs_from, found.runs_from_what) == (paid, "the last payment")
    assert found.expires_on == dt.date(2026, 6, 15)
    # Texas: only a signed writing does (16.065), and a payment never revives (392.307(b)).
    found = limitation("TX", "written_contract", due, [paid])
    assert (found.runs_from, found.expires_on) == (due, dt.date(2024, 3, 1))


def test_a_payment_after_the_period_revives_only_where_the_state_allows():
    due = dt.date(2015, 3, 1)
    late = dt.date(2022, 1, 10)  # after Illinois' and New York's periods ran out
    assert limitation("IL", "open_account", due, [late]).expires_on == dt.date(2027, 1, 10)
    # New York: a payment on a time-barred consumer credit debt does not revive it (214-i).
    assert limitation("NY", "open_account", due, [late]).expires_on == dt.date(2018, 3, 1)


def test_a_state_not_on_file_has_no_limitation_and_a_bad_kind_is_refused():
    assert limitation("PR", "oral", dt.date(2020, 3, 1)) is None
    with pytest.raises(ValueError, match="debt_kind must be one of"):
        limitation("TX", "credit_card", dt.date(2020, 3, 1))


def test_29_february_plus_years_is_28_february():
    assert add_years(dt.date(2020, 2, 29), 3) == dt.date(2023, 2, 28)
    assert add_years(dt.date(2020, 2, 29), 4) == dt.date(2024, 2, 29)


def test_the_latest_us_date_is_guams():
    # 20:00 UTC on 1 March is already 2 March in Guam (UTC+10).
    assert latest_us_date(dt.datetime(2026, 3, 1, 20, 0, tzinfo=dt.UTC)) == dt.date(2026, 3, 2)


def old_case(make_case, make_client, *, state="TX", postal_code="75201", years_ago=6, **kw):
    case = make_case(
        make_client(),
        status="active",
        state=state,
        postal_code=postal_code,
        days_past_due=365 * years_ago,
        **kw,
    )
    return case


def test_payments_recorded_on_the_case_restart_the_period_unless_reversed(
    db_session, make_client, make_case
):
    case = old_case(make_case, make_client, state="IL", postal_code="60601", years_ago=6)
    case.debt_kind = "open_account"
    before = of_case(db_session, case)
    assert before.time_barred(dt.date(2026, 11, 23))
    post_payment(
        db_session,
        case,
        amount_cents=1000,
        received_at=dt.date(2026, 11, 2),
        method="check",
        external_id="check:1",
        actor=ACTOR,
    )
    after = of_case(db_session, case)
    assert (after.runs_from, after.runs_from_what) == (dt.date(2026, 11, 2), "the last payment")
    assert not after.time_barred(dt.date(2026, 11, 23))


def test_the_limitation_from_the_ledger_already_read_is_the_one_read_from_the_database(
    db_session, make_client, make_case
):
    """The case screen reads the ledger once and takes the limitation from it (of_case_ledger):
    the same answer as of_case, with payments, a partial and then a full reversal."""
    case = old_case(make_case, make_client, state="IL", postal_code="60601", years_ago=6)
    case.debt_kind = "open_account"

    def both():
        entries = db_session.scalars(
            sa.select(LedgerEntry).where(LedgerEntry.case_id == case.id)
        ).all()
        return of_case(db_session, case), of_case_ledger(case, entries)

    early = post_payment(
        db_session,
        case,
        1000,
        received_at=dt.date(2026, 11, 2),
        method="check",
        external_id="check:1",
        actor=ACTOR,
    )
    late = post_payment(
        db_session,
        case,
        2000,
        received_at=dt.date(2026, 11, 10),
        method="check",
        external_id="check:2",
        actor=ACTOR,
    )
    from_database, from_ledger = both()
    assert from_ledger == from_database and from_ledger.runs_from == dt.date(2026, 11, 10)
    reason = dict(reason="bounced", actor=ACTOR, today=dt.date(2026, 11, 23))
    reverse_payment(
        db_session,
        late,
        amount_cents=500,
        external_id="r:1",
        received_at=dt.date(2026, 11, 12),
        **reason,
    )
    from_database, from_ledger = both()
    assert from_ledger == from_database and from_ledger.runs_from == dt.date(2026, 11, 10)
    reverse_payment(
        db_session,
        late,
        amount_cents=None,
        external_id="r:2",
        received_at=dt.date(2026, 11, 13),
        **reason,
    )
    from_database, from_ledger = both()
    assert from_ledger == from_database and from_ledger.runs_from == early.received_at


def test_a_time_barred_case_can_never_go_to_legal(db_session, make_client, make_case):
    case = old_case(make_case, make_client)  # Texas, due six years ago: barred after four
    with pytest.raises(TransitionError, match=r"time-barred since .*1006\.26\(b\)"):
        change_status(db_session, case, "closed", actor=ACTOR, reason="sue", close_reason="legal")
    assert case.status == "active"
    # Other close reasons stay open to it.
    change_status(
        db_session, case, "closed", actor=ACTOR, reason="gone", close_reason="uncollectible"
    )
    assert case.status == "closed"


def test_a_case_inside_its_period_may_go_to_legal(db_session, make_client, make_case):
    case = old_case(make_case, make_client, years_ago=1)
    change_status(db_session, case, "closed", actor=ACTOR, reason="sue", close_reason="legal")
    assert case.close_reason == "legal"


def test_a_state_without_data_cannot_go_to_legal(db_session, make_client, make_case):
    case = old_case(make_case, make_client, state="PR", postal_code="00901", years_ago=1)
    with pytest.raises(TransitionError, match="No statute of limitations is on file .*PR"):
        change_status(db_session, case, "closed", actor=ACTOR, reason="sue", close_reason="legal")
