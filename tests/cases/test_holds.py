"""Holds and their deadlines: a dispute is timely by the end of the period's last day in the
debtor's own time, in the most generous of their zones (SPEC §6.7); a request for the original
creditor inside the period holds collection until the answer is sent (1006.38(c), SPEC §6.12)."""

from __future__ import annotations

import datetime as dt
import io
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import time_machine
from pypdf import PdfReader

from cases import audit
from cases.case import change_status
from cases.contact_log import ContactRefused, gate
from cases.disputes import Dispute, DisputeError, record_dispute
from cases.documents import Document
from tests.conftest import csrf_from

ACTOR = audit.Actor(None, "test")
HONOLULU = ZoneInfo("Pacific/Honolulu")
LAST_DAY = dt.date(2026, 12, 10)
# 20:00 in Honolulu on the period's last day is already the next day in New York (01:00).
EVENING_IN_HAWAII = dt.datetime(2026, 12, 10, 20, 0, tzinfo=HONOLULU)


def hawaiian(make_client, make_case, db_session, creditor=None, **kwargs):
    creditor = creditor or make_client()
    case = make_case(creditor, postal_code="96813", state="HI", phone="+18085550100", **kwargs)
    change_status(db_session, case, "active", actor=ACTOR, reason="notice sent")
    case.validation_period_ends_on = LAST_DAY
    db_session.flush()
    return case


def portal_request(client, case, data):
    url = f"/portal/cases/{case.reference}/dispute"
    page = client.get(url)
    return client.post(
        url, data={**data, "csrf_token": csrf_from(page)}, content_type="multipart/form-data"
    )


def staff_post(client, case, path, data):
    page = client.get(f"/agency/cases/{case.reference}")
    return client.post(
        f"/agency/cases/{case.reference}/{path}", data={**data, "csrf_token": csrf_from(page)}
    )


def test_a_portal_dispute_at_8pm_in_hawaii_on_the_last_day_is_timely(
    db_session, make_client, make_case, signed_in
):
    case = hawaiian(make_client, make_case, db_session)
    with time_machine.travel(EVENING_IN_HAWAII, tick=False):
        client = signed_in(case)
        response = portal_request(client, case, {"kind": "dispute", "reason": "Not mine."})
    assert response.status_code == 200
    assert "We have stopped collecting this debt" in response.get_data(as_text=True)
    db_session.refresh(case)
    assert case.status == "disputed"
    dispute = db_session.scalar(sa.select(Dispute).where(Dispute.case_id == case.id))
    assert dispute.within_validation_period is True


def test_a_dispute_is_judged_in_the_most_generous_of_the_debtors_zones(
    db_session, make_client, make_case
):
    # A New York address with a Honolulu phone: either may be where the debtor is.
    case = make_case(make_client(), phone="+18085550100")
    case.validation_period_ends_on = LAST_DAY
    received = dt.datetime(2026, 12, 11, 8, 0, tzinfo=dt.UTC)  # 03:00 NY, 22:00 HST the 10th
    with time_machine.travel(received + dt.timedelta(hours=1), tick=False):
        d = record_dispute(
            db_session, case, reason="No.", channel="email", received_at=received, actor=ACTOR
        )
    assert d.within_validation_period
    # The next day everywhere is late.
    late = make_case(make_client("OTHER", "Other Co"), phone="+18085550100", last_name="Late")
    late.validation_period_ends_on = LAST_DAY
    later = dt.datetime(2026, 12, 11, 11, 0, tzinfo=dt.UTC)  # 01:00 HST the 11th
    with time_machine.travel(later + dt.timedelta(hours=1), tick=False):
        d = record_dispute(
            db_session, late, reason="No.", channel="email", received_at=later, actor=ACTOR
        )
    assert not d.within_validation_period and late.status == "new"


def test_the_staff_form_judges_the_time_the_dispute_arrived(
    db_session, make_client, make_case, client, login, make_user
):
    case = hawaiian(make_client, make_case, db_session)
    late = hawaiian(make_client, make_case, db_session, case.client, last_name="Kahale")
    login(make_user("collector"))
    with time_machine.travel(dt.datetime(2026, 12, 14, 15, tzinfo=dt.UTC), tick=False):
        # Arrived 01:00 New York on the 11th: 20:00 on the 10th in Honolulu. Timely.
        staff_post(
            client,
            case,
            "disputes",
            {
                "dispute-kind": "dispute",
                "dispute-reason": "Not mine",
                "dispute-channel": "letter",
                "dispute-received_at": "2026-12-11T01:00",
            },
        )
        # Arrived 06:00 New York on the 11th: 01:00 on the 11th in Honolulu. Late.
        staff_post(
            client,
            late,
            "disputes",
            {
                "dispute-kind": "dispute",
                "dispute-reason": "Not mine",
                "dispute-channel": "letter",
                "dispute-received_at": "2026-12-11T06:00",
            },
        )
        # A time still to come is refused and records nothing.
        refused = staff_post(
            client,
            late,
            "disputes",
            {
                "dispute-kind": "dispute",
                "dispute-reason": "Not mine",
                "dispute-channel": "letter",
                "dispute-received_at": "2026-12-20T06:00",
            },
        )
    assert refused.status_code == 422
    assert "cannot have arrived in the future" in refused.get_data(as_text=True)
    db_session.refresh(case)
    db_session.refresh(late)
    assert case.status == "disputed"
    assert late.status == "active"
    assert (
        db_session.scalar(
            sa.select(sa.func.count()).select_from(Dispute).where(Dispute.case_id == late.id)
        )
        == 1
    )


def test_an_original_creditor_request_from_the_portal_holds_until_the_answer_is_sent(
    db_session, make_client, make_case, signed_in, client, login, make_user
):
    case = hawaiian(make_client, make_case, db_session)
    case.original_creditor_name = "First Bank of Springfield"
    case.original_creditor_address = "1 Bank Plaza\nSpringfield, IL 62701"
    db_session.flush()
    with time_machine.travel(dt.datetime(2026, 12, 1, 18, tzinfo=dt.UTC), tick=True):
        portal = signed_in(case)
        page = portal.get(f"/portal/cases/{case.reference}").get_data(as_text=True)
        assert "Ask for the original creditor" in page
        response = portal_request(portal, case, {"kind": "original_creditor", "reason": ""})
        assert response.status_code == 200
        text = response.get_data(as_text=True)
        assert "request for the original creditor" in text
        assert "until we send you the name and address of the original creditor" in text
        db_session.refresh(case)
        assert case.status == "disputed"
        request = db_session.scalar(sa.select(Dispute).where(Dispute.case_id == case.id))
        assert (request.kind, request.within_validation_period) == ("original_creditor", True)
        # Collection is held: nothing goes out but the answer.
        try:
            gate(db_session, case, "email", dt.datetime(2026, 12, 1, 19, tzinfo=dt.UTC))
        except ContactRefused as refused:
            assert [v.rule for v in refused.violations] == ["dispute_hold"]
        else:
            raise AssertionError("the hold let an email through")

        # A collector sends the answer from the case screen: the hold lifts.
        portal.post("/portal/logout", data={"csrf_token": csrf_from(portal.get("/portal/"))})
        login(make_user("collector"))
        screen = client.get(f"/agency/cases/{case.reference}").get_data(as_text=True)
        assert "First Bank of Springfield" in screen
        assert staff_post(client, case, "original-creditor", {}).status_code == 302
        db_session.refresh(case)
        db_session.refresh(request)
        assert case.status == "active" and request.status == "answered"
        letter = db_session.get(Document, request.verification_document_id)
        reader = PdfReader(io.BytesIO(open_document(client, letter)))
    text = " ".join(" ".join(p.extract_text().split()) for p in reader.pages)
    assert "First Bank of Springfield" in text and "Springfield, IL 62701" in text


def open_document(client, document):
    response = client.get(f"/agency/documents/{document.id}")
    assert response.status_code == 200
    return response.data


def test_a_staff_request_without_an_original_creditor_on_file_cannot_be_answered(
    db_session, make_client, make_case, client, login, make_user
):
    case = hawaiian(make_client, make_case, db_session)
    login(make_user("collector"))
    with time_machine.travel(dt.datetime(2026, 12, 1, 18, tzinfo=dt.UTC), tick=True):
        staff_post(
            client,
            case,
            "disputes",
            {"dispute-kind": "original_creditor", "dispute-reason": "", "dispute-channel": "call"},
        )
        db_session.refresh(case)
        assert case.status == "disputed"
        refused = staff_post(client, case, "original-creditor", {})
    assert refused.status_code == 422
    assert "the referral gave no original creditor" in refused.get_data(as_text=True)
    db_session.refresh(case)
    assert case.status == "disputed"


def test_a_dispute_and_an_original_creditor_request_each_need_their_answer(
    db_session, make_client, make_case
):
    from cases.disputes import send_original_creditor, send_verification

    case = hawaiian(make_client, make_case, db_session)
    case.original_creditor_name = "First Bank"
    now = dt.datetime(2026, 12, 1, 18, tzinfo=dt.UTC)
    with time_machine.travel(now, tick=False):
        for kind in ("dispute", "original_creditor"):
            record_dispute(
                db_session,
                case,
                reason="x",
                channel="call",
                received_at=now,
                actor=ACTOR,
                kind=kind,
            )
        send_verification(db_session, case, document_id=None, actor=ACTOR)
        assert case.status == "disputed"  # the request still holds it
        send_original_creditor(db_session, case, document_id=None, actor=ACTOR)
        assert case.status == "active"
        try:
            send_original_creditor(db_session, case, document_id=None, actor=ACTOR)
        except DisputeError as exc:
            assert "no open request" in str(exc)
        else:
            raise AssertionError("answered twice")
