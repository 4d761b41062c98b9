"""Redis taken away (our own redis-server stopped) while the server is asked for work that runs
as jobs: a client confirming a referral file, a collector emailing a debtor. Neither page
fails; the jobs wait in the outbox; once Redis is back, the sweep sends them and a worker runs
them: the file is imported, the email reaches the mail server. No job is lost."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
import requests
import sqlalchemy as sa
from rq import SimpleWorker

from cases.jobs import QUEUES, OutboxJob
from cases.messages import OutboundMessage
from cases.referrals import ReferralBatch
from shell.job_runner import sweep
from tests.cases.test_referrals import HEADER
from tests.faults.conftest import csrf, daytime_place, staff_login, wait_for


def referral_file(rows: int, prefix: str) -> bytes:
    """`rows` consumer accounts, 200 days past due, each with its own account number."""
    due = (dt.date.today() - dt.timedelta(days=200)).isoformat()
    lines = [HEADER] + [
        f"{prefix}-{n},consumer,Ann,Lee{n},,,,{n} Main St,New York,NY,10001,250.00,,,{due},"
        for n in range(rows)
    ]
    return ("\n".join(lines) + "\n").encode()


def upload(world, browser: requests.Session, data: bytes) -> str:
    """The file uploaded and previewed; the batch page's URL."""
    token = csrf(browser.get(f"{world.base}/client/referrals", timeout=10).text)
    answer = browser.post(
        f"{world.base}/client/referrals",
        data={"csrf_token": token},
        files={"file": ("faults.csv", data, "text/csv")},
        allow_redirects=False,
        timeout=60,
    )
    assert answer.status_code == 302, answer.text
    return world.base + answer.headers["Location"]


def confirm(browser: requests.Session, batch_page: str) -> requests.Response:
    token = csrf(browser.get(batch_page, timeout=10).text)
    return browser.post(f"{batch_page}/confirm", data={"csrf_token": token}, timeout=30)


def batch_status(world, batch_page: str) -> str:
    batch_id = int(batch_page.rsplit("/", 1)[1])
    return world.read(lambda s: s.get(ReferralBatch, batch_id).status)


def run_jobs(world) -> int:
    """What `flask jobs sweep --older-than 0` and a burst of `flask worker` do, here."""
    with world.local.app_context():
        sent = sweep(dt.timedelta(0))
        runner = world.local.extensions["recourse.jobs"]
        queues = [runner.queue(name) for name in QUEUES]
        SimpleWorker(queues, connection=runner.connection).work(burst=True)
    return sent


@pytest.fixture
def redis_away(world):
    world.redis.stop()
    yield
    if world.redis.process is None:
        world.redis.start()


def test_with_redis_away_no_page_fails_and_no_job_is_lost(world, seed, redis_away):
    code = seed.client(f"R{uuid.uuid4().hex[:6].upper()}")
    client_user = staff_login(world, seed.user("client", code))
    # The email needs daytime at the debtor's; at night in every US zone (about 06:00-14:00
    # UTC) no email may be sent at all, and only the file's job is tested.
    place = daytime_place()
    case = seed.case(code, place=place or ("NY", "10001"), email="ann@example.com")
    collector = staff_login(world, seed.user("supervisor"))
    case_page = f"{world.base}/agency/cases/{case.case_reference}"

    world.redis.start()  # the upload itself needs no job; then Redis goes away again
    batch_page = upload(world, client_user, referral_file(3, uuid.uuid4().hex[:6]))
    world.redis.stop()

    answer = confirm(client_user, batch_page)
    assert answer.status_code == 200, answer.text
    assert "Importing" in answer.text  # "you can leave this page; the import goes on"
    assert batch_status(world, batch_page) == "queued"

    if place:
        token = csrf(collector.get(case_page, timeout=10).text)
        answer = collector.post(
            f"{case_page}/emails",
            data={
                "csrf_token": token,
                "email-to": "ann@example.com",
                "email-template": "payment_reminder",
            },
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        assert "Email queued to ann@example.com" in answer.text

    waiting = world.read(
        lambda s: s.scalars(
            sa.select(OutboxJob.name).where(OutboxJob.sent_at.is_(None)).order_by(OutboxJob.id)
        ).all()
    )
    assert waiting == ["referrals.import", *(["mail.deliver"] if place else [])]

    world.redis.start()
    assert run_jobs(world) == len(waiting)
    assert batch_status(world, batch_page) == "imported"
    page = client_user.get(batch_page, timeout=10).text
    assert re.search(r'id="imported-count">3<', page)
    if place:
        wait_for(
            lambda: any(m["To"] == "ann@example.com" for m in world.inbox.messages),
            "the email at the mail server",
        )
        statuses = world.read(
            lambda s: s.scalars(
                sa.select(OutboundMessage.status).where(
                    OutboundMessage.to_address == "ann@example.com"
                )
            ).all()
        )
        assert statuses == ["sent"]
    assert (
        world.read(
            lambda s: s.scalar(sa.select(sa.func.count()).where(OutboxJob.sent_at.is_(None)))
        )
        == 0
    )
