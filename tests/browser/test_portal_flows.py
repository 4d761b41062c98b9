"""The debtor's case page in Chromium at desktop and phone widths: a new case's validation
information, the words once the dispute period has ended, a payment history whose receipts
stay on a phone's screen, and a plan that exists only once its schedule is confirmed (leaving
at the review writes nothing). axe-core on every page, no page wider than the screen, and
screenshots kept under build/screenshots/portal/."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa
import time_machine
from playwright.sync_api import Page, expect

from cases import audit
from cases.case import Case, change_status, next_references, open_case
from cases.clients import create_client
from cases.debtors import Address, Debtor, Email, Phone, match_key
from cases.plans import PaymentPlan
from payments.fees import parse_tiers, set_schedule
from payments.posting import post_payment, post_placement
from shell.extensions import db
from shell.timezone import agency_today
from tests.browser.kit import (
    assert_no_axe_problems,
    axe_problems,
    overflow_width,
    require_axe,
    save_screenshot,
)
from tests.conftest import SUITE_DAY

ACTOR = audit.Actor(None, "test")
REFERRED_ON = dt.date(2026, 11, 2)
WIDTHS = {1280: "Wide", 375: "Narrow"}


def _case(session, client, last_name: str, principal: int = 50_000) -> Case:
    debtor = Debtor(
        kind="consumer",
        first_name="Maria",
        last_name=last_name,
        match_key=match_key("consumer", f"Maria {last_name}", "10001"),
        addresses=[Address(line1="1 Main St", city="New York", state="NY", postal_code="10001")],
        phones=[Phone(number="+12125550100", type="mobile")],
        emails=[Email(address=f"{last_name.lower()}@example.com")],
    )
    session.add(debtor)
    case = open_case(
        session,
        client=client,
        debtor=debtor,
        reference=next_references(session, REFERRED_ON)[0],
        account_number=f"A-{last_name.upper()}",
        referred_on=REFERRED_ON,
        due_date=REFERRED_ON - dt.timedelta(days=120),
        actor=ACTOR,
    )
    post_placement(session, case, "principal", principal, f"test:{case.reference}", REFERRED_ON)
    return case


def _noticed(session, case: Case, ends_on: dt.date) -> Case:
    change_status(session, case, "active", actor=ACTOR, reason="validation notice sent")
    case.validation_sent_at = dt.datetime(2026, 11, 3, 15, 0, tzinfo=dt.UTC)
    case.validation_period_ends_on = ends_on
    return case


@pytest.fixture(scope="module")
def debtors(browser_app) -> dict[str, str]:
    """For each width: a new case (no notice yet), one past its dispute period, one with
    payments, one to set a plan up on. References by last name."""
    with time_machine.travel(SUITE_DAY, tick=True), browser_app.app_context():
        client = create_client(db.session, "ACME", "Acme Plumbing", actor=ACTOR)
        set_schedule(db.session, client, parse_tiers("90=2500"), actor=ACTOR)
        today = dt.date.today()
        refs = {}
        for suffix in WIDTHS.values():
            refs[f"Newcomer{suffix}"] = _case(db.session, client, f"Newcomer{suffix}").reference
            lapsed = _noticed(
                db.session,
                _case(db.session, client, f"Lapsed{suffix}"),
                dt.date(2026, 11, 20),
            )
            refs[f"Lapsed{suffix}"] = lapsed.reference
            payer = _noticed(
                db.session,
                _case(db.session, client, f"Historian{suffix}"),
                today + dt.timedelta(days=30),
            )
            for n, (amount, direct) in enumerate(
                [(12_345, False), (2_500, True), (100_000 - 99_999, False), (7_000, False)]
            ):
                post_payment(
                    db.session,
                    payer,
                    amount,
                    external_id=f"check:{suffix}:{n}",
                    received_at=REFERRED_ON + dt.timedelta(days=5 + n),
                    method="check",
                    actor=ACTOR,
                    direct=direct,
                )
            refs[f"Historian{suffix}"] = payer.reference
            planner = _noticed(
                db.session,
                _case(db.session, client, f"Scheduler{suffix}"),
                today + dt.timedelta(days=30),
            )
            refs[f"Scheduler{suffix}"] = planner.reference
        db.session.commit()
        return refs


@pytest.fixture
def phone_or_desktop(browser, live_server, request):
    """A page at the test's width, allowed to inject axe-core."""
    width = request.param
    context = browser.new_context(
        base_url=live_server, bypass_csp=True, viewport={"width": width, "height": 800}
    )
    yield context.new_page(), width, WIDTHS[width]
    context.close()


def sign_in_to_case(page: Page, reference: str, last_name: str) -> None:
    page.goto("/portal/login")
    page.get_by_label("Case reference").fill(reference)
    page.get_by_label("Last name, or company name").fill(last_name)
    page.get_by_label("ZIP code").fill("10001")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name=re.compile("^Hello"))).to_be_visible()
    page.get_by_role("link", name=f"See details {reference}").click()
    expect(page.get_by_role("heading", name=f"Account {reference}")).to_be_visible()


class Checks:
    """axe-core and the page's width, page by page, asserted together at the end."""

    def __init__(self, page: Page, width: int):
        self.page, self.width = page, width
        self.found: dict[str, list] = {}
        self.overflow: dict[str, int] = {}

    def __call__(self, label: str) -> None:
        self.found[label] = axe_problems(self.page)
        wide = overflow_width(self.page)
        if wide > self.width:
            self.overflow[label] = wide

    def assert_clean(self) -> None:
        assert_no_axe_problems(self.found)
        assert self.overflow == {}, f"pages wider than {self.width}px: {self.overflow}"


pytestmark = pytest.mark.parametrize("phone_or_desktop", list(WIDTHS), indirect=True)


def test_a_new_case_shows_its_validation_information(phone_or_desktop, debtors):
    require_axe()
    page, width, suffix = phone_or_desktop
    check = Checks(page, width)
    name = f"Newcomer{suffix}"
    sign_in_to_case(page, debtors[name], name)

    rights = page.locator("section").filter(
        has=page.get_by_role("heading", name="Your right to dispute")
    )
    expect(rights).to_contain_text("is a debt collector")
    expect(rights).to_contain_text("a debt that you owe to Acme Plumbing")
    expect(rights).to_contain_text(
        "You can dispute all or part of this debt until 30 days after you receive that notice."
    )
    expect(rights).to_contain_text("ask for the name and address of the original creditor")
    expect(page.get_by_role("heading", name="Why you owe this amount")).to_be_visible()
    expect(page.get_by_text("You can dispute until")).to_have_count(0)
    check("new case")
    save_screenshot(page, "portal", "case-new")
    check.assert_clean()


def test_after_the_dispute_period_the_page_says_what_still_applies(phone_or_desktop, debtors):
    require_axe()
    page, width, suffix = phone_or_desktop
    check = Checks(page, width)
    name = f"Lapsed{suffix}"
    sign_in_to_case(page, debtors[name], name)

    expect(page.get_by_text("You can dispute until")).to_have_count(0)
    expect(page.get_by_text("Ended on November 20, 2026", exact=True)).to_be_visible()
    rights = page.locator("section").filter(
        has=page.get_by_role("heading", name="Your right to dispute")
    )
    expect(rights).to_contain_text("The 30 days to dispute this debt ended on November 20, 2026.")
    expect(rights).to_contain_text("Collection does not stop while we do.")
    check("case past its dispute period")
    save_screenshot(page, "portal", "case-period-ended")

    # The same in Spanish, the date written out in Spanish.
    page.get_by_role("button", name="Español").click()
    expect(page.get_by_text("Terminó el 20 de noviembre de 2026", exact=True)).to_be_visible()
    check("case past its dispute period, in Spanish")
    page.get_by_role("button", name="English").click()
    page.get_by_role("link", name="Dispute this debt").click()
    expect(page.get_by_role("heading", name=re.compile("^Dispute account"))).to_be_visible()
    check("dispute page")
    check.assert_clean()


def test_the_payment_history_keeps_every_receipt_on_a_phone_screen(phone_or_desktop, debtors):
    require_axe()
    page, width, suffix = phone_or_desktop
    check = Checks(page, width)
    name = f"Historian{suffix}"
    sign_in_to_case(page, debtors[name], name)

    history = page.locator("section").filter(
        has=page.get_by_role("heading", name="Payment history")
    )
    receipts = history.get_by_role("link", name=re.compile("^Receipt"))
    expect(receipts).to_have_count(3)  # the agency's three payments; none for the direct one
    expect(history).to_contain_text("Paid to Acme Plumbing")
    for n in range(3):
        link = receipts.nth(n)
        link.scroll_into_view_if_needed()
        box = link.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, (n, box)
    check("case with payments")
    save_screenshot(page, "portal", "case-payment-history")

    receipts.first.click()
    expect(page.get_by_role("heading", name="Receipt")).to_be_visible()
    check("receipt")
    save_screenshot(page, "portal", "receipt")
    check.assert_clean()


def test_a_plan_exists_only_once_its_whole_schedule_is_confirmed(
    phone_or_desktop, debtors, browser_app
):
    require_axe()
    page, width, suffix = phone_or_desktop
    check = Checks(page, width)
    name = f"Scheduler{suffix}"
    reference = debtors[name]
    with browser_app.app_context():
        first_on = agency_today() + dt.timedelta(days=3)
    sign_in_to_case(page, reference, name)

    def plans() -> int:
        with browser_app.app_context():
            case_id = db.session.scalar(sa.select(Case.id).where(Case.reference == reference))
            return len(
                db.session.scalars(
                    sa.select(PaymentPlan).where(PaymentPlan.case_id == case_id)
                ).all()
            )

    page.get_by_role("link", name="Set up a payment plan").click()
    page.get_by_label("How often").select_option("biweekly")
    page.get_by_label("Number of payments").fill("3")
    page.get_by_label("Down payment in US dollars (optional)").fill("50")
    page.get_by_label("First payment on").fill(first_on.isoformat())
    check("plan choice")
    page.get_by_role("button", name="See the schedule").click()

    rows = page.locator("#schedule tbody tr")
    expect(rows).to_have_count(4)  # the down payment and three
    expect(rows.nth(0)).to_contain_text("$50.00")
    expect(rows.nth(3)).to_contain_text("$150.00")
    expect(page.locator("#schedule tfoot")).to_contain_text("$500.00")
    expect(page.get_by_text("The plan is not set up until you confirm it.")).to_be_visible()
    check("plan review")
    save_screenshot(page, "portal", "plan-review-no-autopay")

    # Leaving at the review: no plan.
    page.get_by_role("link", name="Back to the account").click()
    expect(page.get_by_role("link", name="Set up a payment plan")).to_be_visible()
    expect(page.get_by_role("heading", name="Your payment plan")).to_have_count(0)
    assert plans() == 0

    # Back, and a change of mind: the terms come back as chosen.
    page.get_by_role("link", name="Set up a payment plan").click()
    page.get_by_label("How often").select_option("biweekly")
    page.get_by_label("Number of payments").fill("3")
    page.get_by_label("Down payment in US dollars (optional)").fill("50")
    page.get_by_label("First payment on").fill(first_on.isoformat())
    page.get_by_role("button", name="See the schedule").click()
    page.get_by_role("button", name="Change the plan").click()
    expect(page.get_by_label("Number of payments")).to_have_value("3")
    assert plans() == 0
    page.get_by_label("Down payment in US dollars (optional)").fill("")
    page.get_by_label("Number of payments").fill("4")
    page.get_by_role("button", name="See the schedule").click()
    expect(rows).to_have_count(4)
    expect(rows.nth(0)).to_contain_text("$125.00")
    page.get_by_role("button", name="Set up the plan").click()

    expect(page.get_by_role("status")).to_contain_text("Your payment plan is set up.")
    expect(page.get_by_role("heading", name="Your payment plan")).to_be_visible()
    assert plans() == 1
    check("case with the new plan")
    save_screenshot(page, "portal", "case-new-plan")

    page.get_by_role("link", name="Pay now").click()
    expect(page.get_by_label("Amount to pay (US dollars)")).to_have_value("125.00")
    expect(page.get_by_text("Your next plan payment: $125.00")).to_be_visible()
    check("pay page on a plan")
    save_screenshot(page, "portal", "pay-next-installment")
    check.assert_clean()
