"""POST /api/v1/cases/{reference}/payments as SPEC §10 says."""

import sqlalchemy as sa

from payments.posting import LedgerEntry

GOOD = {
    "amount_cents": 12_345,
    "received_at": "2026-11-20",
    "method": "check",
    "external_id": "CHK-1001",
}


def test_an_agency_token_posts_a_payment_once(
    client, make_user, make_client, make_case, api_token, db_session
):
    case = make_case(make_client(), principal=50_000, days_past_due=200)
    headers = api_token(make_user("collector"))
    url = f"/api/v1/cases/{case.reference}/payments"
    response = client.post(url, json=GOOD, headers=headers)
    assert response.status_code == 201, response.json
    assert response.json["kind"] == "payment"
    assert response.json["fee_cents"] == 4_074  # 33% of 123.45, half-up
    assert response.json["balance_cents"] == 50_000 - 12_345
    again = client.post(url, json=GOOD, headers=headers)
    assert again.status_code == 409 and again.json["error"] == "duplicate"
    assert (
        db_session.scalar(
            sa.select(sa.func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "payment")
        )
        == 1
    )


def test_a_client_token_posts_a_direct_payment_to_its_own_cases_only(
    client, make_user, make_client, make_case, api_token, db_session
):
    acme, other = make_client("ACME"), make_client("OTHER", "Other")
    mine, theirs = make_case(acme, principal=50_000), make_case(other, principal=50_000)
    headers = api_token(make_user("client", client=acme))
    response = client.post(f"/api/v1/cases/{mine.reference}/payments", json=GOOD, headers=headers)
    assert response.status_code == 201
    assert response.json["kind"] == "direct_payment"
    assert (
        client.post(
            f"/api/v1/cases/{theirs.reference}/payments", json=GOOD, headers=headers
        ).status_code
        == 404
    )
    # Another client's identical check number is its own.
    other_headers = api_token(make_user("client", client=other))
    assert (
        client.post(
            f"/api/v1/cases/{theirs.reference}/payments", json=GOOD, headers=other_headers
        ).status_code
        == 201
    )


def test_bad_payments_are_refused_with_clear_json(
    client, make_user, make_client, make_case, api_token, db_session
):
    case = make_case(make_client(), principal=10_000)
    headers = api_token(make_user("collector"))
    url = f"/api/v1/cases/{case.reference}/payments"
    for change, status, error in (
        ({"amount_cents": "100"}, 422, "invalid_amount"),
        ({"amount_cents": 0}, 422, "invalid_amount"),
        ({"amount_cents": 1.5}, 422, "invalid_amount"),
        ({"amount_cents": 10_001}, 422, "invalid_payment"),
        ({"received_at": "20/11/2026"}, 422, "invalid_received_at"),
        ({"received_at": "2027-01-01"}, 422, "invalid_received_at"),
        ({"method": "bitcoin"}, 422, "invalid_method"),
        ({"external_id": ""}, 422, "invalid_external_id"),
    ):
        response = client.post(url, json={**GOOD, **change}, headers=headers)
        assert response.status_code == status, change
        assert response.json["error"] == error, (change, response.json)
    assert (
        client.post(url, data="nope", headers=headers, content_type="application/json").status_code
        == 400
    )
    assert (
        db_session.scalar(
            sa.select(sa.func.count())
            .select_from(LedgerEntry)
            .where(LedgerEntry.kind != "placement")
        )
        == 0
    )


def payments_on(db_session, case) -> list[tuple[str, int, str]]:
    return [
        (e.kind, e.amount_cents, e.received_at.isoformat())
        for e in db_session.scalars(
            sa.select(LedgerEntry)
            .where(LedgerEntry.case_id == case.id, LedgerEntry.kind != "placement")
            .order_by(LedgerEntry.id)
        )
    ]


def test_a_payment_dated_before_the_referral_is_refused(
    client, make_user, make_client, make_case, api_token, db_session
):
    case = make_case(make_client(), principal=50_000)  # referred on 2026-11-02
    headers = api_token(make_user("collector"))
    url = f"/api/v1/cases/{case.reference}/payments"
    response = client.post(url, json={**GOOD, "received_at": "2026-11-01"}, headers=headers)
    assert response.status_code == 422
    assert response.json["error"] == "invalid_received_at"
    assert "before the case was referred (2026-11-02)" in response.json["message"]
    assert payments_on(db_session, case) == []
    # The same check dated on the referral day is posted: the refusal left nothing behind.
    response = client.post(url, json={**GOOD, "received_at": "2026-11-02"}, headers=headers)
    assert response.status_code == 201, response.json
    assert payments_on(db_session, case) == [("payment", -12_345, "2026-11-02")]


def test_a_client_reports_a_direct_payment_from_before_referral_but_not_before_itemisation(
    client, make_user, make_client, make_case, api_token, db_session
):
    acme = make_client("ACME")
    case = make_case(acme, principal=50_000, days_past_due=120)  # itemised on 2026-07-05
    headers = api_token(make_user("client", client=acme))
    url = f"/api/v1/cases/{case.reference}/payments"
    early = client.post(
        url, json={**GOOD, "received_at": "2026-07-04", "external_id": "D-1"}, headers=headers
    )
    assert early.status_code == 422 and early.json["error"] == "invalid_received_at"
    assert "before the itemisation date (2026-07-05)" in early.json["message"]
    assert payments_on(db_session, case) == []
    before_referral = client.post(
        url, json={**GOOD, "received_at": "2026-10-15", "external_id": "D-2"}, headers=headers
    )
    assert before_referral.status_code == 201, before_referral.json
    assert before_referral.json["kind"] == "direct_payment"
    assert payments_on(db_session, case) == [("direct_payment", -12_345, "2026-10-15")]
