"""The portal's case page writes its dates out in the debtor's language (portal/wording.py):
the itemisation date, the payment history and its receipts, and the plan's schedule; no ISO
date is left on the page, in English or in Spanish."""

from __future__ import annotations

import datetime as dt
import re

from cases import audit
from cases.case import change_status
from cases.plans import create_plan
from payments.posting import post_payment
from tests.conftest import csrf_from

ACTOR = audit.Actor(None, "test")
TODAY = dt.date(2026, 11, 23)


def _case_with_history_and_plan(db_session, make_client, make_case):
    case = make_case(make_client(), principal=100_000, days_past_due=120)
    change_status(db_session, case, "active", actor=ACTOR, reason="notice sent")
    case.itemization_date = dt.date(2026, 7, 5)
    post_payment(
        db_session,
        case,
        12_000,
        external_id="check:written",
        received_at=dt.date(2026, 11, 20),
        method="check",
        actor=ACTOR,
    )
    create_plan(
        db_session,
        case,
        frequency="monthly",
        count=2,
        first_on=dt.date(2026, 12, 7),
        today=TODAY,
        actor=ACTOR,
    )
    db_session.flush()
    return case


def test_the_case_page_writes_every_date_out_in_english_and_spanish(
    client, signed_in, make_client, make_case, db_session
):
    case = _case_with_history_and_plan(db_session, make_client, make_case)
    signed_in(case)
    url = f"/portal/cases/{case.reference}"

    page = client.get(url).get_data(as_text=True)
    assert "As of July 5, 2026, you owed" in page  # the itemisation
    assert ">November 20, 2026</td>" in page  # the payment history
    assert 'Receipt<span class="sr-only"> November 20, 2026</span>' in page
    assert ">December 7, 2026</td>" in page and ">January 7, 2027</td>" in page  # the plan
    assert "Next payment: $440.00 on December 7, 2026." in page
    assert not re.search(r"\d{4}-\d{2}-\d{2}", page.split("<main", 1)[1])

    client.post(
        "/portal/language",
        data={"lang": "es", "next": url, "csrf_token": csrf_from(client.get(url))},
    )
    page = client.get(url).get_data(as_text=True)
    assert "5 de julio de 2026" in page
    assert ">20 de noviembre de 2026</td>" in page
    assert ">7 de diciembre de 2026</td>" in page and ">7 de enero de 2027</td>" in page
    assert "July" not in page and "December" not in page
    assert not re.search(r"\d{4}-\d{2}-\d{2}", page.split("<main", 1)[1])


def test_the_receipt_writes_its_date_out(client, signed_in, make_client, make_case, db_session):
    case = _case_with_history_and_plan(db_session, make_client, make_case)
    signed_in(case)
    page = client.get(f"/portal/cases/{case.reference}").get_data(as_text=True)
    receipt = re.search(r'href="(/portal/receipts/\d+)"', page).group(1)
    page = client.get(receipt).get_data(as_text=True)
    assert "<dd>November 20, 2026</dd>" in page
