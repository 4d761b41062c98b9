"""A debtor's dispute (with documents) and contact preferences from the portal, and the
language they read it in: each changes what the collector may do, or nothing when refused."""

from __future__ import annotations

import datetime as dt
import io

import sqlalchemy as sa

from cases import audit
from cases.case import change_status
from cases.contact_log import ContactRefused, debtor_facts, gate
from cases.disputes import Dispute
from cases.documents import Document
from cases.model import utcnow
from tests.conftest import csrf_from

ACTOR = audit.Actor(None, "test")
PDF = b"%PDF-1.4 my bank statement"


def _active(db_session, case, period_ends=dt.date(2026, 12, 10)):
    change_status(db_session, case, "active", actor=ACTOR, reason="notice sent")
    case.validation_period_ends_on = period_ends
    db_session.flush()
    return case


def _dispute(client, case, reason, files=()):
    url = f"/portal/cases/{case.reference}/dispute"
    data = {"reason": reason, "csrf_token": csrf_from(client.get(url))}
    data["documents"] = [(io.BytesIO(body), name) for name, body in files]
    return client.post(url, data=data, content_type="multipart/form-data")


def test_a_dispute_inside_the_period_holds_the_case_and_the_collector_sees_it(
    db_session, signed_in, login, make_client, make_case, make_user
):
    case = _active(db_session, make_case(make_client()))
    client = signed_in(case)
    response = _dispute(client, case, "I paid this in June.", [("statement.pdf", PDF)])
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "We have stopped collecting this debt" in page
    assert f"We recorded your dispute of account {case.reference}, with 1 document." in page

    db_session.refresh(case)
    assert case.status == "disputed"
    [dispute] = db_session.scalars(sa.select(Dispute).where(Dispute.case_id == case.id)).all()
    assert (dispute.channel, dispute.reason, dispute.within_validation_period) == (
        "portal",
        "I paid this in June.",
        True,
    )
    [upload] = db_session.scalars(
        sa.select(Document).where(Document.case_id == case.id, Document.kind == "dispute_upload")
    ).all()
    assert upload.filename == "statement.pdf" and upload.size_bytes == len(PDF)

    # The collector's case screen shows the hold and the dispute.
    login(make_user("supervisor"))
    screen = client.get(f"/agency/cases/{case.reference}").get_data(as_text=True)
    assert "I paid this in June." in screen and "disputed" in screen
    # And nothing may be sent to the debtor now.
    try:
        gate(db_session, case, "email", utcnow())
    except ContactRefused as refused:
        assert "dispute_hold" in str(refused) or "disputed" in str(refused).lower()
    else:
        raise AssertionError("an email was allowed during the dispute hold")


def test_a_dispute_after_the_period_is_answered_but_not_held(
    db_session, signed_in, make_client, make_case
):
    case = _active(db_session, make_case(make_client()), period_ends=dt.date(2026, 11, 1))
    response = _dispute(signed_in(case), case, "Wrong amount.")
    assert response.status_code == 200
    assert "collection continues while we look into it" in response.get_data(as_text=True)
    db_session.refresh(case)
    assert case.status == "active"


def test_a_refused_upload_or_an_empty_reason_changes_nothing(
    db_session, signed_in, make_client, make_case, monkeypatch
):
    # The 10 MB limit, scaled down so the test client need not build a 10 MB body.
    monkeypatch.setattr("shell.document_store.MAX_UPLOAD_BYTES", 4096)
    case = _active(db_session, make_case(make_client()))
    client = signed_in(case)
    for reason, files, message in (
        ("Not mine.", [("notes.txt", b"plain text")], "must be PDF, PNG or JPEG"),
        ("Not mine.", [("big.pdf", b"%PDF-" + b"0" * 4096)], "at most 10 MB"),
        ("Not mine.", [(f"f{i}.pdf", PDF) for i in range(6)], "at most 5 files"),
        ("", [], "Tell us what you dispute."),
    ):
        response = _dispute(client, case, reason, files)
        assert response.status_code == 400
        assert message in response.get_data(as_text=True)
    db_session.refresh(case)
    assert case.status == "active"
    assert db_session.scalar(sa.select(sa.func.count(Dispute.id))) == 0
    assert db_session.scalar(sa.select(sa.func.count(Document.id))) == 0


def _save_preferences(client, **fields):
    data = {"csrf_token": csrf_from(client.get("/portal/preferences")), "language": "en"}
    data.update(fields)
    return client.post("/portal/preferences", data=data)


def test_preferences_opt_out_of_email_and_set_inconvenient_times(
    db_session, signed_in, make_client, make_case
):
    case = _active(db_session, make_case(make_client()))
    debtor = case.debtor
    phone = debtor.phones[0]
    client = signed_in(case)
    # Texts yes (consent), email no, evenings inconvenient on weekdays.
    response = _save_preferences(
        client,
        **{f"text-{phone.id}": "y"},
        busy_days=["0", "1", "2", "3", "4"],
        busy_start="18:00",
        busy_end="21:00",
    )
    assert response.status_code == 302
    db_session.refresh(debtor)
    assert debtor.emails[0].opted_out_at is not None
    assert phone.text_consent and phone.texts_opted_out_at is None
    assert debtor.inconvenient_times == [
        {"days": [0, 1, 2, 3, 4], "start": "18:00", "end": "21:00"}
    ]
    facts = debtor_facts(case)
    assert "email" in facts.opted_out and "text" not in facts.opted_out
    assert len(facts.inconvenient) == 1

    # Email back on; the times stay unless cleared.
    _save_preferences(client, **{f"email-{debtor.emails[0].id}": "y"})
    db_session.refresh(debtor)
    assert debtor.emails[0].opted_out_at is None and len(debtor.inconvenient_times) == 1
    _save_preferences(client, clear_times="y")
    db_session.refresh(debtor)
    assert debtor.inconvenient_times == []


def test_bad_times_are_refused_and_change_nothing(db_session, signed_in, make_client, make_case):
    case = _active(db_session, make_case(make_client()))
    debtor = case.debtor
    client = signed_in(case)
    for fields, message in (
        ({"busy_days": ["0"], "busy_start": "25:00", "busy_end": "21:00"}, "like 18:30"),
        ({"busy_days": ["0"], "busy_start": "21:00", "busy_end": "18:00"}, "before the end"),
        ({"busy_start": "18:00", "busy_end": "21:00"}, "at least one day"),
    ):
        response = _save_preferences(client, **fields)
        assert response.status_code == 400
        assert message in response.get_data(as_text=True)
    db_session.refresh(debtor)
    assert debtor.inconvenient_times == [] and debtor.emails[0].opted_out_at is None


def test_spanish_is_chosen_remembered_and_kept_to_the_portal(
    db_session, client, signed_in, make_client, make_case, login, make_user
):
    case = _active(db_session, make_case(make_client()))
    client = signed_in(case)
    assert "Your accounts" in client.get("/portal/").get_data(as_text=True)
    response = client.post(
        "/portal/language",
        data={"lang": "es", "next": "/portal/", "csrf_token": csrf_from(client.get("/portal/"))},
    )
    assert response.status_code == 302
    page = client.get("/portal/").get_data(as_text=True)
    assert '<html lang="es">' in page and "Sus cuentas" in page and "Saldo" in page
    case_page = client.get(f"/portal/cases/{case.reference}").get_data(as_text=True)
    assert "Por qué debe esta cantidad" in case_page
    db_session.refresh(case.debtor)
    assert case.debtor.language == "es"
    # Without CSRF, or for a language we do not have: refused.
    assert client.post("/portal/language", data={"lang": "es"}).status_code == 400
    token = csrf_from(client.get("/portal/"))
    assert (
        client.post("/portal/language", data={"lang": "fr", "csrf_token": token}).status_code == 400
    )


def test_a_wrong_number_is_not_offered_for_texts_in_the_preferences(
    db_session, signed_in, make_client, make_case
):
    case = _active(db_session, make_case(make_client()))
    phone = case.debtor.phones[0]
    phone.wrong_number_at = dt.datetime(2026, 11, 20, 15, 0, tzinfo=dt.UTC)
    db_session.flush()
    client = signed_in(case)
    page = client.get("/portal/preferences").get_data(as_text=True)
    assert phone.number not in page and f"text-{phone.id}" not in page
    # Posting it anyway gives it no consent.
    response = _save_preferences(client, **{f"text-{phone.id}": "y"})
    assert response.status_code == 302
    db_session.refresh(phone)
    assert not phone.text_consent
