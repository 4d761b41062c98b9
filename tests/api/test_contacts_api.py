"""The dialer API: contact-window and contacts, as SPEC §10 says."""

import datetime as dt

import sqlalchemy as sa
import time_machine

from cases.contacts import ComplianceAlert, Contact

NOW = dt.datetime(2026, 11, 24, 3, 0, tzinfo=dt.UTC)  # 22:00 Monday in New York


def test_contact_window_answers_allowed_reasons_and_next(
    client, make_user, make_client, make_case, api_token
):
    case = make_case(make_client(), status="active")
    headers = api_token(make_user("collector"))
    url = f"/api/v1/cases/{case.reference}/contact-window"
    with time_machine.travel(NOW, tick=False):
        body = client.get(url + "?channel=call&at=2026-11-23T21:30:00-05:00", headers=headers).json
        assert body["allowed"] is False
        assert body["reasons"] and "21:30" in body["reasons"][0]
        assert body["next_allowed_at"] == "2026-11-24T13:00:00Z"  # 08:00 New York

        body = client.get(url + "?channel=email&at=2026-11-23T15:00:00Z", headers=headers).json
        assert body == {"allowed": True, "reasons": [], "next_allowed_at": body["next_allowed_at"]}
        assert body["next_allowed_at"] in (None, "2026-11-23T15:00:00Z")

        # Without `at`, the answer is for now (22:00 in New York).
        assert client.get(url, headers=headers).json["allowed"] is False


def test_contact_window_refuses_bad_input(client, make_user, make_client, make_case, api_token):
    case = make_case(make_client(), status="active")
    headers = api_token(make_user("collector"))
    url = f"/api/v1/cases/{case.reference}/contact-window"
    for query, error in (
        ("?channel=fax", "invalid_channel"),
        ("?at=tomorrow", "invalid_datetime"),
        ("?at=2026-11-23T10:00:00", "invalid_datetime"),
    ):
        response = client.get(url + query, headers=headers)
        assert response.status_code == 422 and response.json["error"] == error
    assert (
        client.get("/api/v1/cases/RC-0000-00000/contact-window", headers=headers).status_code == 404
    )


def test_posting_contacts_records_them_with_their_violations(
    client, make_user, make_client, make_case, api_token, db_session
):
    case = make_case(make_client(), status="active")
    headers = api_token(make_user("collector"))
    url = f"/api/v1/cases/{case.reference}/contacts"
    with time_machine.travel(NOW, tick=False):
        ok = client.post(
            url,
            headers=headers,
            json={
                "channel": "call",
                "direction": "outbound",
                "outcome": "no_answer",
                "occurred_at": "2026-11-23T14:00:00-05:00",
                "note": "dialer",
            },
        )
        assert ok.status_code == 201
        assert ok.json["violations"] == [] and isinstance(ok.json["id"], int)

        late = client.post(
            url,
            headers=headers,
            json={
                "channel": "call",
                "direction": "outbound",
                "outcome": "voicemail",
                "occurred_at": "2026-11-23T21:45:00-05:00",
            },
        )
        assert late.status_code == 201
        assert [v["rule"] for v in late.json["violations"]] == ["time_window"]

        inbound = client.post(
            url,
            headers=headers,
            json={
                "channel": "call",
                "direction": "inbound",
                "outcome": "conversation",
                "occurred_at": "2026-11-23T21:50:00-05:00",
            },
        )
        assert inbound.json["violations"] == []
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Contact)) == 3
    assert db_session.scalar(sa.select(sa.func.count()).select_from(ComplianceAlert)) == 1


def test_bad_contacts_are_refused_and_change_nothing(
    client, make_user, make_client, make_case, api_token, db_session
):
    case = make_case(make_client(), status="active")
    headers = api_token(make_user("collector"))
    url = f"/api/v1/cases/{case.reference}/contacts"
    good = {
        "channel": "call",
        "direction": "outbound",
        "outcome": "busy",
        "occurred_at": "2026-11-23T14:00:00Z",
    }
    with time_machine.travel(NOW, tick=False):
        for change, message in (
            ({"channel": "pigeon"}, "channel must be one of"),
            ({"direction": "sideways"}, "direction must be one of"),
            ({"outcome": None}, "a call needs an outcome"),
            ({"channel": "email"}, "only calls have an outcome"),
            ({"occurred_at": "2027-01-01T00:00:00Z"}, "in the future"),
            ({"occurred_at": None}, "occurred_at is required"),
            ({"note": ["x"]}, "note must be text"),
        ):
            response = client.post(url, headers=headers, json={**good, **change})
            assert response.status_code == 422, change
            assert message in response.json["message"], (change, response.json)
        assert (
            client.post(url, headers=headers, data="x", content_type="application/json").status_code
            == 400
        )
        client_token = api_token(make_user("client", client=case.client))
        assert client.post(url, headers=client_token, json=good).status_code == 403
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Contact)) == 0


def test_a_dialers_wrong_number_marks_the_phone_and_the_window_then_refuses_it(
    client, make_user, make_client, make_case, api_token, db_session
):
    case = make_case(make_client(), status="active", phone="+12125550100")
    headers = api_token(make_user("collector"))
    base = f"/api/v1/cases/{case.reference}"
    at = "2026-11-23T15:00:00Z"  # 10:00 in New York
    with time_machine.travel(dt.datetime(2026, 11, 23, 15, 5, tzinfo=dt.UTC), tick=False):
        window = client.get(
            f"{base}/contact-window?channel=call&at={at}&phone=%2B12125550100", headers=headers
        ).json
        assert window["allowed"] is True
        posted = client.post(
            f"{base}/contacts",
            headers=headers,
            json={
                "channel": "call",
                "direction": "outbound",
                "outcome": "wrong_number",
                "occurred_at": at,
                "phone": "+12125550100",
            },
        )
        assert posted.status_code == 201 and posted.json["violations"] == []
        window = client.get(
            f"{base}/contact-window?channel=call&phone=%2B12125550100", headers=headers
        ).json
    assert window["allowed"] is False and window["next_allowed_at"] is None
    assert "not the debtor's number" in window["reasons"][0]
    db_session.refresh(case.debtor.phones[0])
    assert case.debtor.phones[0].wrong_number_at is not None
    contact = db_session.get(Contact, posted.json["id"])
    assert contact.target == "+12125550100"


def test_a_phone_that_is_not_text_or_too_long_is_refused(
    client, make_user, make_client, make_case, api_token, db_session
):
    case = make_case(make_client(), status="active")
    headers = api_token(make_user("collector"))
    base = f"/api/v1/cases/{case.reference}"
    response = client.get(f"{base}/contact-window?phone={'9' * 31}", headers=headers)
    assert response.status_code == 422 and response.json["error"] == "invalid_phone"
    before = db_session.scalar(sa.select(sa.func.count(Contact.id)))
    response = client.post(
        f"{base}/contacts",
        headers=headers,
        json={
            "channel": "call",
            "direction": "outbound",
            "outcome": "no_answer",
            "occurred_at": "2026-11-23T08:00:00Z",
            "phone": 2125550100,
        },
    )
    assert response.status_code == 422 and response.json["error"] == "invalid_phone"
    assert db_session.scalar(sa.select(sa.func.count(Contact.id))) == before


def test_the_case_says_its_statute_of_limitations(
    client, make_user, make_client, make_case, api_token
):
    headers = api_token(make_user("collector"))
    acme = make_client()
    barred = make_case(acme, state="TX", postal_code="75201", days_past_due=365 * 6)
    body = client.get(f"/api/v1/cases/{barred.reference}", headers=headers).json
    assert body["debt_kind"] is None
    assert body["limitation"] == {
        "state": "TX",
        "kind": "written_contract",
        "years": 4,
        "runs_from": barred.due_date.isoformat(),
        "expires_on": barred.due_date.replace(year=barred.due_date.year + 4).isoformat(),
        "time_barred": True,
        "source": "Tex. Civ. Prac. & Rem. Code §§ 16.004, 16.051",
    }
    nowhere = make_case(acme, state="PR", postal_code="00901", account_number="P-1")
    assert (
        client.get(f"/api/v1/cases/{nowhere.reference}", headers=headers).json["limitation"] is None
    )
