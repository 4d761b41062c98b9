"""API tokens reach customer data with no second factor, so each has an owner, a scope (read
or write), an expiry and can be revoked: on the API, the command line and the admin's page."""

import datetime as dt
import re

import sqlalchemy as sa
import time_machine

from cases.audit import AuditEvent
from cases.contacts import Contact
from cases.model import utcnow
from cases.users import ApiToken
from payments.posting import LedgerEntry
from tests.conftest import csrf_from

PAYMENT = {
    "amount_cents": 12_345,
    "received_at": "2026-11-20",
    "method": "check",
    "external_id": "CHK-1001",
}


def count(db_session, model):
    return db_session.scalar(sa.select(sa.func.count()).select_from(model))


def test_a_read_token_reads_and_may_not_write(
    client, db_session, make_user, make_client, make_case, api_token
):
    case = make_case(make_client())
    headers = api_token(make_user("collector"), scope="read")
    assert client.get(f"/api/v1/cases/{case.reference}", headers=headers).status_code == 200
    for path, body in (
        ("payments", PAYMENT),
        ("contacts", {"channel": "call", "direction": "outbound", "outcome": "no_answer"}),
    ):
        response = client.post(f"/api/v1/cases/{case.reference}/{path}", json=body, headers=headers)
        assert response.status_code == 403, path
        assert response.json["error"] == "insufficient_scope"
        assert "write scope" in response.json["message"]
    assert count(db_session, Contact) == 0
    assert (
        db_session.scalar(
            sa.select(sa.func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "payment")
        )
        == 0
    )
    write = api_token(make_user("collector"), scope="write")
    posted = client.post(f"/api/v1/cases/{case.reference}/payments", json=PAYMENT, headers=write)
    assert posted.status_code == 201


def test_an_expired_token_gets_401_saying_so(client, make_user, make_client, make_case, api_token):
    case = make_case(make_client())
    headers = api_token(make_user("collector"), days=1)
    url = f"/api/v1/cases/{case.reference}"
    assert client.get(url, headers=headers).status_code == 200
    with time_machine.travel(utcnow() + dt.timedelta(days=1, seconds=1), tick=False):
        response = client.get(url, headers=headers)
    assert response.status_code == 401
    assert response.json["error"] == "token_expired"
    assert "expired on 2026-11-24" in response.json["message"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_tokens_on_the_command_line_create_list_and_revoke(
    cli, client, db_session, make_user, make_client, make_case
):
    case = make_case(make_client())
    user = make_user("collector")
    result = cli.invoke(args=["tokens", "create", user.email, "--scope", "read", "--days", "30"])
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(f"/api/v1/cases/{case.reference}", headers=headers).status_code == 200

    listing = cli.invoke(args=["tokens", "list", user.email]).output
    assert re.search(rf"{token[:10]}…\s+{user.email}\s+read\s+expires 2026-12-23\s+active", listing)

    revoked = cli.invoke(args=["tokens", "revoke", token[:10]])
    assert revoked.exit_code == 0, revoked.output
    response = client.get(f"/api/v1/cases/{case.reference}", headers=headers)
    assert response.status_code == 401
    assert response.json["error"] == "token_revoked"
    assert "revoked" in cli.invoke(args=["tokens", "list"]).output
    assert db_session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "token.revoked"))
    again = cli.invoke(args=["tokens", "revoke", token[:10]])
    assert again.exit_code == 1 and "revoked already" in again.output


def test_bad_token_requests_on_the_command_line_change_nothing(cli, db_session, make_user):
    user = make_user("collector")
    for args, message in (
        (["--days", "0"], "a token lasts from 1 to 366 days"),
        (["--days", "400"], "a token lasts from 1 to 366 days"),
        (["--scope", "admin"], "'admin' is not one of 'read', 'write'"),
    ):
        result = cli.invoke(args=["tokens", "create", user.email, *args])
        assert result.exit_code != 0, args
        assert message in result.output, (args, result.output)
    missing = cli.invoke(args=["tokens", "revoke", "rc_nothing"])
    assert missing.exit_code == 1 and "no token with prefix" in missing.output
    assert count(db_session, ApiToken) == 0


def test_an_admin_issues_and_revokes_tokens_on_the_users_access_page(
    client, db_session, login, make_user, make_client, make_case
):
    case = make_case(make_client())
    admin, collector = make_user("admin"), make_user("collector")
    login(admin)
    page = client.get(f"/agency/users/{collector.id}/access")
    assert page.status_code == 200 and "No tokens." in page.get_data(as_text=True)

    bad = client.post(
        f"/agency/users/{collector.id}/tokens",
        data={"scope": "read", "days": "0", "csrf_token": csrf_from(page)},
    )
    assert bad.status_code == 422 and count(db_session, ApiToken) == 0

    made = client.post(
        f"/agency/users/{collector.id}/tokens",
        data={"scope": "read", "days": "30", "csrf_token": csrf_from(page)},
    )
    assert made.status_code == 201
    token = re.search(r'<code id="new-token">(rc_[\w-]+)</code>', made.get_data(as_text=True))[1]
    row = db_session.scalar(sa.select(ApiToken))
    assert row.user_id == collector.id and row.scope == "read"
    assert row.expires_at.date() == dt.date(2026, 12, 23)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(f"/api/v1/cases/{case.reference}", headers=headers).status_code == 200
    # The token is shown once: the page lists its prefix only.
    listing = client.get(f"/agency/users/{collector.id}/access").get_data(as_text=True)
    assert token not in listing and f"{token[:10]}…" in listing

    revoked = client.post(
        f"/agency/users/{collector.id}/tokens/{row.id}/revoke",
        data={"csrf_token": csrf_from(page)},
    )
    assert revoked.status_code == 302
    assert client.get(f"/api/v1/cases/{case.reference}", headers=headers).status_code == 401
    event = db_session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "token.revoked"))
    assert event.actor_user_id == admin.id


def test_only_an_admin_manages_tokens(client, db_session, login, make_user):
    supervisor, collector = make_user("supervisor"), make_user("collector")
    login(supervisor)
    page = client.get("/agency/")
    assert client.get(f"/agency/users/{collector.id}/access").status_code == 403
    response = client.post(
        f"/agency/users/{collector.id}/tokens",
        data={"scope": "write", "days": "30", "csrf_token": csrf_from(page)},
    )
    assert response.status_code == 403 and count(db_session, ApiToken) == 0
