"""What the case page says about the right to dispute: the validation information on a new case
whose notice has not gone out, the last day while the period runs, and in plain words what still
applies once it has ended (never a past date beside the dispute button); dates written out in
the debtor's language."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from cases import audit
from cases.case import change_status
from cases.disputes import Dispute
from tests.conftest import csrf_from

ACTOR = audit.Actor(None, "test")


def noticed(db_session, case, ends_on: dt.date):
    change_status(db_session, case, "active", actor=ACTOR, reason="notice sent")
    case.validation_sent_at = dt.datetime(2026, 10, 1, 14, tzinfo=dt.UTC)
    case.validation_period_ends_on = ends_on
    db_session.flush()
    return case


def test_a_new_case_shows_its_validation_information(
    client, signed_in, make_client, make_case, db_session
):
    case = make_case(make_client(), status="new", principal=40_000)
    signed_in(case)

    page = client.get(f"/portal/cases/{case.reference}").get_data(as_text=True)

    assert "Your right to dispute" in page
    assert "is a debt collector. We are trying to collect a debt that you owe to Acme" in page
    assert "You can dispute all or part of this debt until 30 days after you receive" in page
    assert "we must stop collection on any amount you dispute" in page
    assert "ask for the name and address of the original creditor" in page
    # What is owed, itemised, on the same page.
    assert "Why you owe this amount" in page and "Total amount of the debt now" in page
    assert "You can dispute until" not in page and "ended on" not in page


def test_while_the_period_runs_the_page_gives_its_last_day_written_out(
    client, signed_in, make_client, make_case, db_session
):
    case = noticed(db_session, make_case(make_client()), dt.date(2026, 12, 10))
    signed_in(case)

    page = client.get(f"/portal/cases/{case.reference}").get_data(as_text=True)

    assert "You can dispute until</dt><dd>December 10, 2026</dd>" in page
    assert "You can dispute all or part of this debt until December 10, 2026." in page
    assert "2026-12-10" not in page

    client.post(
        "/portal/language",
        data={
            "lang": "es",
            "next": f"/portal/cases/{case.reference}",
            "csrf_token": csrf_from(client.get(f"/portal/cases/{case.reference}")),
        },
    )
    page = client.get(f"/portal/cases/{case.reference}").get_data(as_text=True)
    assert "10 de diciembre de 2026" in page and "December" not in page


def test_after_the_period_the_page_says_what_still_applies_and_no_past_deadline(
    client, signed_in, make_client, make_case, db_session
):
    case = noticed(db_session, make_case(make_client()), dt.date(2026, 11, 1))
    signed_in(case)

    page = client.get(f"/portal/cases/{case.reference}").get_data(as_text=True)

    assert "You can dispute until" not in page
    assert "Period to dispute</dt><dd>Ended on November 1, 2026</dd>" in page
    assert "The 30 days to dispute this debt ended on November 1, 2026." in page
    assert "You can still tell us if you think this debt is wrong" in page
    assert "Collection does not stop while we do." in page
    assert "Dispute this debt" in page  # still possible, as the words say

    # And the page says what the dispute then is: answered, not a hold.
    url = f"/portal/cases/{case.reference}/dispute"
    client.post(
        url,
        data={"kind": "dispute", "reason": "Not mine", "csrf_token": csrf_from(client.get(url))},
    )
    dispute = db_session.scalars(sa.select(Dispute)).one()
    assert dispute.within_validation_period is False
    assert case.status == "active"
