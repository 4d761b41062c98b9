"""The case screen on a time-barred debt (SPEC §6.11) and on wrong numbers and phone types
(SPEC §6.13, 209 CMR 18.14(1)(d))."""

import datetime as dt
import io
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine
from pypdf import PdfReader

from cases import audit
from cases.contact_log import ContactRefused, debtor_facts, record_contact
from cases.contacts import ComplianceAlert, Contact
from cases.debtors import Phone
from cases.ledger import balance_cents
from cases.messages import OutboundMessage, send_case_text
from tests.conftest import csrf_from

NY = ZoneInfo("America/New_York")
CHICAGO = ZoneInfo("America/Chicago")
MORNING = dt.datetime(2026, 11, 23, 11, 0, tzinfo=NY)
ACTOR = audit.Actor(None, "test")
TEXAS_REVIVAL = "a payment on a time-barred debt does not revive it (Tex. Fin. Code § 392.307(b))"


def act(client, case, path, data):
    page = client.get(f"/agency/cases/{case.reference}")
    return client.post(
        f"/agency/cases/{case.reference}/{path}", data={**data, "csrf_token": csrf_from(page)}
    )


def texas_case(make_case, client, *, years_ago=6, **kw):
    """A Dallas debtor; due `years_ago` years before the referral (Texas: 4 years)."""
    return make_case(
        client,
        status="active",
        state="TX",
        postal_code="75201",
        phone="+12145550100",
        days_past_due=365 * years_ago,
        **kw,
    )


def test_the_case_screen_shows_the_limitation_date_and_that_the_debt_is_time_barred(
    client, login, make_user, make_client, make_case
):
    login(make_user("collector"))
    acme = make_client()
    barred = texas_case(make_case, acme)
    with time_machine.travel(MORNING, tick=False):
        page = client.get(f"/agency/cases/{barred.reference}").get_data(as_text=True)
    due = barred.due_date
    expires = due.replace(year=due.year + 4).isoformat()
    assert f"<strong>Time-barred</strong> since {expires}" in page
    assert "the case cannot go to legal" in page
    assert f"time-barred since {expires}" in page
    assert "TX: 4 years (kind of debt not given: the shortest period" in page
    assert f"from the due date, {due.isoformat()}" in page
    assert TEXAS_REVIVAL in page  # the revival rule, beside the payment form too
    assert 'id="revival"' in page

    fresh = texas_case(make_case, acme, years_ago=1, account_number="B-1")
    with time_machine.travel(MORNING, tick=False):
        page = client.get(f"/agency/cases/{fresh.reference}").get_data(as_text=True)
    assert "Time-barred" not in page and 'id="revival"' not in page
    assert "runs until " + fresh.due_date.replace(year=fresh.due_date.year + 4).isoformat() in (
        page
    )


def test_closing_a_time_barred_case_to_legal_is_refused_with_the_reason(
    client, login, make_user, make_client, make_case, db_session
):
    login(make_user("supervisor"))
    case = texas_case(make_case, make_client())
    with time_machine.travel(MORNING, tick=False):
        response = act(
            client,
            case,
            "close",
            {"close-close_reason": "legal", "close-reason": "sue them", "close-confirm": "y"},
        )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "The debt is time-barred since" in page
    assert "no suit and no threat of suit (12 CFR 1006.26(b)), so it cannot go to legal" in page
    db_session.refresh(case)
    assert case.status == "active" and case.close_reason is None


def test_a_payment_on_a_time_barred_debt_is_taken_and_the_collector_sees_the_revival_rule(
    client, login, make_user, make_client, make_case, db_session
):
    login(make_user("collector"))
    case = texas_case(make_case, make_client(), principal=30_000)
    with time_machine.travel(MORNING, tick=False):
        response = act(
            client,
            case,
            "payments",
            {
                "pay-amount": "50.00",
                "pay-received_at": "2026-11-22",
                "pay-method": "check",
                "pay-reference": "7001",
            },
        )
        assert response.status_code == 302
        page = client.get(response.location).get_data(as_text=True)
    assert balance_cents(db_session, case.id) == 25_000
    assert "Payment of $50.00 posted. The debt was time-barred since" in page
    assert TEXAS_REVIVAL in page


def test_a_wrong_number_marks_the_phone_and_it_is_never_offered_or_dialled_again(
    client, login, make_user, make_client, make_case, db_session
):
    login(make_user("collector"))
    case = make_case(make_client(), status="active", phone="+12125550100")
    number = "+12125550100"
    case.debtor.phones[0].text_consent = True
    other = Phone(number="+12125550111", type="home", text_consent=True)
    case.debtor.phones.append(other)
    db_session.flush()
    with time_machine.travel(MORNING, tick=False):
        page = client.get(f"/agency/cases/{case.reference}").get_data(as_text=True)
        assert f'<option value="{number}">' in page
        response = act(
            client, case, "calls", {"call-phone": number, "call-outcome": "wrong_number"}
        )
        assert response.status_code == 302
        page = client.get(f"/agency/cases/{case.reference}").get_data(as_text=True)
    phone = case.debtor.phones[0]
    db_session.refresh(phone)
    assert phone.wrong_number_at is not None
    assert "not the debtor's: wrong number" in page
    assert f'<option value="{number}">' not in page  # neither to call nor to text
    assert f'<option value="{other.number}">' in page

    # The gate refuses it: a text is not queued, a call to it is recorded as a violation.
    with time_machine.travel(MORNING + dt.timedelta(hours=1), tick=False):
        with pytest.raises(ContactRefused, match="not the debtor's number"):
            send_case_text(
                db_session, case, to=number, body="Hello. Reply STOP to opt out", actor=ACTOR
            )
        recorded = record_contact(
            db_session,
            case,
            channel="call",
            direction="outbound",
            outcome="no_answer",
            occurred_at=MORNING + dt.timedelta(hours=1),
            actor=ACTOR,
            target=number,
        )
    assert [v.rule for v in recorded.violations] == ["wrong_number"]
    assert db_session.scalar(
        sa.select(ComplianceAlert).where(ComplianceAlert.contact_id == recorded.contact.id)
    )


def test_a_wrong_number_no_longer_says_where_the_debtor_is(db_session, make_client, make_case):
    # A New York address and a Los Angeles number: both zones, until the number proves wrong.
    case = make_case(make_client(), status="active", phone="+13105550100")
    assert debtor_facts(case).zones == ("America/Los_Angeles", "America/New_York")
    at = dt.datetime(2026, 11, 23, 11, 0, tzinfo=NY)  # 08:00 in Los Angeles
    with time_machine.travel(at, tick=False):
        record_contact(
            db_session,
            case,
            channel="call",
            direction="outbound",
            outcome="wrong_number",
            occurred_at=at,
            actor=ACTOR,
            target="+13105550100",
        )
    assert debtor_facts(case).zones == ("America/New_York",)
    assert debtor_facts(case).wrong_numbers == {"+13105550100"}


def test_staff_set_a_phones_type_and_a_bad_type_is_refused_with_a_clear_message(
    client, login, make_user, make_client, make_case, db_session
):
    login(make_user("collector"))
    case = make_case(make_client(), status="active", phone="+12125550100")
    phone = case.debtor.phones[0]
    with time_machine.travel(MORNING, tick=False):
        bad = act(
            client,
            case,
            "phone-type",
            {"phonetype-number": phone.number, "phonetype-type": "cell"},
        )
        assert bad.status_code == 422
        assert (
            "the phone type &#39;cell&#39; is not one of: mobile, home, work, other"
            in bad.get_data(as_text=True)
        )
        db_session.refresh(phone)
        assert phone.type == "mobile"
        unknown = act(
            client,
            case,
            "phone-type",
            {"phonetype-number": "+19995550000", "phonetype-type": "work"},
        )
        assert unknown.status_code == 422
        assert "that number is not on file for this debtor" in unknown.get_data(as_text=True)
        good = act(
            client,
            case,
            "phone-type",
            {"phonetype-number": phone.number, "phonetype-type": "work"},
        )
        assert good.status_code == 302
    db_session.refresh(phone)
    assert phone.type == "work"


def test_massachusetts_two_calls_in_30_days_to_a_number_not_the_debtors_own(
    client, login, make_user, make_client, make_case, db_session
):
    login(make_user("collector"))
    case = make_case(
        make_client(), status="active", state="MA", postal_code="02108", phone="+16175550100"
    )
    work = Phone(number="+16175550199", type="work")
    case.debtor.phones.append(work)
    db_session.flush()
    boston = ZoneInfo("America/New_York")
    first = dt.datetime(2026, 11, 2, 11, 0, tzinfo=boston)
    for at in (first, first + dt.timedelta(days=9)):
        earlier = record_contact(
            db_session,
            case,
            channel="call",
            direction="outbound",
            outcome="no_answer",
            occurred_at=at,
            actor=ACTOR,
            target=work.number,
        )
        assert earlier.violations == []
    third = MORNING  # Nov 23: clear of the 7-day limit, inside the 30 days of Nov 2
    with time_machine.travel(third, tick=False):
        response = act(
            client, case, "calls", {"call-phone": work.number, "call-outcome": "no_answer"}
        )
        assert response.status_code == 302
        page = client.get(response.location).get_data(as_text=True)
    assert "not the debtor&#39;s own; Massachusetts allows 2 in 30 days" in page
    # The screen says the work number may not be called now, while calls are allowed.
    assert f"Call to {work.number} now:" in page
    assert "+16175550100 now:" not in page
    last = db_session.scalars(
        sa.select(Contact).where(Contact.case_id == case.id).order_by(Contact.id.desc())
    ).first()
    assert [v["rule"] for v in last.violations] == ["massachusetts_other_numbers"]
    # The debtor's own number the same day is under the weekly limit only, which is clear.
    with time_machine.travel(third + dt.timedelta(minutes=5), tick=False):
        own = record_contact(
            db_session,
            case,
            channel="call",
            direction="outbound",
            outcome="no_answer",
            occurred_at=third + dt.timedelta(minutes=5),
            actor=ACTOR,
            target="+16175550100",
        )
    assert own.violations == []


# --- the disclosure the state requires, on letters, emails and portal pages -----------------

TEXAS_DISCLOSURE = (
    "THE LAW LIMITS HOW LONG YOU CAN BE SUED ON A DEBT. BECAUSE OF THE AGE OF YOUR DEBT, "
    "ACME PLUMBING CANNOT SUE YOU FOR IT."
)


def letter_text(client, db_session, case) -> str:
    letter = db_session.scalars(
        sa.select(Contact)
        .where(Contact.case_id == case.id, Contact.channel == "letter")
        .order_by(Contact.id.desc())
    ).first()
    pdf = client.get(f"/agency/documents/{letter.document_id}")
    reader = PdfReader(io.BytesIO(pdf.data))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


def illinois_case(make_case, client, **kw):
    """An Illinois debtor, an open account due six years ago (Illinois: 5 years, and no
    disclosure required)."""
    case = make_case(
        client,
        status="active",
        state="IL",
        postal_code="60601",
        phone="+13125550100",
        days_past_due=365 * 6,
        **kw,
    )
    case.debt_kind = "open_account"
    return case


def test_a_texas_time_barred_debt_letter_carries_the_texas_disclosure_and_illinois_none(
    client, login, make_user, make_client, make_case, db_session
):
    login(make_user("collector"))
    acme = make_client()
    texas = texas_case(make_case, acme, account_number="T-1")
    illinois = illinois_case(make_case, acme, account_number="I-1")
    fresh = texas_case(make_case, acme, years_ago=1, account_number="T-2")
    with time_machine.travel(MORNING, tick=False):
        for case in (texas, illinois, fresh):
            response = act(client, case, "letters", {"letter-kind": "collection"})
            assert response.status_code == 302
        texts = {c.reference: letter_text(client, db_session, c) for c in (texas, illinois, fresh)}
    assert TEXAS_DISCLOSURE in texts[texas.reference]
    assert "REPORT IT TO THE CREDIT REPORTING AGENCIES AS UNPAID" in texts[texas.reference]
    for other in (illinois, fresh):
        assert "THE LAW LIMITS" not in texts[other.reference].upper()
        assert "This is a communication from a debt collector." in texts[other.reference]


def test_an_email_about_a_time_barred_texas_debt_carries_the_disclosure_and_illinois_none(
    client, login, make_user, make_client, make_case, db_session
):
    login(make_user("collector"))
    acme = make_client()
    texas = texas_case(make_case, acme, account_number="T-1", email="tex@example.com")
    illinois = illinois_case(make_case, acme, account_number="I-1", email="ill@example.com")
    with time_machine.travel(MORNING, tick=False):
        for case, to in ((texas, "tex@example.com"), (illinois, "ill@example.com")):
            response = act(
                client,
                case,
                "emails",
                {"email-to": to, "email-template": "payment_reminder"},
            )
            assert response.status_code == 302
    bodies = {m.to_address: m.body for m in db_session.scalars(sa.select(OutboundMessage)).all()}
    assert TEXAS_DISCLOSURE in " ".join(bodies["tex@example.com"].split())
    assert "THE LAW LIMITS" not in bodies["ill@example.com"].upper()


def test_the_portal_pages_of_a_time_barred_texas_debt_carry_the_disclosure_and_illinois_none(
    client, signed_in, make_client, make_case, db_session
):
    acme = make_client()
    texas = texas_case(make_case, acme, account_number="T-1")
    signed_in(texas)
    for path in (
        "/portal/",
        f"/portal/cases/{texas.reference}",
        f"/portal/cases/{texas.reference}/dispute",
    ):
        page = client.get(path)
        assert page.status_code == 200, path
        assert TEXAS_DISCLOSURE in " ".join(page.get_data(as_text=True).split()), path
    client.post("/portal/logout", data={"csrf_token": csrf_from(client.get("/portal/"))})
    illinois = illinois_case(make_case, acme, account_number="I-1", last_name="Novak")
    db_session.flush()
    signed_in(illinois)
    page = client.get(f"/portal/cases/{illinois.reference}").get_data(as_text=True)
    assert illinois.reference in page
    assert "THE LAW LIMITS" not in page.upper()


def test_the_validation_notice_of_a_time_barred_texas_debt_carries_the_disclosure(
    client, login, make_user, make_client, make_case, db_session
):
    from cases.documents import Document

    login(make_user("collector"))
    acme = make_client()
    texas = make_case(acme, state="TX", postal_code="75201", days_past_due=365 * 6)
    illinois = make_case(
        acme, state="IL", postal_code="60601", days_past_due=365 * 6, account_number="I-1"
    )
    texts = {}
    with time_machine.travel(MORNING, tick=False):
        for case in (texas, illinois):
            page = client.get(f"/agency/cases/{case.reference}")
            response = client.post(
                f"/agency/cases/{case.reference}/validation-notice",
                data={"csrf_token": csrf_from(page)},
            )
            assert response.status_code == 302
            document = db_session.scalars(
                sa.select(Document).where(
                    Document.case_id == case.id, Document.kind == "validation_notice"
                )
            ).first()
            pdf = client.get(f"/agency/documents/{document.id}")
            reader = PdfReader(io.BytesIO(pdf.data))
            texts[case.reference] = " ".join(
                " ".join(p.extract_text() for p in reader.pages).split()
            )
    assert TEXAS_DISCLOSURE in texts[texas.reference]
    assert "THE LAW LIMITS" not in texts[illinois.reference].upper()
