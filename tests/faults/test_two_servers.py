"""Two app servers and two workers behind one PostgreSQL and one Redis (issue 21): gunicorn A
and gunicorn B, separate processes on separate ports with the same DATABASE_URL, REDIS_URL and
SECRET_KEY, and two `flask worker` processes. Every piece of state a request leaves is shared:

- sessions: signed in on A (password on A, the second factor set up on B), continued on B; a
  debtor's portal session made on A works on B; signing out on B ends the session on A too;
- sign-in limits: failures split between A and B are counted together;
- the portal's page cache: a payment posted through A is on B's next page;
- jobs: a referral import asked for on A is run by the worker left running when the other
  stops, and its outcome is on B's pages.

PostgreSQL and Redis only: app servers on several machines need a database server (SQLite is
a file on one machine)."""

from __future__ import annotations

import dataclasses
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pyotp
import pytest
import requests
import sqlalchemy as sa
from redis import Redis
from rq import Worker
from rq.registry import FinishedJobRegistry

from cases import sign_in_limits
from cases.referrals import ReferralBatch
from cases.sign_in_limits import SignInAttempt
from shell.timezone import agency_today
from tests.conftest import PASSWORD
from tests.faults.conftest import (
    ROOT,
    STARTUP_SECONDS,
    World,
    csrf,
    free_port,
    stop,
    wait_for,
)
from tests.faults.test_redis_away import confirm, referral_file, upload

PAGE_KEYS = "recourse:portal-page:*"
# Two servers and two workers start at once, each importing the whole app: on a loaded 2-core
# machine that takes far longer than one server alone.
STARTING = 4 * STARTUP_SECONDS
WAIT = 30  # seconds for one request: generous, for a loaded machine


@dataclasses.dataclass
class Servers:
    a: World  # the same world, seen through server A
    b: World  # ... and through server B
    workers: list[subprocess.Popen]
    redis: Redis


def _launch(port: int, env: dict, log) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}"]
            + ["--workers", "1", "--threads", "4", "--timeout", "30", "wsgi:app"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _healthy(process: subprocess.Popen, base: str, log) -> bool:
    if process.poll() is not None:
        pytest.fail(f"gunicorn exited:\n{log.read_text(errors='replace')[-3000:]}")
    try:
        checks = requests.get(f"{base}/healthz", timeout=1).json()["checks"]
    except (requests.RequestException, ValueError, KeyError):
        return False
    return checks.get("redis") == "ok" and set(checks.values()) == {"ok"}


@pytest.fixture(scope="module")
def servers(world) -> Iterator[Servers]:
    """Started once for this module's tests (the jobs test, last, stops worker 1)."""
    if not world.postgres:
        pytest.skip("app servers on several machines share a PostgreSQL (SQLite is one file)")
    # The second factor on, as in production: half a sign-in lives in the cookie between A and B.
    env = {**world.env, "MFA_REQUIRED": "true"}
    # Both workers start now, while the servers start: they take a few seconds to be ready.
    workers = [world.spawn("worker", log=f"two-servers-worker-{n}.log") for n in (1, 2)]
    ports = {"a": free_port(), "b": free_port()}
    logs = {name: world.tmp / f"two-servers-{name}.log" for name in ports}
    processes = {name: _launch(port, env, logs[name]) for name, port in ports.items()}
    redis = Redis.from_url(world.redis.url)
    try:
        for name, port in ports.items():
            base = f"http://127.0.0.1:{port}"
            wait_for(
                lambda: _healthy(processes[name], base, logs[name]),  # noqa: B023 - called here
                f"server {name.upper()} to serve /healthz",
                STARTING,
            )
        yield Servers(
            a=dataclasses.replace(world, base=f"http://127.0.0.1:{ports['a']}"),
            b=dataclasses.replace(world, base=f"http://127.0.0.1:{ports['b']}"),
            workers=workers,
            redis=redis,
        )
    finally:
        # The package's other tests run their own workers: ours must not take their jobs.
        for process in workers:
            stop(process)  # SIGTERM: RQ's warm shutdown
        for process in processes.values():
            stop(process, signal.SIGINT)  # gunicorn's quick shutdown: no keep-alive to wait out
        redis.close()


# --- signing in as a browser would, across the servers ----------------------------------------


def password(world: World, browser: requests.Session, email: str, secret: str = PASSWORD):
    token = csrf(browser.get(f"{world.base}/login", timeout=WAIT).text)
    return browser.post(
        f"{world.base}/login",
        data={"email": email, "password": secret, "csrf_token": token},
        allow_redirects=False,
        timeout=WAIT,
    )


def sign_in_across(first: World, second: World, email: str) -> requests.Session:
    """The password given to `first`; the authenticator set up (first sign-in) on `second`,
    its form read from `second` and posted to `first`."""
    browser = requests.Session()
    answer = password(first, browser, email)
    assert answer.status_code == 302 and answer.headers["Location"] == "/login/code", answer.text
    # The half-signed-in state is in the cookie: B knows whose code it is waiting for.
    to_enrol = browser.get(f"{second.base}/login/code", allow_redirects=False, timeout=WAIT)
    assert to_enrol.headers["Location"] == "/login/enrol"
    page = browser.get(f"{second.base}/login/enrol", timeout=WAIT).text
    secret = re.search(r'<code class="secret" id="totp-secret">([A-Z2-7]+)</code>', page)[1]
    done = browser.post(
        f"{first.base}/login/enrol",
        data={"code": pyotp.TOTP(secret).now(), "csrf_token": csrf(page)},
        timeout=WAIT,
    )
    assert done.status_code == 200 and "shown only this once" in done.text, done.text
    return browser


def signed_in_page(world: World, cookies, path: str = "/agency/") -> requests.Response:
    return requests.get(f"{world.base}{path}", cookies=cookies, allow_redirects=False, timeout=WAIT)


def portal_sign_in(world: World, browser: requests.Session, case, name: str | None = None):
    token = csrf(browser.get(f"{world.base}/portal/login", timeout=WAIT).text)
    return browser.post(
        f"{world.base}/portal/login",
        data={
            "reference": case.case_reference,
            "name": name or case.last_name,
            "postal_code": case.postal_code,
            "csrf_token": token,
        },
        allow_redirects=False,
        timeout=WAIT,
    )


# --- 1. sessions ------------------------------------------------------------------------------


def test_a_session_made_on_one_server_is_good_on_the_other_and_ends_on_both(servers, seed):
    a, b = servers.a, servers.b
    staff = sign_in_across(a, b, seed.user("supervisor"))
    # Signed in by A's answer; B and A both serve the staff pages with that cookie.
    assert signed_in_page(b, staff.cookies).status_code == 200
    assert signed_in_page(a, staff.cookies).status_code == 200
    copied = staff.cookies.copy()  # as an attacker with the cookie would keep it

    # A debtor signs in to the portal on A and reads the balance page on B.
    code = seed.client(f"T{uuid.uuid4().hex[:6].upper()}")
    case = seed.case(code, last_name="Okafor")
    debtor = requests.Session()
    assert portal_sign_in(a, debtor, case).headers["Location"] == "/portal/"
    page = debtor.get(f"{b.base}/portal/", allow_redirects=False, timeout=WAIT)
    assert page.status_code == 200 and case.case_reference in page.text
    debtor_copy = debtor.cookies.copy()

    # Signing out on B ends the session on the server: the copied cookie is refused by A.
    token = csrf(staff.get(f"{b.base}/agency/", timeout=WAIT).text)
    out = staff.post(
        f"{b.base}/logout", data={"csrf_token": token}, allow_redirects=False, timeout=WAIT
    )
    assert out.status_code == 302 and out.headers["Location"] == "/login"
    for server in (a, b):
        answer = signed_in_page(server, copied)
        assert answer.status_code == 302 and answer.headers["Location"].startswith("/login")

    # The same for the debtor: signed out on B, the copy made before is refused on A.
    token = csrf(debtor.get(f"{b.base}/portal/", timeout=WAIT).text)
    out = debtor.post(f"{b.base}/portal/logout", data={"csrf_token": token}, timeout=WAIT)
    assert out.status_code == 200 and "You are signed out" in out.text
    answer = signed_in_page(a, debtor_copy, "/portal/")
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/portal/login")


# --- 2. sign-in limits ------------------------------------------------------------------------


def failures(world: World, key: str) -> int:
    return world.read(
        lambda s: s.scalar(
            sa.select(sa.func.count()).select_from(SignInAttempt).where(SignInAttempt.key == key)
        )
    )


def test_sign_in_failures_on_both_servers_count_toward_one_limit(servers, seed):
    a, b = servers.a, servers.b
    limit = sign_in_limits.PER_SUBJECT_AND_ADDRESS
    turns = [a, b] * limit

    # The portal: wrong details for one case, taking turns between the servers.
    code = seed.client(f"L{uuid.uuid4().hex[:6].upper()}")
    case = seed.case(code, last_name="Nakamura")
    debtor = requests.Session()
    for server in turns[:limit]:
        assert portal_sign_in(server, debtor, case, name="Wrong").status_code == 401
    assert failures(a, f"portal:ref:{case.case_reference}") == limit
    for server in (turns[limit], turns[limit + 1]):  # even with the right details, on either
        refused = portal_sign_in(server, debtor, case)
        assert refused.status_code == 429 and "Too many attempts" in refused.text
        assert int(refused.headers["Retry-After"]) > 0

    # Staff sign-in: wrong passwords for one email, taking turns.
    email = seed.user("collector")
    browser = requests.Session()
    for server in turns[:limit]:
        assert password(server, browser, email, "not-the-password").status_code == 401
    assert failures(a, f"staff:email:{email}") == limit
    for server in (turns[limit], turns[limit + 1]):
        refused = password(server, browser, email)
        assert refused.status_code == 429 and "Too many failed sign-ins" in refused.text


# --- 3. the portal's page cache ---------------------------------------------------------------


def test_a_payment_posted_through_one_server_is_on_the_others_next_page(servers, seed):
    a, b = servers.a, servers.b
    code = seed.client(f"C{uuid.uuid4().hex[:6].upper()}")
    case = seed.case(code, principal=100_000, last_name="Lindqvist")
    debtor = requests.Session()
    assert portal_sign_in(a, debtor, case).status_code == 302
    before = set(servers.redis.scan_iter(PAGE_KEYS))
    for server in (b, a, b):  # rendered once, then served from the cache they share
        page = debtor.get(f"{server.base}/portal/", timeout=WAIT)
        assert "$1,000.00" in page.text
    rendered = set(servers.redis.scan_iter(PAGE_KEYS)) - before
    assert len(rendered) == 1  # one page in Redis for both servers

    # A supervisor posts a check on A (the form read from B: its CSRF token is good on A).
    staff = sign_in_across(b, a, seed.user("supervisor"))
    case_page = f"/agency/cases/{case.case_reference}"
    token = csrf(staff.get(f"{b.base}{case_page}", timeout=WAIT).text)
    with a.local.app_context():
        today = agency_today().isoformat()
    posted = staff.post(
        f"{a.base}{case_page}/payments",
        data={
            "pay-amount": "250.00",
            "pay-received_at": today,
            "pay-method": "check",
            "pay-reference": f"H{uuid.uuid4().hex[:8]}",
            "pay-csrf_token": token,
        },
        allow_redirects=False,
        timeout=WAIT,
    )
    assert posted.status_code == 302, posted.text

    page = debtor.get(f"{b.base}/portal/", timeout=WAIT)
    assert "$750.00" in page.text and "$1,000.00" not in page.text
    assert len(set(servers.redis.scan_iter(PAGE_KEYS)) - before) == 2  # the new version too
    assert "$750.00" in debtor.get(f"{a.base}/portal/", timeout=WAIT).text


# --- 4. jobs ----------------------------------------------------------------------------------


def registered(redis: Redis) -> dict[int, str]:
    """The RQ workers registered in Redis: {pid: name}."""
    return {worker.pid: worker.name for worker in Worker.all(connection=redis)}


def test_a_job_asked_for_on_one_server_is_run_by_the_other_servers_worker(servers, seed):
    a, b = servers.a, servers.b
    first, second = servers.workers
    ours = {first.pid, second.pid}
    workers = wait_for(
        lambda: ours <= set(registered(servers.redis)) and registered(servers.redis),
        "both workers to register in Redis",
        STARTING,
    )
    stop(first)  # worker 1 (A's, say) goes: worker 2 must run what A asks for
    wait_for(lambda: first.pid not in registered(servers.redis), "worker 1 to sign off", 60)
    assert second.pid in registered(servers.redis)

    code = seed.client(f"J{uuid.uuid4().hex[:6].upper()}")
    client_user = sign_in_across(a, b, seed.user("client", code))
    batch_page = upload(a, client_user, referral_file(4, uuid.uuid4().hex[:6]))
    answer = confirm(client_user, batch_page)
    assert answer.status_code == 200 and "Importing" in answer.text
    batch_id = int(batch_page.rsplit("/", 1)[1])

    def status():
        return a.read(lambda s: s.get(ReferralBatch, batch_id).status)

    wait_for(lambda: status() == "imported", "the worker to import the file", 120)
    with a.local.app_context():
        queue = a.local.extensions["recourse.jobs"].queue("imports")

    def finished():
        return [
            job
            for job in map(queue.fetch_job, FinishedJobRegistry(queue=queue).get_job_ids())
            if job is not None and job.args == ("referrals.import", batch_id)
        ]

    # The job commits "imported" before RQ files it as finished: wait for that too.
    ran = wait_for(finished, "RQ to file the import job as finished", 60)
    assert [job.worker_name for job in ran] == [workers[second.pid]]
    # ... and the outcome is on B's page.
    page = client_user.get(batch_page.replace(a.base, b.base), timeout=WAIT).text
    assert re.search(r'id="imported-count">4<', page)
