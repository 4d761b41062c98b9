"""`referrals import` and POST /api/v1/referrals give SPEC §10's result shape."""

import json

import sqlalchemy as sa

from cases.case import Case
from tests.cases.test_referrals import GOOD, HEADER


def test_cli_json_result_and_exit_codes(cli, db_session, tmp_path, make_client):
    make_client()
    path = tmp_path / "march.csv"
    path.write_bytes(GOOD)
    result = cli.invoke(
        args=[
            "referrals",
            "import",
            str(path),
            "--client",
            "ACME",
            "--as-of",
            "2026-11-23",
            "--json",
        ]
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert set(body) == {"accepted", "rejected", "cases"}
    assert body["accepted"] == 2 and body["cases"] == ["RC-2611-00001", "RC-2611-00002"]
    assert body["rejected"][0]["row"] == 4 and body["rejected"][0]["column"] == "due_date"

    again = cli.invoke(
        args=[
            "referrals",
            "import",
            str(path),
            "--client",
            "ACME",
            "--as-of",
            "2026-11-23",
            "--json",
        ]
    )
    assert again.exit_code == 0
    assert json.loads(again.stdout)["accepted"] == 0
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Case)) == 2


def test_cli_dry_run_and_human_output(cli, db_session, tmp_path, make_client):
    make_client()
    path = tmp_path / "march.csv"
    path.write_bytes(GOOD)
    result = cli.invoke(
        args=[
            "referrals",
            "import",
            str(path),
            "--client",
            "ACME",
            "--as-of",
            "2026-11-23",
            "--dry-run",
        ]
    )
    assert result.exit_code == 0
    assert "2 row(s) would be imported; 1 rejected." in result.output
    assert "row 4, due_date:" in result.output
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Case)) == 0


def test_cli_refuses_a_bad_file_whole_with_exit_2(cli, db_session, tmp_path, make_client):
    make_client()
    for name, content in (
        ("empty.csv", b""),
        ("nocols.csv", b"name,amount\nx,1\n"),
        ("pic.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 50),
    ):
        path = tmp_path / name
        path.write_bytes(content)
        result = cli.invoke(args=["referrals", "import", str(path), "--client", "ACME", "--json"])
        assert result.exit_code == 2, (name, result.output)
        assert "refused" in result.stderr
        assert result.stdout == ""
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Case)) == 0


def test_api_accepts_csv_and_json_rows(client, make_user, make_client, api_token, db_session):
    acme = make_client()
    headers = api_token(make_user("client", client=acme))
    response = client.post(
        "/api/v1/referrals?as_of=2026-11-23",
        data=GOOD,
        headers={**headers, "Content-Type": "text/csv"},
    )
    assert response.status_code == 201, response.json
    assert response.json["accepted"] == 2
    assert response.json["cases"] == ["RC-2611-00001", "RC-2611-00002"]

    keys = HEADER.split(",")
    row = dict(
        zip(
            keys,
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
    response = client.post(
        "/api/v1/referrals", json={"as_of": "2026-11-23", "rows": [row]}, headers=headers
    )
    assert response.status_code == 201
    assert response.json == {"accepted": 1, "rejected": [], "cases": ["RC-2611-00003"]}

    response = client.post("/api/v1/referrals?as_of=2026-11-23", json=[row], headers=headers)
    assert response.status_code == 200
    assert response.json["accepted"] == 0
    assert "already open as case RC-2611-00003" in response.json["rejected"][0]["reason"]


def test_api_refusals_are_clear_json_and_change_nothing(
    client, make_user, make_client, api_token, db_session
):
    acme = make_client()
    headers = api_token(make_user("client", client=acme))
    cases = [
        ({"data": b"name\nx\n", "content_type": "text/csv"}, 422, "file_refused"),
        ({"json": {"rows": []}}, 422, "invalid_body"),
        ({"json": {"rows": "nope"}}, 422, "invalid_body"),
        ({"data": b"{bad json", "content_type": "application/json"}, 400, "invalid_json"),
        ({"data": b"x", "content_type": "application/pdf"}, 415, "unsupported_media_type"),
        ({"json": {"rows": [{"a": 1}], "as_of": "23/11/2026"}}, 422, "invalid_as_of"),
    ]
    for kwargs, status, error in cases:
        response = client.post("/api/v1/referrals", headers=headers, **kwargs)
        assert response.status_code == status, (kwargs, response.json)
        assert response.json["error"] == error
        assert response.json["message"]
    staff = api_token(make_user("collector"))
    response = client.post(
        "/api/v1/referrals", data=GOOD, headers={**staff, "Content-Type": "text/csv"}
    )
    assert response.status_code == 403
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Case)) == 0


def test_api_rejects_a_row_whose_itemisation_does_not_add_up(
    client, make_user, make_client, api_token, db_session
):
    acme = make_client()
    headers = api_token(make_user("client", client=acme))
    base = {
        "first_name": "Ann",
        "last_name": "Lee",
        "state": "NY",
        "postal_code": "10001",
        "principal": "250.00",
        "due_date": "2026-01-01",
        "itemization_date_type": "charge_off",
        "amount_on_itemization_date": "300.00",
    }
    rows = [
        base | {"account_number": "OK-1", "payments_since_itemization": "50.00"},
        base | {"account_number": "BAD-1", "payments_since_itemization": "40.00"},
    ]
    response = client.post(
        "/api/v1/referrals", json={"as_of": "2026-11-23", "rows": rows}, headers=headers
    )
    assert response.status_code == 201, response.json
    assert response.json["accepted"] == 1
    (rejection,) = response.json["rejected"]
    assert rejection["row"] == 3 and rejection["column"] == "amount_on_itemization_date"
    assert "− payments_since_itemization 40.00" in rejection["reason"]
    assert (
        "= 260.00, but principal 250.00 + interest 0.00 + fees 0.00 = 250.00"
        in (rejection["reason"])
    )
    cases = db_session.scalars(sa.select(Case)).all()
    assert [c.account_number for c in cases] == ["OK-1"]
    (case,) = cases
    assert case.itemization_date_type == "charge_off"
    assert case.amount_on_itemization_date_cents == 30_000
    assert case.payments_since_itemization_cents == 5_000
