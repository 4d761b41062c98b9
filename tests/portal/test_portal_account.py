"""What a signed-in debtor sees about their cases, every amount from the ledger, and nothing of
anyone else's: other cases, notices and receipts are not found."""

from __future__ import annotations

import datetime as dt
import io

import pypdf

from cases import audit
from cases.case import change_status
from payments.posting import post_payment
from shell.document_store import store

ACTOR = audit.Actor(None, "test")


def _pay(session, case, cents, ref, *, direct=False, on=dt.date(2026, 11, 20)):
    return post_payment(
        session,
        case,
        cents,
        external_id=ref,
        received_at=on,
        method="check",
        actor=ACTOR,
        direct=direct,
    )


def _active_with_notice(db_session, case):
    change_status(db_session, case, "active", actor=ACTOR, reason="notice sent")
    case.validation_period_ends_on = dt.date(2026, 12, 10)
    return store(
        b"%PDF-1.4 notice",
        filename=f"validation-notice-{case.reference}-en.pdf",
        content_type="application/pdf",
        kind="validation_notice",
        case_id=case.id,
        debtor_id=case.debtor_id,
    )


def test_the_case_page_shows_balance_itemisation_history_and_notice(
    db_session, signed_in, make_client, make_case
):
    case = make_case(make_client(), principal=40_000, interest=5_000, fees=2_500)
    # The referral said the interest and fees were charged after the itemisation date.
    case.amount_on_itemization_date_cents = 40_000
    case.interest_since_itemization_cents = 5_000
    case.fees_since_itemization_cents = 2_500
    notice = _active_with_notice(db_session, case)
    payment = _pay(db_session, case, 12_000, "check:101")
    _pay(db_session, case, 3_000, "direct:1", direct=True)
    client = signed_in(case)

    page = client.get(f"/portal/cases/{case.reference}").get_data(as_text=True)
    # 400 + 50 + 25 - 120 - 30 = 325.00, and the itemisation says the same.
    assert "Balance: $325.00" in page
    assert "$400.00" in page and "+ $50.00" in page and "+ $25.00" in page
    assert "− $150.00" in page
    assert "$120.00" in page and "$30.00" in page and "Paid to Acme" in page
    assert f"/portal/receipts/{payment.id}" in page
    assert f"/portal/cases/{case.reference}/validation-notice/{notice.id}" in page
    assert "You can dispute until</dt><dd>December 10, 2026" in page

    pdf = client.get(f"/portal/cases/{case.reference}/validation-notice/{notice.id}")
    assert pdf.status_code == 200 and pdf.data == b"%PDF-1.4 notice"


def test_a_receipt_page_and_its_pdf_match_the_ledger(db_session, signed_in, make_client, make_case):
    case = make_case(make_client(), principal=50_000)
    payment = _pay(db_session, case, 12_345, "check:77")
    client = signed_in(case)

    page = client.get(f"/portal/receipts/{payment.id}").get_data(as_text=True)
    assert "$123.45" in page and "check:77" in page and "$376.55" in page

    pdf = client.get(f"/portal/receipts/{payment.id}.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    text = pypdf.PdfReader(io.BytesIO(pdf.data)).pages[0].extract_text()
    assert "Receipt" in text and "$123.45" in text and "$376.55" in text
    assert case.reference in text


def test_a_debtor_reaches_nothing_of_another_debtors(
    db_session, client, signed_in, make_client, make_case
):
    acme = make_client()
    mine = make_case(acme, last_name="Garcia")
    theirs = make_case(acme, last_name="Smith", email="smith@example.com")
    their_notice = _active_with_notice(db_session, theirs)
    their_payment = _pay(db_session, theirs, 1_000, "check:9")
    my_direct = _pay(db_session, mine, 1_000, "direct:9", direct=True)
    signed_in(mine)

    for url in (
        f"/portal/cases/{theirs.reference}",
        f"/portal/cases/{theirs.reference}/pay",
        f"/portal/cases/{theirs.reference}/dispute",
        f"/portal/cases/{theirs.reference}/validation-notice/{their_notice.id}",
        f"/portal/cases/{mine.reference}/validation-notice/{their_notice.id}",
        f"/portal/receipts/{their_payment.id}",
        f"/portal/receipts/{their_payment.id}.pdf",
        f"/portal/receipts/{my_direct.id}",  # paid to the client: no receipt of ours
        "/portal/payments/pi_unknown",
    ):
        assert client.get(url).status_code == 404, url
    assert theirs.reference not in client.get("/portal/").get_data(as_text=True)


def test_signed_out_portal_pages_go_to_the_portal_sign_in(client, make_client, make_case):
    case = make_case(make_client())
    for url in (
        "/portal/",
        f"/portal/cases/{case.reference}",
        f"/portal/cases/{case.reference}/pay",
        "/portal/preferences",
        "/portal/receipts/1",
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/portal/login")


def test_a_closed_case_is_not_listed_but_a_paid_history_stays_readable(
    db_session, signed_in, make_client, make_case
):
    acme = make_client()
    case = make_case(acme)
    closed = make_case(acme, status="closed", close_reason="recalled")
    closed.debtor_id = case.debtor_id
    db_session.flush()
    home = signed_in(case).get("/portal/").get_data(as_text=True)
    assert case.reference in home and closed.reference not in home
