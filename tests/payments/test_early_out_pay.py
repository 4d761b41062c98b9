"""Early-out (issue #20): the debtor follows the reminder's link to a page branded as the client,
pays through the same Stripe flow (localstripe), or tells the client "I already paid" / "there is
a problem"; the client sees the replies and which accounts converted, and switches conversion."""

from __future__ import annotations

import datetime as dt
import json
import re

import sqlalchemy as sa

from cases.case import case_by_reference
from cases.contact_log import OutboundMessage
from cases.early_out import EarlyOutReply, recovery
from cases.ledger import LedgerEntry, balance_cents
from payments.posting import post_payment
from tests.cases.test_early_out import _file, _import, _row, _run
from tests.conftest import TEST_ACTOR, csrf_from
from tests.payments import test_portal_pay
from tests.payments.test_portal_pay import card_token, intent_id

VISA = "4242424242424242"
portal_stripe = test_portal_pay.portal_stripe  # the app paying through localstripe


def _placed(cli, db_session, tmp_path, language="en"):
    path = _file(tmp_path, _row("EO-1", "Maria", "Garcia", "maria@example.com", "2125550100"))
    (reference,) = json.loads(_import(cli, path, "--attest-early-out").stdout)["cases"]
    case = case_by_reference(db_session, reference)
    case.debtor.language = language
    db_session.flush()
    assert _run(cli, 10)["sent"] == 1
    email = db_session.scalar(sa.select(OutboundMessage).where(OutboundMessage.case_id == case.id))
    link = re.search(r"https?://\S+/portal/early-out/\S+", email.body).group(0)
    return case, "/portal/" + link.split("/portal/", 1)[1]


def _branded(app, page: str) -> None:
    assert "Acme Plumbing" in page
    assert app.config["AGENCY_NAME"] not in page
    assert "debt collector" not in page.lower()


def test_the_reminders_link_pays_on_the_clients_page_through_stripe(
    app, client, cli, db_session, make_client, tmp_path, portal_stripe
):
    make_client()
    case, link = _placed(cli, db_session, tmp_path)
    page = client.get(link)
    assert page.status_code == 200
    _branded(app, page.get_data(as_text=True))
    assert "$250.00" in page.get_data(as_text=True)

    # A bad amount changes nothing.
    bad = client.post(link, data={"amount": "lots", "csrf_token": csrf_from(page)})
    assert bad.status_code == 400 and "125.50" in bad.get_data(as_text=True)

    card_page = client.post(link, data={"amount": "250.00", "csrf_token": csrf_from(page)})
    assert card_page.status_code == 200
    text = card_page.get_data(as_text=True)
    _branded(app, text)
    intent = intent_id(text)
    confirmed = client.post(
        f"{link}/payments/{intent}/fake-confirm",
        json={"card": card_token(portal_stripe, VISA)},
        headers={"X-CSRFToken": csrf_from(page)},
    )
    assert confirmed.status_code == 200, confirmed.get_json()
    landed = client.get(f"{link}/payments/{intent}")
    assert landed.status_code == 200
    _branded(app, landed.get_data(as_text=True))
    assert "Your payment of $250.00 to Acme Plumbing was received" in landed.get_data(as_text=True)
    client.get(f"{link}/payments/{intent}")  # the browser comes back twice: posted once
    (entry,) = db_session.scalars(
        sa.select(LedgerEntry).where(LedgerEntry.case_id == case.id, LedgerEntry.kind == "payment")
    ).all()
    # The client's early-out fee (10% by default), not the collection tier.
    assert entry.amount_cents == -25_000 and entry.fee_bps == 1000 and entry.fee_cents == 2_500
    db_session.refresh(case)
    assert case.status == "paid" and balance_cents(db_session, case.id) == 0
    # Paid: no more reminders, and no conversion.
    assert _run(cli, 15) == {"sent": 0, "converted": []}
    assert _run(cli, 90) == {"sent": 0, "converted": []}


def test_already_paid_and_a_problem_go_to_the_client_in_spanish_too(
    app, client, cli, db_session, make_client, make_user, login, tmp_path
):
    acme = make_client()
    case, link = _placed(cli, db_session, tmp_path, language="es")
    page = client.get(link)
    text = page.get_data(as_text=True)
    _branded(app, text)
    assert "Su cuenta con Acme Plumbing" in text and "Ya pagué" in text

    empty = client.post(
        f"{link}/reply", data={"kind": "problem", "message": " ", "csrf_token": csrf_from(page)}
    )
    assert empty.status_code == 422
    assert db_session.scalar(sa.select(sa.func.count()).select_from(EarlyOutReply)) == 0
    sent = client.post(
        f"{link}/reply",
        data={"kind": "already_paid", "message": "Pagué el 20", "csrf_token": csrf_from(page)},
    )
    assert sent.status_code == 302
    (reply,) = db_session.scalars(sa.select(EarlyOutReply)).all()
    assert reply.case_id == case.id and reply.kind == "already_paid"
    assert "Gracias" in client.get(sent.headers["Location"]).get_data(as_text=True)
    assert client.get("/portal/early-out/not-a-token").status_code == 404

    login(make_user("client", client=acme))
    mine = client.get("/client/early-out").get_data(as_text=True)
    assert "I already paid" in mine and "Pagué el 20" in mine and case.reference in mine

    # The client switches conversion off for the account, then for the file, and on again.
    page = client.get("/client/early-out")
    off = client.post(
        f"/client/early-out/cases/{case.reference}/conversion",
        data={"converts": "off", "csrf_token": csrf_from(page)},
    )
    assert off.status_code == 302
    db_session.refresh(case)
    assert case.early_out_converts is False
    assert (
        client.post(
            f"/client/early-out/cases/{case.reference}/conversion",
            data={"converts": "maybe", "csrf_token": csrf_from(page)},
        ).status_code
        == 400
    )
    on = client.post(
        f"/client/early-out/files/{case.batch_id}/conversion",
        data={"converts": "on", "csrf_token": csrf_from(page)},
    )
    assert on.status_code == 302
    db_session.refresh(case)
    assert case.early_out_converts is True

    # Converted on day 90: the client sees it, and the early-out page is gone for the debtor.
    assert _run(cli, 90)["converted"] == [case.reference]
    assert case.reference in client.get("/client/early-out").get_data(as_text=True)
    assert client.get(link).status_code == 404


def test_another_clients_user_cannot_switch_an_account(
    client, cli, db_session, make_client, make_user, login, tmp_path
):
    make_client()
    other = make_client(code="OTHER", name="Other Co")
    case, _ = _placed(cli, db_session, tmp_path)
    login(make_user("client", client=other))
    page = client.get("/client/early-out")
    assert case.reference not in page.get_data(as_text=True)
    refused = client.post(
        f"/client/early-out/cases/{case.reference}/conversion",
        data={"converts": "off", "csrf_token": csrf_from(page)},
    )
    assert refused.status_code == 404
    db_session.refresh(case)
    assert case.early_out_converts is True


def test_the_dashboard_shows_accounts_saved_by_reminder_day_and_channel(
    client, cli, db_session, make_client, make_user, login, tmp_path
):
    acme = make_client()
    path = _file(
        tmp_path,
        _row("EO-1", "Maria", "Garcia", "maria@example.com", "2125550100"),
        _row("EO-2", "Jose", "Lopez", "jose@example.com", "2125550111"),
    )
    saved_ref, lost_ref = json.loads(_import(cli, path, "--attest-early-out").stdout)["cases"]
    saved = case_by_reference(db_session, saved_ref)
    assert _run(cli, 10)["sent"] == 2  # both get the day-1 email
    assert _run(cli, 15)["sent"] == 2  # and the day-15 email
    post_payment(
        db_session,
        saved,
        25_000,
        external_id="chk-1",
        received_at=dt.date(2026, 11, 29),
        method="check",
        actor=TEST_ACTOR,
        today=dt.date(2026, 11, 29),
    )
    db_session.flush()
    assert _run(cli, 90)["converted"] == [lost_ref]

    report = recovery(db_session, acme.id)
    assert (report.placed, report.saved, report.converted, report.in_reminders) == (2, 1, 1, 0)
    assert report.recovered_cents == 25_000 and report.saved_percent == 50
    assert [(s.day, s.channel, s.reached, s.paid) for s in report.steps] == [
        (1, "email", 2, 0),
        (15, "email", 2, 1),
    ]
    login(make_user("client", client=acme))
    page = client.get("/client/").get_data(as_text=True)
    assert "Early-out: saved from collection" in page
    assert "Day 15 email: 1" in page  # the chart's bar for the reminder that got paid
    assert "50%" in page
