"""The sign-in limit (SPEC §8, §11), through the sign-in pages of staff, client users and the
portal, with the address read directly and through one trusted proxy: 5 failures on a subject
from an address refuse that pair, 20 from an address refuse the address, many addresses slow
a subject down and alert supervisors but never lock out its owner's own address."""

from __future__ import annotations

import datetime as dt
import secrets
import threading

import pytest
import sqlalchemy as sa
import time_machine

from agency import create_app
from cases.audit import AuditEvent
from cases.sign_in_limits import SignInAlert, SignInAttempt, delay
from portal import pages
from shell.extensions import db
from shell.unit_of_work import step
from tests import conftest
from tests.conftest import PASSWORD, csrf_from

PROXY = "10.9.9.9"
OWNER = "203.0.113.10"
ATTACKER = "198.51.100.66"
START = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="session")
def proxied_app(app, database_url, redis_url, tmp_path_factory):
    """The same app behind one reverse proxy (TRUSTED_PROXIES=1)."""
    proxied = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": "test-secret",
            "DOCUMENT_STORE": str(tmp_path_factory.mktemp("documents")),
            "TRUSTED_PROXIES": 1,
        }
    )
    proxied.test_client_class = conftest.TestClient
    yield proxied
    with proxied.app_context():
        pages.dispose(proxied)


class Site:
    """One sign-in page, reached from a given address directly or through the proxy."""

    def __init__(self, flask_app, proxied: bool, path: str, fields):
        self.app, self.proxied, self.path, self.fields = flask_app, proxied, path, fields
        self.browsers: dict[str, object] = {}

    def _from(self, address: str) -> dict:
        if self.proxied:
            return {"environ_base": {"REMOTE_ADDR": PROXY}, "headers": {"X-Forwarded-For": address}}
        return {"environ_base": {"REMOTE_ADDR": address}}

    def post(self, address: str, subject: str, right: bool):
        browser = self.browsers.setdefault(address, self.app.test_client())
        page = browser.get(self.path, **self._from(address))
        data = {**self.fields(subject, right), "csrf_token": csrf_from(page)}
        return browser.post(self.path, data=data, **self._from(address))


@pytest.fixture(params=["staff", "client user", "portal"])
def surface(request, app, db_session, make_user, make_client, make_case):
    """(subject signing in, key of its counters, the site factory) for each kind of sign-in."""
    if request.param == "portal":
        case = make_case(make_client(), last_name="Garcia", postal_code="10001")

        def fields(subject, right):
            name = "Garcia" if right else "Wrong"
            return {"reference": subject, "name": name, "postal_code": "10001"}

        return case.reference, f"portal:ref:{case.reference}", "/portal/login", fields
    client = make_client() if request.param == "client user" else None
    user = make_user("client" if client else "supervisor", client=client)

    def fields(subject, right):
        return {"email": subject, "password": PASSWORD if right else "wrong-password-1"}

    return user.email, f"staff:email:{user.email}", "/login", fields


@pytest.fixture(params=[False, True], ids=["direct", "behind a proxy"])
def site(request, surface, app, proxied_app):
    subject, key, path, fields = surface
    the_app = proxied_app if request.param else app
    return Site(the_app, request.param, path, fields), subject, key


def _failures(db_session, key, address=None):
    query = sa.select(sa.func.count()).select_from(SignInAttempt).where(SignInAttempt.key == key)
    if address is not None:
        query = query.where(SignInAttempt.address == address)
    return db_session.scalar(query)


def test_five_failures_refuse_the_subject_from_that_address_not_from_the_owners(site, db_session):
    site, subject, key = site
    with time_machine.travel(START, tick=False):
        assert site.post(OWNER, subject, right=True).status_code == 302  # the owner's address
        for _ in range(5):
            assert site.post(ATTACKER, subject, right=False).status_code == 401
        refused = site.post(ATTACKER, subject, right=True)
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == str(15 * 60)
        assert "try again in 900 seconds" in refused.get_data(as_text=True)
        # The owner still signs in from their own address.
        site.browsers.pop(OWNER)
        assert site.post(OWNER, subject, right=True).status_code == 302
    # Each failure is kept, with where it came from; the refused attempt is not one.
    assert _failures(db_session, key, ATTACKER) == 5
    with time_machine.travel(START + dt.timedelta(minutes=14, seconds=59), tick=False):
        assert site.post(ATTACKER, subject, right=True).status_code == 429
    with time_machine.travel(START + dt.timedelta(minutes=15, seconds=1), tick=False):
        assert site.post(ATTACKER, subject, right=True).status_code == 302


def test_a_success_from_an_address_starts_its_count_afresh(site):
    site, subject, _key = site
    with time_machine.travel(START, tick=False):
        for _ in range(4):
            assert site.post(OWNER, subject, right=False).status_code == 401
        assert site.post(OWNER, subject, right=True).status_code == 302
        site.browsers.pop(OWNER)
        for _ in range(4):
            assert site.post(OWNER, subject, right=False).status_code == 401
        assert site.post(OWNER, subject, right=True).status_code == 302


def test_twenty_failures_refuse_the_address_across_subjects(site):
    site, subject, _key = site
    with time_machine.travel(START, tick=False):
        for n in range(20):
            other = f"RC-9999-{n:05d}" if "portal" in site.path else f"nobody{n}@recourse.test"
            assert site.post(ATTACKER, other, right=False).status_code == 401
        refused = site.post(ATTACKER, subject, right=True)
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) == 15 * 60
        # Only that address: the subject signs in from anywhere else.
        assert site.post(OWNER, subject, right=True).status_code == 302


def test_many_addresses_slow_the_subject_and_alert_but_the_owner_signs_in(
    site, db_session, client, login, make_user
):
    site, subject, key = site
    with time_machine.travel(START, tick=False):
        assert site.post(OWNER, subject, right=True).status_code == 302
        for n in range(5):
            assert site.post(f"192.0.2.{n}", subject, right=False).status_code == 401
    # From the fifth failure each attempt from elsewhere waits, longer after each failure.
    moment, waits = START, []
    for n in range(5, 9):
        with time_machine.travel(moment, tick=False):
            slowed = site.post(f"192.0.2.{n}", subject, right=True)
            assert slowed.status_code == 429
            wait = int(slowed.headers["Retry-After"])
            waits.append(wait)
            # The owner's own address is never slowed.
            site.browsers.pop(OWNER, None)
            assert site.post(OWNER, subject, right=True).status_code == 302
        moment += dt.timedelta(seconds=wait)
        with time_machine.travel(moment, tick=False):
            assert site.post(f"192.0.2.{n}", subject, right=False).status_code == 401
    assert waits == [delay(n) for n in range(5, 9)] == [2, 4, 8, 16]
    # Slowed, not locked: a new address with the right details gets in once its wait is over.
    with time_machine.travel(moment, tick=False):
        wait = int(site.post("192.0.2.200", subject, right=True).headers["Retry-After"])
    with time_machine.travel(moment + dt.timedelta(seconds=wait), tick=False):
        assert site.post("192.0.2.200", subject, right=True).status_code == 302

    alert = db_session.scalar(sa.select(SignInAlert).where(SignInAlert.key == key))
    assert alert is not None and alert.resolved_at is None
    assert (alert.failures, alert.addresses) == (9, 9)
    # Supervisors see it on the alerts page and resolve it.
    login(make_user("supervisor"))
    page = client.get("/agency/alerts")
    assert subject in page.get_data(as_text=True)
    resolved = client.post(
        f"/agency/alerts/sign-in/{alert.id}/resolve",
        data={"resolution": "Called the owner; password changed.", "csrf_token": csrf_from(page)},
    )
    assert resolved.status_code == 302
    db_session.refresh(alert)
    assert alert.resolution == "Called the owner; password changed."
    assert db_session.scalar(
        sa.select(AuditEvent).where(
            AuditEvent.entity_type == "sign_in_alert", AuditEvent.entity_id == str(alert.id)
        )
    )


def test_failures_from_one_address_raise_no_alert(site, db_session):
    site, subject, key = site
    with time_machine.travel(START, tick=False):
        for _ in range(5):
            site.post(ATTACKER, subject, right=False)
    assert db_session.scalar(sa.select(SignInAlert).where(SignInAlert.key == key)) is None


def test_resolving_a_sign_in_alert_needs_a_note_and_a_supervisor(
    app, client, login, make_user, db_session
):
    alert = SignInAlert(key="staff:email:x@recourse.test", failures=9, addresses=4)
    alert.last_failure_at = START
    db_session.add(alert)
    db_session.flush()
    login(make_user("collector"))
    page = client.get("/agency/")
    denied = client.post(
        f"/agency/alerts/sign-in/{alert.id}/resolve",
        data={"resolution": "x", "csrf_token": csrf_from(page)},
    )
    assert denied.status_code == 403
    supervisor = app.test_client()
    page = supervisor.get("/login")
    supervisor.post(
        "/login",
        data={
            "email": make_user("supervisor").email,
            "password": PASSWORD,
            "csrf_token": csrf_from(page),
        },
    )
    page = supervisor.get("/agency/alerts")
    empty = supervisor.post(
        f"/agency/alerts/sign-in/{alert.id}/resolve",
        data={"resolution": "  ", "csrf_token": csrf_from(page)},
        follow_redirects=True,
    )
    assert "Say what was done about it." in empty.get_data(as_text=True)
    db_session.refresh(alert)
    assert alert.resolved_at is None


def test_x_forwarded_for_is_ignored_without_trusted_proxies(surface, app, db_session):
    subject, key, path, fields = surface
    site = Site(app, False, path, fields)
    browser = app.test_client()
    with time_machine.travel(START, tick=False):
        for n in range(5):
            page = browser.get(path, environ_base={"REMOTE_ADDR": ATTACKER})
            data = {**fields(subject, False), "csrf_token": csrf_from(page)}
            forged = {"X-Forwarded-For": f"192.0.2.{n}"}
            response = browser.post(
                path, data=data, headers=forged, environ_base={"REMOTE_ADDR": ATTACKER}
            )
            assert response.status_code == 401
        # All five counted against the connecting address, whatever the header said.
        assert site.post(ATTACKER, subject, right=True).status_code == 429
    assert _failures(db_session, key, ATTACKER) == 5


def test_behind_a_proxy_each_client_counts_alone(surface, proxied_app, db_session):
    subject, key, path, fields = surface
    site = Site(proxied_app, True, path, fields)
    with time_machine.travel(START, tick=False):
        assert site.post(OWNER, subject, right=True).status_code == 302
        for _ in range(5):
            assert site.post(ATTACKER, subject, right=False).status_code == 401
        assert site.post(ATTACKER, subject, right=True).status_code == 429
        # Another client behind the same proxy is not refused for the attacker's failures.
        site.browsers.pop(OWNER)
        assert site.post(OWNER, subject, right=True).status_code == 302
    assert _failures(db_session, key, ATTACKER) == 5
    assert _failures(db_session, key, PROXY) == 0


def test_trusted_proxies_is_a_small_whole_number(app, tmp_path):
    for bad in ("-1", "two", "9"):
        with pytest.raises(ValueError, match="TRUSTED_PROXIES must be a whole number from 0 to 5"):
            create_app({"TRUSTED_PROXIES": bad, "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})


# --- attempts at the same moment --------------------------------------------------------


def _live_app(database_url, redis_url, backend, tmp_path):
    live = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url if backend == "redis" else "",
            "SECRET_KEY": "test-secret",
            "WTF_CSRF_ENABLED": False,
            "DOCUMENT_STORE": str(tmp_path / "documents"),
        }
    )
    return live


@pytest.mark.parametrize("backend", ["database", "redis"])
@pytest.mark.parametrize("kind", ["portal", "staff"])
@pytest.mark.parametrize(
    ("addresses", "before", "guesses"), [(1, 1, 4), (40, 0, 5)], ids=["one address", "40 addresses"]
)
def test_forty_attempts_at_once_get_no_more_guesses_than_the_limit(
    app, database_url, redis_url, tmp_path, backend, kind, addresses, before, guesses
):
    """40 threads, each its own request and database session, committing for real."""
    if backend == "redis" and not redis_url:
        pytest.skip("TEST_REDIS_URL is not set")
    live = _live_app(database_url, redis_url, backend, tmp_path)
    if kind == "portal":
        subject = f"RC-X{secrets.token_hex(4).upper()}"
        path, data = "/portal/login", {"reference": subject, "name": "No", "postal_code": "1"}
        key = f"portal:ref:{subject}"
    else:
        subject = f"nobody-{secrets.token_hex(4)}@recourse.test"
        path, data = "/login", {"email": subject, "password": "wrong-password-1"}
        key = f"staff:email:{subject}"

    def attempt(address: str) -> int:
        return live.test_client().post(path, data=data, environ_base={"REMOTE_ADDR": address})

    statuses: list[int] = []
    barrier = threading.Barrier(40)

    def run(n: int) -> None:
        barrier.wait()
        statuses.append(attempt(f"127.0.1.{n % addresses}").status_code)

    try:
        with time_machine.travel(START, tick=False):
            for _ in range(before):
                assert attempt("127.0.1.0").status_code == 401
            threads = [threading.Thread(target=run, args=(n,)) for n in range(40)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        assert sorted(statuses) == [401] * guesses + [429] * (40 - guesses)
        with live.app_context():
            assert (
                db.session.scalar(
                    sa.select(sa.func.count())
                    .select_from(SignInAttempt)
                    .where(SignInAttempt.key == key)
                )
                == before + guesses
            )
    finally:
        with live.app_context(), step():
            db.session.execute(sa.delete(SignInAttempt).where(SignInAttempt.key == key))
            db.session.execute(sa.delete(SignInAlert).where(SignInAlert.key == key))
        with live.app_context():
            db.engine.dispose()
            pages.dispose(live)


def test_with_redis_away_sign_in_counts_in_the_database(app, db_session, make_user, tmp_path):
    away = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": app.config["DATABASE_URL"],
            "REDIS_URL": "redis://127.0.0.1:1/0",  # nothing listens there
            "SECRET_KEY": "test-secret",
            "DOCUMENT_STORE": str(tmp_path / "documents"),
        }
    )
    away.test_client_class = conftest.TestClient
    user = make_user("collector")
    site = Site(
        away,
        False,
        "/login",
        lambda subject, right: {
            "email": subject,
            "password": PASSWORD if right else "wrong-password-1",
        },
    )
    with time_machine.travel(START, tick=False):
        assert site.post(OWNER, user.email, right=True).status_code == 302
        for _ in range(5):
            assert site.post(ATTACKER, user.email, right=False).status_code == 401
        assert site.post(ATTACKER, user.email, right=True).status_code == 429
    assert _failures(db_session, f"staff:email:{user.email}", ATTACKER) == 5
    with away.app_context():
        pages.dispose(away)
