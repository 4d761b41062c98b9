"""GET /api/v1/statements?month=YYYY-MM: the summary and links for a client token, its own
client's only; JSON errors for a bad month and for none issued."""

import csv
import datetime as dt
import io

from cases import audit
from correspondence.statement_mail import issue_statement
from payments.posting import post_payment
from payments.statements import Month

ACTOR = audit.Actor(None, "test")
REFERRED = dt.date(2026, 10, 1)  # before the October payments: money moves from referral on


def october_case(make_case, client):
    return make_case(client, principal=50_000, status="active", referred_on=REFERRED)


def issued(db_session, client, case, cents):
    post_payment(
        db_session,
        case,
        cents,
        external_id=f"p-{client.code}",
        received_at=dt.date(2026, 10, 15),
        method="check",
        actor=ACTOR,
    )
    return issue_statement(db_session, client, Month(2026, 10), actor=ACTOR).statement


def test_a_client_token_gets_its_statement_and_files(
    client, db_session, make_client, make_case, make_user, api_token
):
    acme, beta = make_client("ACME"), make_client("BETA", "Beta")
    issued(db_session, acme, october_case(make_case, acme), 10_001)
    theirs = issued(db_session, beta, october_case(make_case, beta), 20_000)
    headers = api_token(make_user("client", client=acme))

    response = client.get("/api/v1/statements?month=2026-10", headers=headers)
    assert response.status_code == 200
    body = response.json
    assert {k: body[k] for k in body if k not in ("pdf", "csv", "issued_at")} == {
        "client": "ACME",
        "month": "2026-10",
        "number": "ST-ACME-2026-10",
        "collected_by_agency": 10_001,
        "collected_by_client": 0,
        "fees": 2_500,  # 2500.25 rounds down
        "net_remittance": 7_501,
        "late_adjustments": 0,
    }
    pdf = client.get(body["pdf"], headers=headers)
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    rows = list(csv.DictReader(io.StringIO(client.get(body["csv"], headers=headers).text)))
    assert [(r["amount"], r["fee"]) for r in rows] == [("100.01", "25.00")]

    # Tenancy: the client parameter is ignored for a client token.
    other = client.get("/api/v1/statements/pdf?month=2026-10&client=BETA", headers=headers)
    assert other.status_code == 200 and other.data != theirs.pdf
    summary = client.get("/api/v1/statements?month=2026-10&client=BETA", headers=headers).json
    assert summary["client"] == "ACME"


def test_errors_are_json(client, db_session, make_client, make_case, make_user, api_token):
    acme = make_client("ACME")
    issued(db_session, acme, october_case(make_case, acme), 10_000)
    headers = api_token(make_user("client", client=acme))
    for query in ("", "?month=", "?month=2026-13", "?month=Oct"):
        for path in ("/api/v1/statements", "/api/v1/statements/csv"):
            response = client.get(path + query, headers=headers)
            assert response.status_code == 400, (path, query)
            assert response.json["error"] == "invalid_month"
            assert "YYYY-MM" in response.json["message"]
    response = client.get("/api/v1/statements?month=2026-09", headers=headers)
    assert response.status_code == 404 and response.json["error"] == "not_found"
    assert client.get("/api/v1/statements?month=2026-10").status_code == 401


def test_agency_tokens(client, db_session, make_client, make_case, make_user, api_token):
    acme = make_client("ACME")
    issued(db_session, acme, october_case(make_case, acme), 10_000)
    collector = api_token(make_user("collector"))
    assert client.get("/api/v1/statements?month=2026-10", headers=collector).status_code == 403
    admin = api_token(make_user("admin"))
    response = client.get("/api/v1/statements?month=2026-10", headers=admin)
    assert response.status_code == 400 and response.json["error"] == "invalid_client"
    response = client.get("/api/v1/statements?month=2026-10&client=acme", headers=admin)
    assert response.status_code == 200 and response.json["number"] == "ST-ACME-2026-10"
    assert client.get(response.json["csv"], headers=admin).status_code == 200
