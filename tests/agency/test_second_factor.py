"""The second factor (SPEC §11): enrolment at first sign-in, password + TOTP, codes good once,
the limit on bad codes, recovery codes, an admin's reset, enrolment links that expire."""

import datetime as dt
import re

import pyotp
import pytest
import sqlalchemy as sa
import time_machine
from cryptography.fernet import Fernet

from cases.audit import AuditEvent
from cases.model import utcnow
from cases.second_factor import (
    RecoveryCode,
    confirm_enrolment,
    pending_secret,
    unused_recovery_codes,
)
from cases.sign_in_limits import SignInAttempt
from cases.users import user_by_email
from tests.conftest import PASSWORD, TEST_ACTOR, csrf_from


@pytest.fixture
def mfa_required(app, monkeypatch):
    monkeypatch.setitem(app.config, "MFA_REQUIRED", True)


def post_form(client, path, data):
    page = client.get(path)
    return client.post(path, data={**data, "csrf_token": csrf_from(page)})


def password_step(client, user, password=PASSWORD):
    page = client.get("/login")
    return client.post(
        "/login",
        data={"email": user.email, "password": password, "csrf_token": csrf_from(page)},
    )


def enrolled(app, db_session, user) -> pyotp.TOTP:
    """Enrol the user as the page would; the authenticator app's TOTP."""
    key = app.config["MFA_ENCRYPTION_KEY"]
    secret = pending_secret(db_session, user, key)
    totp = pyotp.TOTP(secret)
    confirm_enrolment(db_session, user, key, totp.now(), actor=TEST_ACTOR)
    db_session.flush()
    return totp


def travel(seconds):
    """Move the clock on (the suite's fixed day ticks from where it is)."""
    return time_machine.travel(utcnow() + dt.timedelta(seconds=seconds), tick=True)


def events(db_session, action, user):
    return db_session.scalars(
        sa.select(AuditEvent).where(
            AuditEvent.action == action, AuditEvent.entity_id == str(user.id)
        )
    ).all()


def test_first_sign_in_enrols_an_authenticator_with_a_qr_code_and_recovery_codes(
    app, client, db_session, make_user, mfa_required
):
    user = make_user("collector")
    response = password_step(client, user)
    assert response.headers["Location"] == "/login/code"
    assert client.get("/agency/").status_code == 302  # not signed in yet
    assert client.get("/login/code").headers["Location"] == "/login/enrol"

    page = client.get("/login/enrol")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "<svg" in html  # the QR code
    secret = re.search(r'<code class="secret" id="totp-secret">([A-Z2-7]+)</code>', html)[1]
    assert user.totp_secret and secret not in user.totp_secret  # stored encrypted
    key = Fernet(app.config["MFA_ENCRYPTION_KEY"])
    assert key.decrypt(user.totp_secret.encode()).decode() == secret
    assert client.get("/login/enrol").get_data(as_text=True).count(secret) == 1  # same secret

    wrong = client.post("/login/enrol", data={"code": "000000", "csrf_token": csrf_from(page)})
    assert wrong.status_code == 401 and "That code is not right" in wrong.get_data(as_text=True)
    assert user.totp_enrolled_at is None

    done = client.post(
        "/login/enrol",
        data={"code": pyotp.TOTP(secret).now(), "csrf_token": csrf_from(page)},
    )
    text = done.get_data(as_text=True)
    assert done.status_code == 200
    codes = re.findall(r"<li><code>([0-9a-f]{5}-[0-9a-f]{5})</code></li>", text)
    assert len(codes) == 10 and "shown only this once" in text
    assert user.totp_enrolled_at is not None
    stored = db_session.scalars(sa.select(RecoveryCode.code_hash)).all()
    assert len(stored) == 10 and not set(codes) & set(stored)  # only hashes are kept
    assert events(db_session, "user.second_factor_enrolled", user)
    assert events(db_session, "user.signed_in", user)
    assert client.get("/agency/").status_code == 200
    # The codes are not shown again: the enrolment page is gone for an enrolled user.
    assert client.get("/login/enrol").status_code == 302


def test_sign_in_takes_the_password_then_a_totp_code(
    app, client, db_session, make_user, mfa_required
):
    user = make_user("admin")
    totp = enrolled(app, db_session, user)
    with travel(60):
        response = password_step(client, user)
        assert response.headers["Location"] == "/login/code"
        assert not events(db_session, "user.signed_in", user)
        assert client.get("/agency/users").status_code == 302  # half signed in is not in
        page = client.get("/login/code")
        assert "authenticator app" in page.get_data(as_text=True)
        done = client.post("/login/code", data={"code": totp.now(), "csrf_token": csrf_from(page)})
        assert done.status_code == 302 and done.headers["Location"] == "/agency/"
        assert events(db_session, "user.signed_in", user)
        assert client.get("/agency/users").status_code == 200


def test_the_sign_in_keeps_the_page_asked_for(app, client, db_session, make_user, mfa_required):
    user = make_user("admin")
    totp = enrolled(app, db_session, user)
    with travel(60):
        page = client.get("/login?next=/agency/users")
        client.post(
            "/login?next=/agency/users",
            data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_from(page)},
        )
        done = post_form(client, "/login/code", {"code": totp.now()})
        assert done.headers["Location"] == "/agency/users"


def test_a_wrong_password_never_reaches_the_code_step(client, make_user, mfa_required):
    user = make_user("collector")
    assert password_step(client, user, "not-the-password").status_code == 401
    assert client.get("/login/code").headers["Location"] == "/login"


def test_a_code_is_accepted_once(app, client, db_session, make_user, mfa_required):
    user = make_user("collector")
    totp = enrolled(app, db_session, user)
    with travel(60):
        code = totp.now()
        password_step(client, user)
        assert post_form(client, "/login/code", {"code": code}).status_code == 302
        client.post("/logout", data={"csrf_token": csrf_from(client.get("/agency/"))})

        password_step(client, user)
        again = post_form(client, "/login/code", {"code": code})
        assert again.status_code == 401
        assert "used already" in again.get_data(as_text=True)
        assert client.get("/agency/").status_code == 302
    with travel(120):  # the app's next code is good
        assert post_form(client, "/login/code", {"code": totp.now()}).status_code == 302


def test_five_bad_codes_refuse_the_account_for_15_minutes(
    app, client, db_session, make_user, mfa_required
):
    user = make_user("collector")
    totp = enrolled(app, db_session, user)
    with travel(60):
        password_step(client, user)
        for _ in range(5):
            assert post_form(client, "/login/code", {"code": "123456"}).status_code == 401
        refused = post_form(client, "/login/code", {"code": totp.now()})
        assert refused.status_code == 429
        assert "Too many wrong codes" in refused.get_data(as_text=True)
        assert client.get("/agency/").status_code == 302
        # The count is the account's, in the database: another browser is refused too.
        other = app.test_client()
        password_step(other, user)
        assert post_form(other, "/login/code", {"code": totp.now()}).status_code == 429
    with travel(16 * 60):
        password_step(client, user)
        assert post_form(client, "/login/code", {"code": totp.now()}).status_code == 302


def test_a_recovery_code_signs_in_once(app, client, db_session, make_user, mfa_required):
    user = make_user("supervisor")
    key = app.config["MFA_ENCRYPTION_KEY"]
    totp = pyotp.TOTP(pending_secret(db_session, user, key))
    codes = confirm_enrolment(db_session, user, key, totp.now(), actor=TEST_ACTOR)
    password_step(client, user)
    done = post_form(client, "/login/code", {"code": codes[3].upper()})
    assert done.status_code == 302
    assert "recovery code" in client.get("/agency/").get_data(as_text=True)
    assert events(db_session, "user.recovery_code_used", user)[0].detail["left"] == 9
    client.post("/logout", data={"csrf_token": csrf_from(client.get("/agency/"))})

    password_step(client, user)
    again = post_form(client, "/login/code", {"code": codes[3]})
    assert again.status_code == 401
    assert client.get("/agency/").status_code == 302


def test_the_code_step_lapses_after_ten_minutes(app, client, db_session, make_user, mfa_required):
    user = make_user("collector")
    totp = enrolled(app, db_session, user)
    password_step(client, user)
    page = client.get("/login/code")
    with travel(11 * 60):
        response = client.post(
            "/login/code", data={"code": totp.now(), "csrf_token": csrf_from(page)}
        )
        assert response.status_code == 302 and response.headers["Location"] == "/login"
        assert client.get("/agency/").status_code == 302


def test_an_admin_resets_a_second_factor_and_it_is_audited(
    app, client, db_session, make_user, mfa_required
):
    admin, collector = make_user("admin"), make_user("collector")
    admin_totp = enrolled(app, db_session, admin)
    enrolled(app, db_session, collector)
    with travel(60):  # every code in this test is after enrolment's
        password_step(client, admin)
        assert post_form(client, "/login/code", {"code": admin_totp.now()}).status_code == 302
        listing = client.get("/agency/users").get_data(as_text=True)
        assert f'href="/agency/users/{collector.id}/access">set up<' in listing
        page = client.get(f"/agency/users/{collector.id}/access")
        assert "Authenticator set up" in page.get_data(as_text=True)
        response = client.post(
            f"/agency/users/{collector.id}/second-factor/reset",
            data={"csrf_token": csrf_from(page)},
        )
        assert response.status_code == 302
        assert collector.totp_enrolled_at is None and collector.totp_secret is None
        assert unused_recovery_codes(db_session, collector) == 0
        assert unused_recovery_codes(db_session, admin) == 10
        listing = client.get("/agency/users").get_data(as_text=True)
        assert f'href="/agency/users/{collector.id}/access">not yet<' in listing
        (event,) = events(db_session, "user.second_factor_reset", collector)
        assert event.actor_user_id == admin.id and event.detail == {"was_enrolled": True}

        own = client.post(
            f"/agency/users/{admin.id}/second-factor/reset", data={"csrf_token": csrf_from(page)}
        )
        assert own.status_code == 422
        assert "cannot reset your own" in own.get_data(as_text=True)

        # The collector sets up a new authenticator at the next sign-in.
        other = app.test_client()
        password_step(other, collector)
        assert other.get("/login/code").headers["Location"] == "/login/enrol"


def test_only_an_admin_resets_a_second_factor(app, client, db_session, login, make_user):
    supervisor, collector = make_user("supervisor"), make_user("collector")
    enrolled(app, db_session, collector)
    login(supervisor)
    page = client.get("/agency/")
    response = client.post(
        f"/agency/users/{collector.id}/second-factor/reset",
        data={"csrf_token": csrf_from(page)},
    )
    assert response.status_code == 403
    assert collector.totp_enrolled_at is not None
    assert not events(db_session, "user.second_factor_reset", collector)


def test_users_create_prints_an_enrolment_link_that_expires(
    app, cli, client, db_session, mfa_required
):
    result = cli.invoke(
        args=["users", "create", "new@agency.test", "--role", "collector"],
        input="a-long-password\n",
    )
    assert result.exit_code == 0, result.output
    match = re.search(r"expires in 72 hours\): http://\S+(/enrol/[\w-]+)", result.output)
    assert match, result.output
    link = match[1]
    page = client.get(link)
    assert page.status_code == 200

    with travel(73 * 3600):
        expired = client.get(link)
        assert expired.status_code == 410
        assert "This enrolment link has expired" in expired.get_data(as_text=True)
        secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page.get_data(as_text=True))[1]
        code = pyotp.TOTP(secret).now()
        refused = client.post(link, data={"code": code, "csrf_token": csrf_from(page)})
        assert refused.status_code == 410
        user = user_by_email(db_session, "new@agency.test")
        assert user.totp_enrolled_at is None


def test_an_enrolment_link_sets_up_the_authenticator_once(
    app, cli, client, db_session, mfa_required
):
    result = cli.invoke(
        args=["users", "create", "new@agency.test", "--role", "collector"],
        input="a-long-password\n",
    )
    link = re.search(r"(/enrol/[\w-]+)", result.output)[1]
    page = client.get(link)
    html = page.get_data(as_text=True)
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', html)[1]
    totp = pyotp.TOTP(secret)
    done = client.post(link, data={"code": totp.now(), "csrf_token": csrf_from(page)})
    assert done.status_code == 200
    assert len(re.findall(r"<li><code>[0-9a-f-]{11}</code></li>", done.get_data(as_text=True)))
    assert client.get("/agency/").status_code == 302  # the link alone does not sign in
    used = client.get(link)
    assert used.status_code == 410 and "used already" in used.get_data(as_text=True)

    with travel(60):
        user = user_by_email(db_session, "new@agency.test")
        password_step(client, user, "a-long-password")
        assert post_form(client, "/login/code", {"code": totp.now()}).status_code == 302
        assert client.get("/agency/").status_code == 200


def test_users_reset_mfa_on_the_command_line_is_audited(app, cli, db_session, make_user):
    user = make_user("collector")
    enrolled(app, db_session, user)
    result = cli.invoke(args=["users", "reset-mfa", user.email])
    assert result.exit_code == 0, result.output
    assert "/enrol/" in result.output
    assert user.totp_enrolled_at is None
    (event,) = events(db_session, "user.second_factor_reset", user)
    assert event.actor_label == "cli"
    missing = cli.invoke(args=["users", "reset-mfa", "nobody@agency.test"])
    assert missing.exit_code == 1 and "no user" in missing.output


def test_with_mfa_off_the_password_alone_signs_in(client, db_session, make_user):
    user = make_user("collector")
    response = password_step(client, user)
    assert response.headers["Location"] == "/agency/"


def test_a_secret_kept_under_another_key_is_refused_with_a_clear_message(
    app, client, db_session, make_user, mfa_required, monkeypatch
):
    user = make_user("collector")
    totp = enrolled(app, db_session, user)
    monkeypatch.setitem(app.config, "MFA_ENCRYPTION_KEY", Fernet.generate_key().decode())
    with travel(60):
        password_step(client, user)
        response = post_form(client, "/login/code", {"code": totp.now()})
        assert response.status_code == 401
        assert "current MFA_ENCRYPTION_KEY" in response.get_data(as_text=True)
        assert client.get("/agency/").status_code == 302


def test_a_client_user_enrols_and_signs_in_with_a_code_too(
    app, client, db_session, make_user, make_client, mfa_required
):
    user = make_user("client", client=make_client())
    password_step(client, user)
    page = client.get("/login/enrol")
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page.get_data(as_text=True))[1]
    totp = pyotp.TOTP(secret)
    client.post("/login/enrol", data={"code": totp.now(), "csrf_token": csrf_from(page)})
    assert client.get("/client/").status_code == 200
    client.post("/logout", data={"csrf_token": csrf_from(client.get("/client/"))})
    with travel(60):
        password_step(client, user)
        assert client.get("/client/").status_code == 302
        done = post_form(client, "/login/code", {"code": totp.now()})
        assert done.headers["Location"] == "/client/"


def test_a_code_typed_wrong_is_refused_clearly_and_counts_nothing(
    app, client, db_session, make_user, mfa_required
):
    user = make_user("collector")
    enrolled(app, db_session, user)
    password_step(client, user)
    for code, message in (("", "This field is required."), ("1" * 41, "longer than 40")):
        response = post_form(client, "/login/code", {"code": code})
        assert response.status_code == 400
        assert message in response.get_data(as_text=True)
    assert db_session.scalar(sa.select(sa.func.count()).select_from(SignInAttempt)) == 0
    assert client.get("/agency/").status_code == 302
