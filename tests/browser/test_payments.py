"""A supervisor posts a check on a case in a real browser, is refused the same check twice,
then reverses it when it bounces; a collector on the same case is offered no reversal."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa
import time_machine
from playwright.sync_api import Browser, Page, expect

from cases import audit
from cases.case import Case
from cases.clients import create_client
from cases.ledger import LedgerEntry
from cases.users import create_user
from payments.fees import parse_tiers, set_schedule
from shell.extensions import db
from tests.browser.test_collector import open_active_case
from tests.conftest import SUITE_DAY

SUPERVISOR = "supervisor@recourse.test"
COLLECTOR = "payments-collector@recourse.test"
PASSWORD = "correct-horse-battery"
ACTOR = audit.Actor(None, "test")
CHECK = "5501"
# The client's schedule: 25% on cases referred 90 days or more past due (this one is 120).
FEE = "$30.13"  # 25% of $120.50 = $30.125, rounded half-up


@pytest.fixture(scope="module")
def case_reference(browser_app) -> str:
    """An active New York case owing $500.00, a supervisor and a collector; committed for
    real. The case's reference."""
    # A module fixture runs before the autouse `fixed_day`: put it on the suite's day too.
    with time_machine.travel(SUITE_DAY, tick=True), browser_app.app_context():
        client = create_client(db.session, "ACME", "Acme Plumbing", actor=ACTOR)
        set_schedule(db.session, client, parse_tiers("90=2500"), actor=ACTOR)
        create_user(db.session, SUPERVISOR, PASSWORD, "supervisor", actor=ACTOR)
        collector = create_user(db.session, COLLECTOR, PASSWORD, "collector", actor=ACTOR)
        case = open_active_case(db.session, client, collector, last_name="Payer", principal=50_000)
        db.session.commit()
        return case.reference


def sign_in(page: Page, email: str) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/agency/$"))


def post_check(page: Page) -> None:
    page.get_by_label("Amount received").fill("120.50")
    page.get_by_label("Date received").fill("2026-11-22")
    page.get_by_label("Method").select_option("check")
    page.get_by_label("Check number or transaction id").fill(CHECK)
    page.get_by_role("button", name="Post payment").click()


def test_a_supervisor_posts_a_check_and_reverses_it_when_it_bounces(
    page: Page, browser: Browser, live_server: str, browser_app, case_reference: str
):
    reference = case_reference
    balance = page.get_by_role("heading", name=re.compile(r"^Balance"))
    ledger = page.locator("table").filter(has=page.get_by_role("columnheader", name="Kind"))
    payment_row = ledger.get_by_role("row").filter(has_text=f":{CHECK}")
    reversal_row = ledger.get_by_role("row").filter(has_text="reversal")

    sign_in(page, SUPERVISOR)
    page.goto(f"/agency/cases/{reference}?tab=account")
    expect(balance).to_have_text("Balance $500.00")
    expect(payment_row).to_have_count(0)

    post_check(page)
    expect(page).to_have_url(re.compile(rf"/agency/cases/{reference}(\?tab=account)?$"))
    expect(page.get_by_role("status")).to_have_text("Payment of $120.50 posted.")
    expect(payment_row).to_have_count(1)
    expect(payment_row.get_by_role("cell").nth(0)).to_have_text("2026-11-22")
    expect(payment_row.get_by_role("cell").nth(1)).to_have_text("payment")
    expect(payment_row.get_by_role("cell").nth(3)).to_have_text("−$120.50")
    expect(payment_row.get_by_role("cell").nth(4)).to_have_text(FEE)
    expect(balance).to_have_text("Balance $379.50")

    # The same check again: refused, nothing posted, the form kept for correction.
    post_check(page)
    expect(page.get_by_role("alert")).to_contain_text(
        f"check {CHECK} from this debtor was already posted on"
    )
    expect(balance).to_have_text("Balance $379.50")
    expect(payment_row).to_have_count(1)
    expect(page.get_by_label("Check number or transaction id")).to_have_value(CHECK)

    # The check bounced: reverse all of it from the payment's row.
    page.goto(f"/agency/cases/{reference}?tab=account")
    payment_row.get_by_label("Why").fill("check bounced")
    expect(payment_row.get_by_label("Amount to reverse")).to_have_value("")
    payment_row.get_by_role("button", name="Reverse").click()
    expect(page).to_have_url(re.compile(rf"/agency/cases/{reference}(\?tab=account)?$"))
    expect(page.get_by_role("status")).to_have_text("Reversed $120.50; the fee went back with it.")
    expect(reversal_row).to_have_count(1)
    expect(reversal_row.get_by_role("cell").nth(0)).to_have_text("2026-11-23")
    expect(reversal_row.get_by_role("cell").nth(1)).to_have_text("reversal — check bounced")
    expect(reversal_row.get_by_role("cell").nth(3)).to_have_text("$120.50")
    expect(reversal_row.get_by_role("cell").nth(4)).to_have_text(f"−{FEE}")
    expect(balance).to_have_text("Balance $500.00")
    # A reversal is not itself reversible.
    expect(reversal_row.get_by_role("button", name="Reverse")).to_have_count(0)

    # A collector on the same case sees the ledger but cannot reverse, nor post a reversal.
    context = browser.new_context(base_url=live_server)
    try:
        collector = context.new_page()
        sign_in(collector, COLLECTOR)
        collector.goto(f"/agency/cases/{reference}?tab=account")
        expect(collector.get_by_role("heading", name=re.compile(r"^Balance"))).to_have_text(
            "Balance $500.00"
        )
        expect(collector.get_by_role("row").filter(has_text=f":{CHECK}")).to_have_count(1)
        expect(collector.get_by_role("columnheader", name="Reverse")).to_have_count(0)
        expect(collector.get_by_role("button", name="Reverse")).to_have_count(0)
        token = collector.locator("input[name='pay-csrf_token']").input_value()
        with browser_app.app_context():
            payment_id = db.session.scalar(
                sa.select(LedgerEntry.id).where(LedgerEntry.external_id.like(f"check:%:{CHECK}"))
            )
        refused = collector.request.post(
            f"/agency/cases/{reference}/payments/{payment_id}/reverse",
            form={"rev-csrf_token": token, "rev-reason": "collector tries"},
            max_redirects=0,
        )
        assert refused.status == 403, refused.status
    finally:
        context.close()

    with browser_app.app_context():
        case = db.session.scalar(sa.select(Case).where(Case.reference == reference))
        entries = db.session.scalars(
            sa.select(LedgerEntry)
            .where(LedgerEntry.case_id == case.id, LedgerEntry.kind != "placement")
            .order_by(LedgerEntry.id)
        ).all()
        assert [e.kind for e in entries] == ["payment", "reversal"]
        payment, reversal = entries
        assert (payment.amount_cents, payment.fee_cents, payment.method) == (
            -12_050,
            3_013,
            "check",
        )
        assert payment.external_id.startswith("check:") and payment.external_id.endswith(
            f":{CHECK}"
        )
        assert payment.received_at == dt.date(2026, 11, 22)
        assert reversal.reverses_id == payment.id
        assert reversal.amount_cents == 12_050
        assert reversal.fee_cents == -payment.fee_cents
        assert reversal.memo == "check bounced"
        assert case.status == "active"
