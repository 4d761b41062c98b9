"""An owner's pages in a real browser: the reports (charts with legends, readable text, tables
and CSVs), a month's statements issued from the page with its progress shown, and the
validation notices sent in bulk; axe-core at 1366×768 and at 375 px, screenshots kept."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
import time_machine
from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from cases import audit
from cases.case import Case, change_status, next_references, open_case
from cases.clients import Client, create_client
from cases.contacts import ComplianceAlert, Contact
from cases.debtors import Address, Debtor, match_key
from cases.disputes import Dispute
from cases.jobs import QUEUES
from cases.plans import record_promise
from cases.users import User, create_user
from payments.fees import parse_tiers, set_schedule
from payments.posting import post_payment, post_placement
from payments.statements import Statement
from shell.extensions import db
from tests.browser.conftest import build_browser_app
from tests.browser.kit import assert_no_axe_problems, axe_problems, require_axe, save_screenshot
from tests.conftest import SUITE_DAY

ADMIN = "owner@recourse.test"
SAM = "sam@recourse.test"
PASSWORD = "correct-horse-battery"
ACTOR = audit.Actor(None, "test")
WIDTHS = ((1366, 768), (375, 800))
REDIS = os.environ.get("TEST_REDIS_URL", "")


@pytest.fixture(scope="module")
def browser_app(tmp_path_factory) -> Iterator[Flask]:
    """With TEST_REDIS_URL the run's jobs wait on RQ queues for a worker (so the page shows
    them counted as they finish); without it they run in-process, as the embedded default."""
    if REDIS:
        from redis import Redis
        from rq import Queue

        connection = Redis.from_url(REDIS)
        for name in QUEUES:
            Queue(name, connection=connection).empty()
    yield from build_browser_app(tmp_path_factory, REDIS_URL=REDIS)


def work_off(app: Flask) -> None:
    """A burst of `flask worker`: what is queued runs, here."""
    from rq import SimpleWorker

    runner = app.extensions["recourse.jobs"]
    with app.app_context():
        queues = [runner.queue(name) for name in QUEUES]
        SimpleWorker(queues, connection=runner.connection).work(burst=True)


def a_case(
    session: Session,
    client: Client,
    name: str,
    *,
    referred_on: dt.date,
    principal: int,
    collector: User | None = None,
    status: str = "active",
) -> Case:
    debtor = Debtor(
        kind="consumer",
        first_name="Maria",
        last_name=name,
        match_key=match_key("consumer", f"Maria {name}", "10001"),
        addresses=[Address(line1="1 Main St", city="New York", state="NY", postal_code="10001")],
    )
    session.add(debtor)
    reference = next_references(session, referred_on)[0]
    case = open_case(
        session,
        client=client,
        debtor=debtor,
        reference=reference,
        account_number=f"A-{name.upper()}",
        referred_on=referred_on,
        due_date=referred_on - dt.timedelta(days=120),
        actor=ACTOR,
    )
    post_placement(session, case, "principal", principal, f"test:{reference}", referred_on)
    if status == "active":
        change_status(session, case, "active", actor=ACTOR, reason="validation notice sent")
        case.validation_sent_at = dt.datetime.combine(referred_on, dt.time(15), tzinfo=dt.UTC)
    case.assigned_to_id = collector.id if collector else None
    session.flush()
    return case


def pay(session: Session, case: Case, cents: int, day: dt.date, key: str) -> None:
    post_payment(
        session, case, cents, external_id=key, received_at=day, method="check", actor=ACTOR
    )


@pytest.fixture(scope="module")
def book(browser_app) -> dict[str, str]:
    """Two clients with cases placed in September and October, payments, a kept and a broken
    promise, an alert and two disputes, and two new cases waiting for their notice."""
    with time_machine.travel(SUITE_DAY, tick=True), browser_app.app_context():
        session = db.session
        create_user(session, ADMIN, PASSWORD, "admin", actor=ACTOR)
        sam = create_user(session, SAM, PASSWORD, "collector", actor=ACTOR)
        clients = {}
        for code, name in (("ACME", "Acme Plumbing"), ("BETA", "Beta Supply")):
            clients[code] = create_client(session, code, name, actor=ACTOR)
            set_schedule(session, clients[code], parse_tiers("90=2500"), actor=ACTOR)
        september = a_case(
            session, clients["ACME"], "Adams", referred_on=dt.date(2026, 9, 1),
            principal=100_000, collector=sam,
        )  # fmt: skip
        october = a_case(
            session, clients["BETA"], "Baker", referred_on=dt.date(2026, 10, 1),
            principal=200_000, collector=sam,
        )  # fmt: skip
        pay(session, september, 10_000, dt.date(2026, 9, 20), "s0")
        pay(session, september, 20_000, dt.date(2026, 10, 15), "s1")
        pay(session, october, 40_000, dt.date(2026, 10, 20), "o1")
        with time_machine.travel(dt.datetime(2026, 11, 2, 15, tzinfo=dt.UTC), tick=False):
            for case, due in ((september, dt.date(2026, 11, 10)), (october, dt.date(2026, 11, 12))):
                record_promise(
                    session, case, amount_cents=5_000, due_on=due,
                    today=dt.date(2026, 11, 2), actor=audit.Actor.user(sam),
                )  # fmt: skip
        pay(session, september, 5_000, dt.date(2026, 11, 9), "s2")  # kept; October's broken
        at = dt.datetime(2026, 11, 10, 15, tzinfo=dt.UTC)
        contact = Contact(
            case_id=september.id, channel="call", direction="outbound",
            outcome="conversation", occurred_at=at, user_id=sam.id,
        )  # fmt: skip
        session.add(contact)
        session.flush()
        session.add_all(
            [
                ComplianceAlert(case_id=september.id, contact_id=contact.id, created_at=at),
                Dispute(
                    case_id=october.id,
                    received_at=at,
                    channel="letter",
                    reason="not mine",
                    within_validation_period=False,
                    status="verified",
                    resolved_at=at,
                ),  # fmt: skip
                Dispute(
                    case_id=september.id,
                    received_at=at,
                    channel="portal",
                    reason="wrong amount",
                    within_validation_period=False,
                ),  # fmt: skip
            ]
        )
        waiting = [
            a_case(
                session, clients["ACME"], name, referred_on=dt.date(2026, 11, 20),
                principal=30_000, status="new",
            ).reference
            for name in ("Clark", "Davis")
        ]  # fmt: skip
        session.commit()
        return {"waiting": ",".join(waiting)}


def sign_in(page: Page, email: str = ADMIN) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/agency/$"))


SMALLEST_TEXT = """() => Math.min(...[...document.querySelectorAll('svg.chart')].flatMap(svg => {
  const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
  return [...svg.querySelectorAll('text')].map(t => parseFloat(t.getAttribute('font-size')) * scale);
}))"""


@pytest.mark.parametrize("width,height", WIDTHS)
def test_the_reports_read_well_and_pass_axe(browser, live_server, book, width, height):
    require_axe()
    context = browser.new_context(
        base_url=live_server, bypass_csp=True, viewport={"width": width, "height": height}
    )
    page = context.new_page()
    try:
        sign_in(page)
        page.goto("/agency/reports")
        charts = page.locator("svg.chart")
        expect(charts).to_have_count(8)
        alerts = page.locator("#alerts svg")
        expect(alerts.locator("text", has_text=re.compile("^Raised$"))).to_have_count(1)
        expect(alerts.locator("text", has_text=re.compile("^Resolved$"))).to_have_count(1)
        disputes = page.locator("#disputes svg")
        expect(disputes.locator("rect title", has_text="Nov 26, Opened: 2")).to_have_count(1)
        expect(disputes.locator("rect title", has_text="Nov 26, Resolved: 1")).to_have_count(1)
        vintages = page.locator("#vintages")
        expect(vintages.locator("polyline")).to_have_count(3)  # Sep, Oct, Nov
        vintages.get_by_text("Figures").click()
        row = vintages.get_by_role("row").filter(has_text="2026-09")
        expect(row.locator("td").nth(3)).to_have_text("10.00%")
        expect(row.locator("td").nth(5)).to_have_text("35.00%")
        promises = page.locator("#promises")
        promises.get_by_text("Figures").click()
        sam = promises.get_by_role("row").filter(has_text=SAM)
        expect(sam.locator("td").nth(1)).to_have_text("2")  # made
        expect(sam.locator("td").nth(3)).to_have_text("1")  # kept
        expect(sam.locator("td").nth(5)).to_have_text("1")  # broken
        if width >= 1366:
            assert page.evaluate(SMALLEST_TEXT) >= 12  # chart text reads at 12px or more
        with page.expect_download() as download:
            promises.get_by_role("link", name=re.compile("Download CSV")).click()
        assert SAM in download.value.path().read_text()
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        found = {"/agency/reports": axe_problems(page)}
        save_screenshot(page, "reports", "reports")
        assert_no_axe_problems(found)
    finally:
        context.close()


def test_statements_issued_from_the_page_with_progress(browser, live_server, browser_app, book):
    require_axe()
    context = browser.new_context(
        base_url=live_server, bypass_csp=True, viewport={"width": 1366, "height": 768}
    )
    page = context.new_page()
    try:
        sign_in(page)
        page.goto("/agency/statements")
        page.get_by_role("link", name="Issue a month's statements").click()
        expect(page.get_by_label("Month (YYYY-MM)")).to_have_value("2026-10")
        found = {"runs": axe_problems(page)}
        save_screenshot(page, "reports", "statement-runs")
        page.get_by_role("button", name="Issue the statements").click()
        expect(page).to_have_url(re.compile(r"/agency/statements/runs/\d+$"))
        status = page.get_by_role("status")
        if REDIS:  # waiting for a worker: counted as they finish, without reloading by hand
            expect(status).to_contain_text("0 of 2 clients done")
            found["run, going"] = axe_problems(page)
            save_screenshot(page, "reports", "statement-run-going")
            work_off(browser_app)
        expect(status).to_contain_text(
            "2 of 2 clients done: 2 issued, 0 already issued (unchanged), 0 failed."
        )
        expect(page.get_by_role("heading", name="Finished")).to_be_visible()
        expect(page.get_by_role("link", name="ST-ACME-2026-10", exact=True)).to_be_visible()
        expect(page.get_by_role("link", name="ST-BETA-2026-10", exact=True)).to_be_visible()
        row = page.get_by_role("row").filter(has_text="ST-BETA-2026-10")
        expect(row).to_contain_text("$300.00")  # 400.00 collected less 25% fees
        with page.expect_download() as download:
            row.get_by_role("link", name=re.compile("^PDF")).click()
        assert download.value.path().read_bytes().startswith(b"%PDF")
        found["run, finished"] = axe_problems(page)
        save_screenshot(page, "reports", "statement-run")

        # Once more: nothing issued twice.
        page.goto("/agency/statements/runs")
        page.get_by_role("button", name="Issue the statements").click()
        if REDIS:
            work_off(browser_app)
        expect(page.get_by_role("status")).to_contain_text(
            "2 of 2 clients done: 0 issued, 2 already issued (unchanged)"
        )
        with browser_app.app_context():
            assert db.session.scalar(sa.select(sa.func.count()).select_from(Statement)) == 2
            db.session.remove()
        page.set_viewport_size({"width": 375, "height": 800})
        page.reload()
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        found["run, phone"] = axe_problems(page)
        save_screenshot(page, "reports", "statement-run")
        page.goto("/agency/statements/runs")
        found["runs, phone"] = axe_problems(page)
        save_screenshot(page, "reports", "statement-runs")
        assert_no_axe_problems(found)
    finally:
        context.close()


def test_notices_sent_in_bulk_from_the_page(browser, live_server, book):
    require_axe()
    context = browser.new_context(
        base_url=live_server, bypass_csp=True, viewport={"width": 375, "height": 800}
    )
    page = context.new_page()
    try:
        sign_in(page)
        page.goto("/agency/notices")
        expect(page.locator("#waiting-count")).to_have_text("2 case(s) waiting for their notice.")
        found = {"notices, phone": axe_problems(page)}
        save_screenshot(page, "reports", "notices")
        page.get_by_role("button", name="Send all 2 waiting notice(s)").click()
        expect(page.get_by_text(re.compile(r"2 notice\(s\) sent in print run \d+"))).to_be_visible()
        expect(page.get_by_text("No notices are waiting.")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        found["notices sent, phone"] = axe_problems(page)
        save_screenshot(page, "reports", "notices-sent")
        page.set_viewport_size({"width": 1366, "height": 768})
        page.reload()
        found["notices"] = axe_problems(page)
        save_screenshot(page, "reports", "notices-sent")
        assert_no_axe_problems(found)
    finally:
        context.close()
