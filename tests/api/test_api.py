"""The API skeleton: bearer tokens, JSON errors, tenancy, the OpenAPI document."""

import sqlalchemy as sa

from cases.users import ApiToken


def test_openapi_is_served_without_a_token(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.json["openapi"].startswith("3.")
    assert "/cases/{reference}" in response.json["paths"]


def test_missing_or_bad_tokens_get_401_json(client, make_client, make_case):
    case = make_case(make_client())
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        response = client.get(f"/api/v1/cases/{case.reference}", headers=headers)
        assert response.status_code == 401
        assert response.json["error"] == "unauthorized"
        assert response.json["message"]
        assert "details" in response.json
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_tokens_are_stored_hashed_and_revocable(
    client, db_session, make_user, api_token, make_client, make_case
):
    case = make_case(make_client())
    headers = api_token(make_user("collector"))
    token = headers["Authorization"].split()[1]
    row = db_session.scalar(sa.select(ApiToken))
    assert token not in row.token_hash and len(row.token_hash) == 64
    assert client.get(f"/api/v1/cases/{case.reference}", headers=headers).status_code == 200
    from cases.model import utcnow

    row.revoked_at = utcnow()
    assert client.get(f"/api/v1/cases/{case.reference}", headers=headers).status_code == 401


def test_a_deactivated_users_token_stops_working(
    client, make_user, api_token, make_client, make_case
):
    case = make_case(make_client())
    user = make_user("collector")
    headers = api_token(user)
    user.active = False
    assert client.get(f"/api/v1/cases/{case.reference}", headers=headers).status_code == 401


def test_case_json_and_client_tenancy(client, make_user, api_token, make_client, make_case):
    acme, other = make_client("ACME"), make_client("OTHER", "Other")
    mine = make_case(acme, principal=120_000, interest=3_456, fees=2_500)
    theirs = make_case(other)
    headers = api_token(make_user("client", client=acme))

    response = client.get(f"/api/v1/cases/{mine.reference.lower()}", headers=headers)
    assert response.status_code == 200
    body = response.json
    assert body["reference"] == mine.reference
    assert body["client"] == "ACME"
    assert body["status"] == "new"
    assert body["balance_cents"] == 125_956
    item = body["itemization"]
    # Opened without a referral itemisation: all that was placed was owed on the itemisation
    # date (its due date, taken as the last statement's), nothing charged since (SPEC §5).
    assert item["amount_on_itemization_date_cents"] == 125_956
    assert item["itemization_date_type"] == "last_statement"
    assert item["interest_cents"] == 0 and item["fees_cents"] == 0
    assert item["current_amount_cents"] == body["balance_cents"]
    assert item["adds_up"] is True and item["problem"] is None

    response = client.get(f"/api/v1/cases/{theirs.reference}", headers=headers)
    assert response.status_code == 404
    assert response.json["error"] == "not_found"

    staff = api_token(make_user("collector"))
    assert client.get(f"/api/v1/cases/{theirs.reference}", headers=staff).status_code == 200


def test_unknown_routes_and_methods_answer_json(client, make_user, api_token):
    headers = api_token(make_user("admin"))
    response = client.get("/api/v1/nothing-here", headers=headers)
    assert response.status_code == 404
    assert response.json["error"] == "not_found"
    response = client.delete("/api/v1/openapi.json")
    assert response.status_code == 405
    assert response.is_json


def test_the_openapi_document_lists_every_route_of_the_contract(client, app):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    routes = {
        rule.rule.removeprefix("/api/v1").replace("<reference>", "{reference}")
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1")
    }
    assert routes == set(paths)
