"""One payment identity for money outside Stripe: the same check from the same debtor is one
payment whatever the path (the case screen, an unmatched payment matched later, the API) and
whichever of the debtor's cases it pays; a check for several cases is one split; cash without
a number gets a receipt number."""

import datetime as dt

import pytest
import sqlalchemy as sa
import time_machine

from cases import audit
from payments.posting import (
    DuplicatePosting,
    LedgerEntry,
    LedgerError,
    balance_cents,
    post_instrument,
)
from payments.unmatched import UnmatchedPayment, hold_unmatched, match
from tests.agency.test_casework import act
from tests.conftest import csrf_from

ACTOR = audit.Actor(None, "test")
DAY = dt.date(2026, 11, 20)
NOON = dt.datetime(2026, 11, 23, 17, 0, tzinfo=dt.UTC)


@pytest.fixture
def two_cases(db_session, make_client, make_case):
    """Two active cases of one debtor, $400.00 and $300.00."""
    first = make_case(make_client(), status="active", principal=40_000)
    second = make_case(first.client, status="active", principal=30_000)
    second.debtor_id = first.debtor_id
    db_session.flush()
    db_session.expire(second, ["debtor"])
    return first, second


def payments(session) -> int:
    return session.scalar(
        sa.select(sa.func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "payment")
    )


def test_the_scenario_held_then_matched_then_posted_again_on_the_case_screen(
    client, login, make_user, db_session, two_cases
):
    case, other = two_cases
    login(make_user("supervisor"))
    with time_machine.travel(NOON, tick=False):
        page = client.get("/agency/unmatched")
        held = {
            "amount": "150.00",
            "received_at": "2026-11-21",
            "method": "check",
            "reference": "9001",
            "csrf_token": csrf_from(page),
        }
        assert client.post("/agency/unmatched", data=held).status_code == 302
        item = db_session.scalar(sa.select(UnmatchedPayment))
        page = client.get("/agency/unmatched")
        matched = client.post(
            f"/agency/unmatched/{item.id}/match",
            data={"reference": case.reference, "csrf_token": csrf_from(page)},
        )
        assert matched.status_code == 302
        assert balance_cents(db_session, case.id) == 25_000
        data = {
            "pay-amount": "150.00",
            "pay-received_at": "2026-11-21",
            "pay-method": "check",
            "pay-reference": "9001",
        }
        for target in (case, other):  # the same check again, on either of the debtor's cases
            again = act(client, target, "payments", data)
            assert again.status_code == 422
            assert (
                f"check 9001 from this debtor was already posted on {case.reference}"
                in again.get_data(as_text=True)
            )
    assert balance_cents(db_session, case.id) == 25_000
    assert balance_cents(db_session, other.id) == 30_000
    assert payments(db_session) == 1


def test_posted_on_the_case_first_the_unmatched_check_cannot_be_matched(db_session, two_cases):
    case, _ = two_cases
    post_instrument(
        db_session, [(case, 15_000)], method="check", number="9001", received_at=DAY, actor=ACTOR
    )
    item = hold_unmatched(
        db_session,
        external_id="check:9001",
        amount_cents=15_000,
        received_at=DAY,
        method="check",
        actor=ACTOR,
    )
    with pytest.raises(DuplicatePosting, match=f"already posted on {case.reference}"):
        with db_session.begin_nested():
            match(db_session, item, case, actor=ACTOR)
    assert item.status == "open" and payments(db_session) == 1


def test_the_same_number_from_another_debtor_is_another_payment(db_session, make_client, make_case):
    one = make_case(make_client(), status="active")
    two = make_case(one.client, status="active", last_name="Other")
    for case in (one, two):
        post_instrument(
            db_session, [(case, 5_000)], method="check", number="1001", received_at=DAY, actor=ACTOR
        )
    assert payments(db_session) == 2


def test_a_check_for_two_of_the_debtors_cases_is_one_split(db_session, two_cases):
    case, other = two_cases
    item = hold_unmatched(
        db_session,
        external_id="check:9002",
        amount_cents=20_000,
        received_at=DAY,
        method="check",
        actor=ACTOR,
    )
    with pytest.raises(LedgerError, match="add up to 250.00, not the 200.00"):
        match(db_session, item, [(case, 15_000), (other, 10_000)], actor=ACTOR)
    entries = match(db_session, item, [(case, 15_000), (other, 5_000)], actor=ACTOR)
    assert len(entries) == 2 and item.status == "matched"
    assert balance_cents(db_session, case.id) == 25_000
    assert balance_cents(db_session, other.id) == 25_000
    with pytest.raises(DuplicatePosting):
        post_instrument(
            db_session,
            [(other, 1_000)],
            method="check",
            number="9002",
            received_at=DAY,
            actor=ACTOR,
        )


def test_a_split_is_for_one_debtors_cases_only(db_session, make_client, make_case):
    one = make_case(make_client(), status="active")
    two = make_case(one.client, status="active", last_name="Other")
    with pytest.raises(LedgerError, match="one debtor's cases"):
        post_instrument(
            db_session,
            [(one, 1_000), (two, 1_000)],
            method="check",
            number="77",
            received_at=DAY,
            actor=ACTOR,
        )
    assert payments(db_session) == 0


def test_cash_without_a_number_gets_a_receipt_number(
    client, login, make_user, db_session, two_cases
):
    case, _ = two_cases
    login(make_user("supervisor"))
    data = {"pay-amount": "20.00", "pay-received_at": "2026-11-21", "pay-method": "cash"}
    with time_machine.travel(NOON, tick=False):
        first = act(client, case, "payments", data)
        second = act(client, case, "payments", data)
        assert first.status_code == second.status_code == 302
        page = client.get(first.location).get_data(as_text=True)
        assert "with receipt number R261123-" in page
        check = act(client, case, "payments", {**data, "pay-method": "check"})
        assert check.status_code == 422 and "needs its number" in check.get_data(as_text=True)
    assert balance_cents(db_session, case.id) == 36_000  # two receipts, two payments
    receipts = db_session.scalars(
        sa.select(LedgerEntry.external_id).where(LedgerEntry.method == "cash")
    ).all()
    assert len(set(receipts)) == 2


def test_the_api_knows_a_check_posted_on_the_case_screen(
    client, make_user, api_token, db_session, two_cases
):
    case, other = two_cases
    post_instrument(
        db_session, [(case, 15_000)], method="check", number="9001", received_at=DAY, actor=ACTOR
    )
    response = client.post(
        f"/api/v1/cases/{other.reference}/payments",
        json={
            "amount_cents": 15_000,
            "received_at": "2026-11-20",
            "method": "check",
            "external_id": "9001",
        },
        headers=api_token(make_user("collector")),
    )
    assert response.status_code == 409 and response.json["error"] == "duplicate"
    assert payments(db_session) == 1


def test_a_split_typed_wrong_says_why_and_posts_nothing(
    client, login, make_user, db_session, two_cases
):
    case, other = two_cases
    login(make_user("supervisor"))
    item = hold_unmatched(
        db_session,
        external_id="check:9003",
        amount_cents=20_000,
        received_at=DAY,
        method="check",
        actor=ACTOR,
    )
    url = f"/agency/unmatched/{item.id}/match"
    for typed, message in (
        ("RC-0000-00000", "No case has the reference RC-0000-00000."),
        (f"{case.reference} 150.00, {other.reference}", "give each case its amount"),
        (f"{case.reference} abc, {other.reference} 50", "Enter an amount"),
        (f"{case.reference} 150.00, {other.reference} 10.00", "add up to 160.00, not the 200.00"),
        ("", "No case has that reference."),
    ):
        page = client.get("/agency/unmatched")
        response = client.post(url, data={"reference": typed, "csrf_token": csrf_from(page)})
        assert response.status_code == 302
        shown = client.get("/agency/unmatched").get_data(as_text=True)
        assert message in shown, (typed, message)
    db_session.refresh(item)
    assert item.status == "open" and payments(db_session) == 0
    assert balance_cents(db_session, case.id) == 40_000
