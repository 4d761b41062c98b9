"""The early-out account's page in a real browser (issue #20): branded as the client, no
collection language, axe-clean and fitting a phone, in English and Spanish; the debtor tells the
client "I already paid"."""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import expect

from cases import audit
from cases.case import next_references, open_case
from cases.clients import create_client
from cases.debtors import Address, Debtor, Email, match_key
from cases.early_out import set_terms
from correspondence.early_out_messages import pay_token
from payments.posting import post_placement
from shell.extensions import db
from tests.browser.kit import (
    assert_no_axe_problems,
    axe_problems,
    overflow_width,
    require_axe,
    save_screenshot,
)

ACTOR = audit.Actor(None, "test")


@pytest.fixture(scope="module")
def links(browser_app) -> dict[str, str]:
    """Two early-out accounts of Acme Plumbing (English and Spanish); their pay links' paths."""
    found = {}
    with browser_app.app_context():
        client = create_client(db.session, "ACME", "Acme Plumbing", actor=ACTOR)
        set_terms(db.session, client, actor=ACTOR, reply_to="billing@acme.example")
        today = dt.date.today()
        for n, (last, language) in enumerate((("Reader", "en"), ("Lector", "es"))):
            debtor = Debtor(kind="consumer", first_name="Maria", last_name=last, language=language)
            debtor.match_key = match_key("consumer", debtor.display_name, "10001")
            debtor.addresses = [
                Address(line1="1 Main St", city="New York", state="NY", postal_code="10001")
            ]
            debtor.emails = [Email(address=f"m{n}@example.com")]
            db.session.add(debtor)
            case = open_case(
                db.session,
                client=client,
                debtor=debtor,
                reference=next_references(db.session, today)[0],
                account_number=f"EO-{n}",
                referred_on=today,
                due_date=today - dt.timedelta(days=12),
                actor=ACTOR,
            )
            case.program = "early_out"
            case.early_out_placed_on = today
            post_placement(db.session, case, "principal", 24_000, f"b:{n}", today)
            found[language] = f"/portal/early-out/{pay_token(case)}"
        db.session.commit()
    return found


@pytest.mark.parametrize("width", [1280, 375])
def test_the_branded_page_passes_axe_and_fits_a_phone(browser, live_server, links, width):
    require_axe()
    context = browser.new_context(
        base_url=live_server, bypass_csp=True, viewport={"width": width, "height": 800}
    )
    page = context.new_page()
    found, overflow = {}, {}
    try:
        for language, path in links.items():
            page.goto(path)
            expect(page.locator("header .brand")).to_contain_text("Acme Plumbing")
            body = page.locator("body").inner_text().lower()
            assert "debt collector" not in body and "recourse" not in body
            found[language] = axe_problems(page)
            if overflow_width(page) > width:
                overflow[language] = overflow_width(page)
            save_screenshot(page, "early_out", f"account-{language}")
        page.goto(links["en"])
        page.get_by_label("Your message to Acme Plumbing").fill("I paid by check on Monday.")
        page.get_by_role("button", name="I already paid").click()
        expect(page.get_by_role("status")).to_contain_text("Acme Plumbing has your message")
    finally:
        context.close()
    assert_no_axe_problems(found)
    assert overflow == {}


@pytest.mark.parametrize("width", [1280, 375])
def test_a_plan_is_reviewed_before_it_is_set_up_in_the_clients_branding(
    browser, live_server, links, width
):
    """Pay in parts: the schedule is shown before anything is set up; axe-clean, fits a phone.
    The phone run confirms it (the account then shows the payments)."""
    require_axe()
    context = browser.new_context(
        base_url=live_server, bypass_csp=True, viewport={"width": width, "height": 800}
    )
    page = context.new_page()
    found, overflow = {}, {}
    try:
        page.goto(links["en"])
        page.get_by_role("link", name="Pay in parts").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Pay Acme Plumbing in parts")
        found["plan"] = axe_problems(page)
        overflow["plan"] = overflow_width(page)
        save_screenshot(page, "early_out", "plan")
        page.get_by_label("Number of payments").select_option("3")
        page.get_by_role("button", name="Show the payments").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Check your payments")
        expect(page.locator("#schedule tbody tr")).to_have_count(3)
        body = page.locator("body").inner_text().lower()
        assert "debt collector" not in body and "recourse" not in body
        assert "$240.00 in all" in body
        found["review"] = axe_problems(page)
        overflow["review"] = overflow_width(page)
        save_screenshot(page, "early_out", "plan-review")
        if width == 375:
            page.get_by_role("button", name="Confirm the payments").click()
            expect(page.get_by_role("status")).to_contain_text("Your payments are set up")
            expect(page.get_by_label("Amount to pay (US dollars)")).to_have_value("80.00")
            found["account"] = axe_problems(page)
            overflow["account"] = overflow_width(page)
            save_screenshot(page, "early_out", "account-plan")
    finally:
        context.close()
    assert_no_axe_problems(found)
    assert all(w <= width for w in overflow.values()), overflow
