"""Money without a case is kept, listed, and posted once it is matched."""

import datetime as dt

import sqlalchemy as sa
import time_machine

from payments.posting import LedgerEntry, balance_cents
from payments.unmatched import UnmatchedPayment
from tests.conftest import csrf_from

NOON = dt.datetime(2026, 11, 23, 17, 0, tzinfo=dt.UTC)


def test_an_unmatched_payment_is_kept_then_posted_to_its_case(
    client, login, make_user, make_client, make_case, db_session
):
    login(make_user("supervisor"))
    case = make_case(make_client(), status="active", principal=40_000)
    with time_machine.travel(NOON, tick=False):
        page = client.get("/agency/unmatched")
        form = {
            "amount": "150.00",
            "received_at": "2026-11-21",
            "method": "check",
            "reference": "9001",
            "payer": "J. Doe",
            "details": "no coupon",
            "csrf_token": csrf_from(page),
        }
        assert client.post("/agency/unmatched", data=form).status_code == 302
        assert client.post("/agency/unmatched", data={**form, "amount": "abc"}).status_code == 422
        item = db_session.scalar(sa.select(UnmatchedPayment))
        page = client.get("/agency/unmatched")
        assert "J. Doe" in page.get_data(as_text=True)
        bad = client.post(
            f"/agency/unmatched/{item.id}/match",
            data={"reference": "RC-0000-00000", "csrf_token": csrf_from(page)},
        )
        assert bad.status_code == 302
        assert balance_cents(db_session, case.id) == 40_000
        ok = client.post(
            f"/agency/unmatched/{item.id}/match",
            data={"reference": case.reference, "csrf_token": csrf_from(page)},
        )
        assert ok.status_code == 302
        again = client.post(
            f"/agency/unmatched/{item.id}/match",
            data={"reference": case.reference, "csrf_token": csrf_from(page)},
        )
        assert again.status_code == 302
    db_session.refresh(item)
    assert item.status == "matched"
    assert balance_cents(db_session, case.id) == 25_000
    assert (
        db_session.scalar(
            sa.select(sa.func.count())
            .select_from(LedgerEntry)
            .where(LedgerEntry.external_id == f"check:D{case.debtor_id}:9001")  # its payer
        )
        == 1
    )


def test_collectors_do_not_handle_unmatched_money(client, login, make_user):
    login(make_user("collector"))
    assert client.get("/agency/unmatched").status_code == 403
