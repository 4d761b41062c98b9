"""The command line of SPEC §10 that the foundation provides."""

import sqlalchemy as sa

from cases.case import Case
from cases.clients import Client, client_by_code
from cases.contacts import Contact
from cases.users import User, user_by_email, user_for_token
from payments.fees import current_schedule
from payments.posting import LedgerEntry
from tests.conftest import portal_sign_in


def test_clients_create_with_default_and_custom_tiers(cli, db_session):
    result = cli.invoke(args=["clients", "create", "ACME", "Acme Plumbing"])
    assert result.exit_code == 0, result.output
    acme = client_by_code(db_session, "ACME")
    assert acme.min_age_days == 90
    assert current_schedule(db_session, acme.id).describe() == "90=2500,181=3300,366=4000"

    result = cli.invoke(
        args=[
            "clients",
            "create",
            "blue",
            "Blue Sky",
            "--min-age-days",
            "120",
            "--fee-tiers",
            "120=3000,400=4500",
            "--legal-fee-bps",
            "5000",
        ]
    )
    assert result.exit_code == 0, result.output
    blue = client_by_code(db_session, "BLUE")
    schedule = current_schedule(db_session, blue.id)
    assert blue.min_age_days == 120
    assert schedule.describe() == "120=3000,400=4500" and schedule.legal_bps == 5000
    assert schedule.rate_for(119) == 3000 and schedule.rate_for(400) == 4500
    assert schedule.rate_for(500, in_legal=True) == 5000


def test_clients_create_refuses_bad_input_and_changes_nothing(cli, db_session):
    cli.invoke(args=["clients", "create", "ACME", "Acme"])
    cases = [
        (["ACME", "Again"], "already exists"),
        (["X", "Too short"], "code must be"),
        (["GOOD", "Good", "--fee-tiers", "90:2500"], "DAYS=BASIS_POINTS"),
        (["GOOD", "Good", "--fee-tiers", "90=25000"], "cannot exceed 100%"),
        (["GOOD", "Good", "--min-age-days", "-5"], "minimum age"),
    ]
    for args, message in cases:
        result = cli.invoke(args=["clients", "create", *args])
        assert result.exit_code == 1, args
        assert message in result.output, (args, result.output)
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Client)) == 1


def test_users_create_reads_the_password_from_stdin(cli, db_session):
    cli.invoke(args=["clients", "create", "ACME", "Acme"])
    result = cli.invoke(
        args=["users", "create", "Boss@Agency.test", "--role", "admin"], input="a-long-password\n"
    )
    assert result.exit_code == 0, result.output
    boss = user_by_email(db_session, "boss@agency.test")
    assert boss.role == "admin" and boss.check_password("a-long-password")

    result = cli.invoke(
        args=["users", "create", "ap@acme.test", "--role", "client", "--client", "ACME"],
        input="another-long-one\n",
    )
    assert result.exit_code == 0, result.output
    assert user_by_email(db_session, "ap@acme.test").client.code == "ACME"


def test_users_create_refuses_bad_input(cli, db_session):
    cli.invoke(args=["clients", "create", "ACME", "Acme"])
    cases = [
        (["x@agency.test", "--role", "admin"], "short\n", "at least 10 characters"),
        (["not-an-email", "--role", "admin"], "a-long-password\n", "not a valid email"),
        (["c@agency.test", "--role", "client"], "a-long-password\n", "needs a client"),
        (
            ["c@agency.test", "--role", "client", "--client", "NOPE"],
            "a-long-password\n",
            "no client with code NOPE",
        ),
        (
            ["a@agency.test", "--role", "collector", "--client", "ACME"],
            "a-long-password\n",
            "only client users",
        ),
    ]
    for args, stdin, message in cases:
        result = cli.invoke(args=["users", "create", *args], input=stdin)
        assert result.exit_code != 0, args
        assert message in result.output, (args, result.output)
    assert db_session.scalar(sa.select(sa.func.count()).select_from(User)) == 0


def test_tokens_create_prints_a_working_token(cli, db_session):
    cli.invoke(
        args=["users", "create", "ops@agency.test", "--role", "collector"],
        input="a-long-password\n",
    )
    result = cli.invoke(args=["tokens", "create", "ops@agency.test"])
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    assert token.startswith("rc_")
    assert user_for_token(db_session, token).email == "ops@agency.test"
    missing = cli.invoke(args=["tokens", "create", "nobody@agency.test"])
    assert missing.exit_code == 1 and "no active user" in missing.output


def counts(session):
    return {
        model.__name__: session.scalar(sa.select(sa.func.count()).select_from(model))
        for model in (User, Client, Case, LedgerEntry, Contact)
    }


def test_demo_seed_twice_leaves_the_same_counts(cli, client, db_session):
    first = cli.invoke(args=["demo", "seed"])
    assert first.exit_code == 0, first.output
    assert "admin@recourse.test" in first.output
    # The printed debtor can sign in to the portal with exactly those details.
    line = next(x for x in first.output.splitlines() if "/portal/login" in x)
    reference = line.split("reference ", 1)[1].split(",", 1)[0]
    last_name = line.split("last name ", 1)[1].split(",", 1)[0]
    postal_code = line.rsplit("ZIP ", 1)[1].strip()
    assert portal_sign_in(client, reference, last_name, postal_code).status_code == 302
    after_first = counts(db_session)
    assert after_first["Client"] == 3 and after_first["Case"] >= 300
    statuses = set(db_session.scalars(sa.select(Case.status).distinct()))
    assert statuses == {"new", "active", "plan", "paid", "settled", "disputed", "closed"}
    roles = set(db_session.scalars(sa.select(User.role).distinct()))
    assert roles == {"admin", "supervisor", "collector", "client"}

    second = cli.invoke(args=["demo", "seed"])
    assert second.exit_code == 0
    assert "already there" in second.output
    assert counts(db_session) == after_first
