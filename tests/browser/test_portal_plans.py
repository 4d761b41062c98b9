"""A payment plan in Chromium: the debtor chooses one in the portal, saves a card for autopay
with confirmCardSetup (localstripe's Stripe.js confirms the SetupIntent at the fake Stripe),
and sees the plan and the next installment on the case page; axe-core on the plan pages at
desktop and phone widths."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa
import time_machine
from playwright.sync_api import Page, expect

from cases.case import Case
from cases.clients import create_client
from cases.plans import PaymentPlan
from cases.users import create_user
from payments.fees import parse_tiers, set_schedule
from shell.extensions import db
from shell.timezone import agency_today
from tests.browser.kit import assert_no_axe_problems, axe_problems, require_axe, save_screenshot
from tests.browser.test_collector import open_active_case
from tests.browser.test_portal import (  # noqa: F401 - fixtures
    ACTOR,
    browser_app,
    fill_card,
    fixed_day,
    open_case,
    sign_in,
    stripe_server,
)
from tests.conftest import SUITE_DAY


@pytest.fixture(scope="module")
def plan_debtors(browser_app) -> dict[str, str]:  # noqa: F811 - the fixture imported above
    """Active New York cases owing $500.00, inside the validation period; references by last
    name. One plan per case, so one debtor per test."""
    with time_machine.travel(SUITE_DAY, tick=True), browser_app.app_context():
        client = create_client(db.session, "ACME", "Acme Plumbing", actor=ACTOR)
        set_schedule(db.session, client, parse_tiers("90=2500"), actor=ACTOR)
        collector = create_user(
            db.session, "plans@recourse.test", "pw-long-enough-1", "collector", actor=ACTOR
        )
        refs = {}
        for name in ("Planner", "Wide", "Narrow"):
            case = open_active_case(db.session, client, collector, last_name=name, principal=50_000)
            case.validation_period_ends_on = dt.date.today() + dt.timedelta(days=30)
            refs[name] = case.reference
        db.session.commit()
        return refs


def first_payment_day(app) -> dt.date:
    with app.app_context():
        return agency_today() + dt.timedelta(days=7)


def choose_plan(page: Page, first_on: dt.date, autopay: bool = True) -> None:
    page.get_by_label("How often").select_option("monthly")
    page.get_by_label("Number of payments").fill("4")
    page.get_by_label("First payment on").fill(first_on.isoformat())
    if autopay:
        page.get_by_label("Pay automatically with a card I save (autopay)").check()
    page.get_by_role("button", name="See the schedule").click()
    # The whole schedule first; nothing is set up until the debtor confirms it.
    expect(page.get_by_role("heading", name=re.compile("^Check your payment plan"))).to_be_visible()
    expect(page.locator("#schedule tbody tr")).to_have_count(4)
    expect(page.locator("#schedule tfoot")).to_contain_text("$500.00")
    page.get_by_role("button", name="Set up the plan").click()


def test_the_debtor_chooses_a_plan_saves_a_card_and_sees_the_next_installment(
    page: Page,
    browser_app,  # noqa: F811 - the fixture imported above
    plan_debtors,
):
    reference = plan_debtors["Planner"]
    first_on = first_payment_day(browser_app)
    sign_in(page, reference, "Planner")
    open_case(page, reference)
    page.get_by_role("link", name="Set up a payment plan").click()
    expect(
        page.get_by_role("heading", name=f"Set up a payment plan on account {reference}")
    ).to_be_visible()
    expect(page.get_by_text("Monthly: up to 12 payments")).to_be_visible()

    # Too many: refused in plain words, nothing set up.
    page.get_by_label("How often").select_option("monthly")
    page.get_by_label("Number of payments").fill("13")
    page.get_by_label("First payment on").fill(first_on.isoformat())
    page.get_by_role("button", name="See the schedule").click()
    expect(page.get_by_text("That is more payments than this account allows.")).to_be_visible()

    choose_plan(page, first_on)
    expect(page.get_by_role("heading", name="Save a card for autopay")).to_be_visible()
    expect(page.get_by_text("Your plan: 4 payments, Monthly, $500.00 in all.")).to_be_visible()
    expect(page.locator("#authorisation")).to_contain_text("I authorise Recourse Collections")
    fill_card(page, "4242424242424242")
    page.get_by_role("button", name="I agree: save my card").click()

    expect(page.get_by_role("heading", name=f"Account {reference}")).to_be_visible()
    expect(page.get_by_role("status")).to_have_text(
        "Your card is saved. Each installment will be charged on its due date."
    )
    plan_card = page.locator("section").filter(
        has=page.get_by_role("heading", name="Your payment plan")
    )
    expect(plan_card.get_by_text("Autopay is on")).to_be_visible()
    expect(
        plan_card.get_by_text(
            f"Next payment: $125.00 on {first_on:%B} {first_on.day}, {first_on.year}."
        )
    ).to_be_visible()
    rows = plan_card.get_by_role("row")
    expect(rows).to_have_count(5)  # the header and 4 installments
    expect(rows.nth(1)).to_have_text(
        re.compile(rf"{first_on:%B} {first_on.day}, {first_on.year}\s*\$125.00\s*Scheduled")
    )
    expect(plan_card.get_by_role("link", name="Your plan agreement (PDF)")).to_be_visible()
    expect(page.get_by_role("link", name="Set up a payment plan")).to_have_count(0)
    # Pay now on a plan starts at the next installment, not the balance.
    page.get_by_role("link", name="Pay now").click()
    expect(page.get_by_label("Amount to pay (US dollars)")).to_have_value("125.00")

    with browser_app.app_context():
        case = db.session.scalar(sa.select(Case).where(Case.reference == reference))
        plan = db.session.scalar(sa.select(PaymentPlan).where(PaymentPlan.case_id == case.id))
        assert case.status == "plan"
        assert (plan.status, plan.autopay, len(plan.installments)) == ("active", True, 4)
        assert plan.stripe_customer_id.startswith("cus_")
        assert plan.stripe_payment_method_id.startswith("pm_")
        assert plan.consent_text.startswith("I authorise Recourse Collections")
        assert plan.consented_at is not None


@pytest.mark.parametrize("width", [1280, 375])
def test_the_plan_pages_pass_axe_and_fit_a_phone(
    browser,
    live_server,
    browser_app,  # noqa: F811 - the fixture imported above
    plan_debtors,
    width,
):
    require_axe()
    name = "Wide" if width == 1280 else "Narrow"
    reference = plan_debtors[name]
    context = browser.new_context(
        base_url=live_server, bypass_csp=True, viewport={"width": width, "height": 800}
    )
    page = context.new_page()
    found, overflow = {}, {}

    def check(label: str) -> None:
        found[label] = axe_problems(page)
        wide = page.evaluate("document.documentElement.scrollWidth")
        if wide > width:
            overflow[label] = wide

    try:
        sign_in(page, reference, name)
        page.goto(f"/portal/cases/{reference}/plan")
        check("plan choice")
        page.get_by_label("How often").select_option("monthly")
        page.get_by_label("Number of payments").fill("40")
        page.get_by_role("button", name="See the schedule").click()
        expect(page.get_by_role("alert").first).to_be_visible()
        check("plan choice with errors")
        page.get_by_label("Number of payments").fill("4")
        page.get_by_label("First payment on").fill(first_payment_day(browser_app).isoformat())
        page.get_by_label("Pay automatically with a card I save (autopay)").check()
        page.get_by_role("button", name="See the schedule").click()
        expect(page.locator("#schedule tbody tr")).to_have_count(4)
        check("plan review")
        save_screenshot(page, "portal", "plan-review")
        page.get_by_role("button", name="Set up the plan").click()
        expect(page.locator("#card-element input").first).to_be_visible()
        check("autopay card page")
        save_screenshot(page, "portal", "plan-autopay")
        page.goto(f"/portal/cases/{reference}")
        expect(page.get_by_role("heading", name="Your payment plan")).to_be_visible()
        check("case page with a plan")
        save_screenshot(page, "portal", "case-with-plan")
        page.get_by_role("link", name="Pay now").click()
        expect(page.get_by_label("Amount to pay (US dollars)")).to_have_value("125.00")
        check("pay page on a plan")
    finally:
        context.close()
    assert_no_axe_problems(found)
    assert overflow == {}, f"pages wider than {width}px: {overflow}"
