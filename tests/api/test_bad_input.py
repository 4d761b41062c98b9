"""Bad input to the JSON API gets a clear 4xx, never a 500, and changes nothing: NUL bytes
(refused for the whole app by shell/input_guard.py), contact fields of the wrong type,
times outside the calendar, JSON nested too deep, and an as_of outside the last 30 days."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa
import time_machine

import api.base as api_base
from api.json_errors import ApiError
from cases.audit import AuditEvent
from cases.case import Case
from cases.contacts import Contact
from cases.referrals import ReferralBatch
from payments.posting import LedgerEntry
from tests.cases.test_referrals import HEADER as REFERRAL_HEADER
from tests.conftest import csrf_from

NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)  # 10:00 Monday in New York
DEEP = b"[" * 100_000

PAYMENT = {
    "amount_cents": 12_345,
    "received_at": "2026-11-20",
    "method": "check",
    "external_id": "CHK-1001",
}
CONTACT = {
    "channel": "call",
    "direction": "outbound",
    "outcome": "no_answer",
    "occurred_at": "2026-11-23T09:30:00-05:00",
    "note": "left no message",
}
REFERRAL_ROW = dict(
    zip(
        REFERRAL_HEADER.split(","),
        [
            "J-1",
            "consumer",
            "Ann",
            "Lee",
            "",
            "",
            "",
            "1 A St",
            "New York",
            "NY",
            "10001",
            "250.00",
            "",
            "",
            "2026-01-01",
            "",
        ],
        strict=True,
    )
)


def counts(db_session) -> dict[str, int]:
    """What a refused request must not change."""
    return {
        model.__name__: db_session.scalar(sa.select(sa.func.count()).select_from(model))
        for model in (Case, Contact, LedgerEntry, ReferralBatch, AuditEvent)
    }


def refused(response, status: int, error: str, *words: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    assert response.json["error"] == error
    message = response.json["message"]
    assert message and all(word in message for word in words), message


@pytest.fixture
def case(make_client, make_case):
    return make_case(make_client(), principal=50_000, status="active")


@pytest.fixture
def staff(make_user, api_token):
    return api_token(make_user("collector"))


# --- 1. NUL bytes ------------------------------------------------------------------------


@pytest.mark.parametrize("direct", [False, True], ids=["agency token", "client token"])
def test_a_nul_byte_in_a_payments_external_id_is_refused(
    client, db_session, case, make_user, api_token, direct
):
    headers = api_token(make_user("client", client=case.client) if direct else make_user())
    before = counts(db_session)
    for external_id in ("CHK\u00001001", "\u0000", "CHK-1001\u0000"):
        response = client.post(
            f"/api/v1/cases/{case.reference}/payments",
            json={**PAYMENT, "external_id": external_id},
            headers=headers,
        )
        refused(response, 400, "invalid_input", "NUL", "external_id")
        assert response.json["details"] == {"in": "JSON body", "field": "external_id"}
    assert counts(db_session) == before


def test_a_nul_byte_in_a_contact_note_is_refused(client, db_session, case, staff):
    before = counts(db_session)
    with time_machine.travel(NOW, tick=False):
        response = client.post(
            f"/api/v1/cases/{case.reference}/contacts",
            json={**CONTACT, "note": "called\u0000back"},
            headers=staff,
        )
    refused(response, 400, "invalid_input", "NUL", "note")
    assert counts(db_session) == before


def test_nul_bytes_are_refused_in_keys_nested_values_queries_and_paths(
    client, db_session, case, staff, make_user, api_token
):
    client_headers = api_token(make_user("client", client=case.client))
    before = counts(db_session)
    url = f"/api/v1/cases/{case.reference}"
    for method, path, kwargs in (
        ("post", f"{url}/payments", {"json": {**PAYMENT, "memo\u0000": "x"}}),
        ("post", f"{url}/payments", {"json": {**PAYMENT, "extra": [{"a": ["b\u0000"]}]}}),
        ("post", f"{url}/payments", {"data": b'{"external_id": "a\\u0000"}'}),
        ("get", f"{url}/contact-window?channel=call%00", {}),
        ("get", f"{url}/contact-window?at%00=1", {}),
        ("get", f"{url}%00", {}),
        ("get", "/api/v1/statements?month=2026-10&client=AC%00ME", {}),
    ):
        kwargs.setdefault("content_type", "application/json")
        response = getattr(client, method)(path, headers=staff, **kwargs)
        refused(response, 400, "invalid_input", "NUL")
    response = client.post(
        "/api/v1/referrals",
        json={"rows": [{**REFERRAL_ROW, "last_name": "Le\u0000e"}]},
        headers=client_headers,
    )
    refused(response, 400, "invalid_input", "NUL")
    assert counts(db_session) == before


def test_a_nul_in_a_json_body_sent_in_utf_16_is_refused_too(client, db_session, case, staff):
    """The guard reads a body's bytes before deciding to parse it: UTF-16 hides the escape
    from a byte search, and its NUL bytes make the guard parse the body all the same."""
    before = counts(db_session)
    body = json.dumps({**PAYMENT, "external_id": "CHK\u00001001"}).encode("utf-16")
    response = client.post(
        f"/api/v1/cases/{case.reference}/payments",
        data=body,
        content_type="application/json",
        headers=staff,
    )
    refused(response, 400, "invalid_input", "NUL", "external_id")
    assert counts(db_session) == before


def test_a_nul_byte_outside_the_api_gets_the_html_error_page(client, db_session, case):
    before = counts(db_session)
    response = client.get("/login?next=%00")
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "NUL" in page and "Something went wrong" not in page
    # A form field with a good CSRF token (the sign-in would look the reference up).
    token = csrf_from(client.get("/portal/login"))
    response = client.post(
        "/portal/login",
        data={"reference": f"{case.reference}\x00", "name": "Garcia", "postal_code": "10001"}
        | {"csrf_token": token},
    )
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert "NUL" in response.get_data(as_text=True)
    assert counts(db_session) == before


def test_text_without_nul_bytes_still_passes(client, db_session, case, staff):
    response = client.post(
        f"/api/v1/cases/{case.reference}/payments",
        json={**PAYMENT, "external_id": "CHK-1001 \\u0000 ünïcode"},
        headers=staff,
    )
    assert response.status_code == 201, response.json
    assert db_session.scalar(
        sa.select(LedgerEntry.external_id).where(LedgerEntry.kind == "payment")
    ).endswith("\\u0000 ünïcode")


# --- 2. contact fields of the wrong type -----------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("channel", 5),
        ("channel", ["call"]),
        ("direction", True),
        ("occurred_at", []),
        ("occurred_at", 1_764_000_000),
        ("outcome", {}),
        ("outcome", 3),
        ("note", 12),
        ("note", ["a"]),
    ],
)
def test_contact_fields_of_the_wrong_type_are_a_422_naming_the_field(
    client, db_session, case, staff, field, value
):
    before = counts(db_session)
    with time_machine.travel(NOW, tick=False):
        response = client.post(
            f"/api/v1/cases/{case.reference}/contacts",
            json={**CONTACT, field: value},
            headers=staff,
        )
    refused(response, 422, f"invalid_{field}", field)
    assert response.json["details"] == {"field": field}
    assert counts(db_session) == before


def test_a_contact_with_every_field_right_is_still_recorded(client, db_session, case, staff):
    with time_machine.travel(NOW, tick=False):
        response = client.post(
            f"/api/v1/cases/{case.reference}/contacts",
            json={**CONTACT, "outcome": None, "channel": "email", "note": None},
            headers=staff,
        )
    assert response.status_code == 201, response.json
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Contact)) == 1


# --- 3. times outside the calendar -------------------------------------------------------------


@pytest.mark.parametrize(
    "at",
    [
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00%2B14:00",
        "9999-12-31T23:59:59Z",
        "9999-12-31T23:59:59-12:00",
        "1969-12-31T23:59:59Z",
        "2100-01-01T00:00:00Z",
    ],
)
def test_a_contact_window_at_outside_the_supported_years_is_a_422(
    client, db_session, case, staff, at
):
    before = counts(db_session)
    response = client.get(
        f"/api/v1/cases/{case.reference}/contact-window?channel=call&at={at}", headers=staff
    )
    refused(response, 422, "invalid_at", "1970", "2100")
    assert counts(db_session) == before


def test_a_contact_window_at_the_edges_of_the_supported_years_answers(client, case, staff):
    url = f"/api/v1/cases/{case.reference}/contact-window?channel=call&at="
    for at in ("1970-01-01T00:00:00Z", "2099-12-31T23:59:59Z"):
        response = client.get(url + at, headers=staff)
        assert response.status_code == 200, response.json
        assert isinstance(response.json["allowed"], bool)


def test_a_contact_that_occurred_in_year_one_is_a_422(client, db_session, case, staff):
    before = counts(db_session)
    response = client.post(
        f"/api/v1/cases/{case.reference}/contacts",
        json={**CONTACT, "occurred_at": "0001-01-01T00:00:00Z"},
        headers=staff,
    )
    refused(response, 422, "invalid_occurred_at", "occurred_at")
    assert counts(db_session) == before


# --- 4. JSON nested too deep ---------------------------------------------------------------------


def test_json_nested_too_deep_is_a_400_on_every_json_endpoint(
    client, db_session, case, staff, make_user, api_token
):
    client_headers = api_token(make_user("client", client=case.client))
    before = counts(db_session)
    for path, headers in (
        ("/api/v1/referrals", client_headers),
        ("/api/v1/referrals?as_of=2026-11-23&dry_run=1", client_headers),
        (f"/api/v1/cases/{case.reference}/payments", staff),
        (f"/api/v1/cases/{case.reference}/payments", client_headers),
        (f"/api/v1/cases/{case.reference}/contacts", staff),
    ):
        response = client.post(path, data=DEEP, content_type="application/json", headers=headers)
        refused(response, 400, "invalid_json", "nested")
    assert counts(db_session) == before


def test_json_nested_too_deep_outside_the_api_gets_the_html_error_page(client):
    response = client.get("/login", data=DEEP, content_type="application/json")
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "nested too deeply" in page and "Something went wrong" not in page


def test_the_apis_json_reader_refuses_json_nested_too_deep(app):
    """The API's own reader refuses it too, whatever runs before the view."""
    with app.test_request_context(
        "/api/v1/referrals", method="POST", data=DEEP, content_type="application/json"
    ):
        with pytest.raises(ApiError) as refusal:
            api_base.json_body()
    assert (refusal.value.status, refusal.value.error) == (400, "invalid_json")
    with app.test_request_context(
        "/api/v1/referrals", method="POST", data=b"[[1]]", content_type="application/json"
    ):
        assert api_base.json_body() == [[1]]


# --- 5. as_of: between 30 days ago and the agency's today ----------------------------------------


@pytest.mark.parametrize(
    "as_of",
    [
        "2026-11-24",  # tomorrow
        "2027-01-01",
        "9999-12-31",
        "2026-10-23",  # 31 days ago
        "2000-01-01",
        "0001-01-01",
        "23/11/2026",
        "yesterday",
        "2026-02-30",
    ],
)
def test_as_of_outside_the_last_30_days_is_a_422_and_imports_nothing(
    client, db_session, make_client, make_user, api_token, as_of
):
    headers = api_token(make_user("client", client=make_client()))
    before = counts(db_session)
    for kwargs in (
        {"query_string": {"as_of": as_of}, "json": [REFERRAL_ROW]},
        {"json": {"as_of": as_of, "rows": [REFERRAL_ROW]}},
        {
            "query_string": {"as_of": as_of},
            "data": f"{REFERRAL_HEADER}\n{','.join(REFERRAL_ROW.values())}\n",
            "content_type": "text/csv",
        },
        {"query_string": {"as_of": as_of, "dry_run": "1"}, "json": [REFERRAL_ROW]},
    ):
        response = client.post("/api/v1/referrals", headers=headers, **kwargs)
        refused(response, 422, "invalid_as_of", "as_of", "2026-10-24", "2026-11-23")
    assert counts(db_session) == before


@pytest.mark.parametrize("as_of", [5, True, [], {}, ["2026-11-23"]])
def test_as_of_that_is_not_text_is_a_422(
    client, db_session, make_client, make_user, api_token, as_of
):
    headers = api_token(make_user("client", client=make_client()))
    before = counts(db_session)
    response = client.post(
        "/api/v1/referrals", json={"as_of": as_of, "rows": [REFERRAL_ROW]}, headers=headers
    )
    refused(response, 422, "invalid_as_of", "as_of")
    assert counts(db_session) == before


def test_as_of_is_the_agencys_today_in_new_york_not_utc(
    client, db_session, make_client, make_user, api_token
):
    headers = api_token(make_user("client", client=make_client()))
    # 02:00 UTC on the 24th is still the 23rd in New York.
    with time_machine.travel(dt.datetime(2026, 11, 24, 2, 0, tzinfo=dt.UTC), tick=False):
        response = client.post(
            "/api/v1/referrals?as_of=2026-11-24&dry_run=1", json=[REFERRAL_ROW], headers=headers
        )
        refused(response, 422, "invalid_as_of", "2026-11-23")
        response = client.post(
            "/api/v1/referrals?as_of=2026-11-23&dry_run=1", json=[REFERRAL_ROW], headers=headers
        )
        assert response.status_code == 200, response.json


@pytest.mark.parametrize("as_of", ["2026-10-24", "2026-11-01", "2026-11-23", "", None])
def test_as_of_from_30_days_ago_to_today_imports(
    client, db_session, make_client, make_user, api_token, as_of
):
    headers = api_token(make_user("client", client=make_client()))
    query = {} if as_of is None else {"as_of": as_of}
    response = client.post(
        "/api/v1/referrals", query_string=query, json=[REFERRAL_ROW], headers=headers
    )
    assert response.status_code == 201, response.json
    assert response.json["accepted"] == 1
    referred_on = db_session.scalar(sa.select(Case.referred_on))
    assert referred_on == dt.date.fromisoformat(as_of or "2026-11-23")


def test_openapi_describes_what_the_api_accepts(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    as_of = [p for p in paths["/referrals"]["post"]["parameters"] if p["name"] == "as_of"][0]
    assert "30 days" in as_of["description"]
    window = paths["/cases/{reference}/contact-window"]["get"]
    at = [p for p in window["parameters"] if p["name"] == "at"][0]
    assert "1970" in at["description"] and "2100" in at["description"]
    for path, method in (
        ("/referrals", "post"),
        ("/cases/{reference}/contacts", "post"),
        ("/cases/{reference}/payments", "post"),
    ):
        assert "400" in paths[path][method]["responses"], path


def test_dry_run_in_a_json_body_is_a_boolean(client, make_user, make_client, api_token, db_session):
    acme = make_client("ACME")
    headers = api_token(make_user("client", client=acme))
    before = db_session.scalar(sa.select(sa.func.count()).select_from(Case))
    response = client.post(
        "/api/v1/referrals", json={"rows": [], "dry_run": "false"}, headers=headers
    )
    assert response.status_code == 422 and response.json["error"] == "invalid_dry_run"
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Case)) == before
