"""The debtor portal in Chromium, paying through localstripe and its fake Stripe.js: sign-in,
a dispute with a document, a card that pays (the webhook arrives too), a card that is
declined, Spanish, a phone-sized screen, and axe-core on every page. The lockout runs last:
it locks the address every test signs in from."""

from __future__ import annotations

import datetime as dt
import re
import time
import urllib.parse
import urllib.request

import pytest
import sqlalchemy as sa
import time_machine
from playwright.sync_api import Page, expect

from cases import audit
from cases.clients import create_client
from cases.ledger import LedgerEntry, balance_cents
from cases.users import create_user
from payments.fees import parse_tiers, set_schedule
from payments.webhooks import StripeEvent
from shell.extensions import db
from tests.browser.conftest import build_browser_app
from tests.browser.kit import assert_no_axe_problems, axe_problems, require_axe
from tests.browser.test_collector import open_active_case
from tests.conftest import SUITE_DAY
from tests.payments.conftest import SECRET_KEY, WEBHOOK_SECRET, start_localstripe

ACTOR = audit.Actor(None, "test")
PUBLISHABLE_KEY = "pk_test_portal"
PDF = b"%PDF-1.4\n% a bank statement\n"


@pytest.fixture(scope="module")
def stripe_server(tmp_path_factory):
    process, url = start_localstripe(tmp_path_factory.mktemp("portal-stripe") / "log")
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def browser_app(tmp_path_factory, stripe_server):
    yield from build_browser_app(
        tmp_path_factory,
        STRIPE_API_BASE=stripe_server,
        STRIPE_SECRET_KEY=SECRET_KEY,
        STRIPE_PUBLISHABLE_KEY=PUBLISHABLE_KEY,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
    )


@pytest.fixture(scope="module")
def debtors(browser_app, live_server, stripe_server) -> dict[str, str]:
    """Four New York debtors with an active $500.00 case each, inside the validation period;
    localstripe sends its webhooks to the live server. Their references by last name."""
    body = urllib.parse.urlencode(
        {"url": f"{live_server}/stripe/webhook", "secret": WEBHOOK_SECRET}
    ).encode()
    urllib.request.urlopen(f"{stripe_server}/_config/webhooks/recourse", data=body).close()
    with time_machine.travel(SUITE_DAY, tick=True), browser_app.app_context():
        client = create_client(db.session, "ACME", "Acme Plumbing", actor=ACTOR)
        set_schedule(db.session, client, parse_tiers("90=2500"), actor=ACTOR)
        collector = create_user(
            db.session, "c@recourse.test", "pw-long-enough-1", "collector", actor=ACTOR
        )
        refs = {}
        for name in ("Payer", "Decliner", "Disputer", "Reader"):
            case = open_active_case(db.session, client, collector, last_name=name, principal=50_000)
            # Inside the validation period by the real clock too.
            case.validation_period_ends_on = dt.date.today() + dt.timedelta(days=30)
            refs[name] = case.reference
        db.session.commit()
        return refs


@pytest.fixture(autouse=True)
def fixed_day():
    """The real clock in this module (the suite's fixed day elsewhere): localstripe, another
    process, signs its webhooks with the real time, and the app rightly refuses a signature
    more than 5 minutes off."""
    yield


def sign_in(page: Page, reference: str, last_name: str) -> None:
    page.goto("/portal/login")
    page.get_by_label("Case reference").fill(reference)
    page.get_by_label("Last name, or company name").fill(last_name)
    page.get_by_label("ZIP code").fill("10001")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name=re.compile("^Hello"))).to_be_visible()


def open_case(page: Page, reference: str) -> None:
    page.get_by_role("link", name=f"See details {reference}").click()
    expect(page.get_by_role("heading", name=f"Account {reference}")).to_be_visible()


def fill_card(page: Page, number: str) -> None:
    """localstripe's fake card Element: plain inputs named by their placeholders."""
    element = page.locator("#card-element")
    element.get_by_placeholder("number").fill(number)
    element.get_by_placeholder("exp_month").fill("12")
    element.get_by_placeholder("exp_year").fill("31")
    element.get_by_placeholder("cvc").fill("123")
    element.get_by_placeholder("postal_code").fill("10001")


def balance_of(app, reference: str) -> int:
    with app.app_context():
        case_id = db.session.scalar(
            sa.text("SELECT id FROM cases WHERE reference = :r"), {"r": reference}
        )
        return balance_cents(db.session, case_id)


def test_paying_with_4242_lowers_the_balance_once_and_shows_a_receipt(
    page: Page, browser_app, debtors
):
    reference = debtors["Payer"]
    sign_in(page, reference, "Payer")
    open_case(page, reference)
    expect(page.get_by_role("heading", name="Balance: $500.00")).to_be_visible()
    page.get_by_role("link", name="Pay now").click()
    page.get_by_label("Amount to pay (US dollars)").fill("120.50")
    page.get_by_role("button", name="Continue to card details").click()
    fill_card(page, "4242424242424242")
    page.get_by_role("button", name="Pay $120.50").click()

    expect(page.get_by_role("heading", name="Receipt")).to_be_visible()
    expect(page.get_by_text("Thank you. Your payment was received.")).to_be_visible()
    expect(page.get_by_text("$379.50")).to_be_visible()
    # Stripe's webhook for the same PaymentIntent arrives about a second later: recorded, and
    # the balance moved once.
    deadline = time.monotonic() + 15
    with browser_app.app_context():
        while True:
            seen = db.session.scalar(
                sa.select(sa.func.count(StripeEvent.id)).where(
                    StripeEvent.type == "payment_intent.succeeded"
                )
            )
            db.session.rollback()
            if seen or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert seen == 1
        payments = db.session.scalars(
            sa.select(LedgerEntry).where(LedgerEntry.kind == "payment")
        ).all()
        assert [p.amount_cents for p in payments] == [-12_050]
    assert balance_of(browser_app, reference) == 37_950
    page.get_by_role("link", name="Back to the account").click()
    expect(page.get_by_role("heading", name="Balance: $379.50")).to_be_visible()


def test_a_declined_card_says_so_and_changes_nothing(page: Page, browser_app, debtors):
    reference = debtors["Decliner"]
    sign_in(page, reference, "Decliner")
    page.goto(f"/portal/cases/{reference}/pay")
    page.get_by_role("button", name="Continue to card details").click()
    fill_card(page, "4000000000000341")
    page.get_by_role("button", name="Pay $500.00").click()
    expect(page.get_by_role("alert")).to_have_text(
        "Your card was declined. Nothing was charged. Try another card or call us."
    )
    expect(page.get_by_role("button", name="Pay $500.00")).to_be_enabled()
    assert balance_of(browser_app, reference) == 50_000


def test_a_dispute_with_a_document_holds_the_case(page: Page, browser_app, debtors, tmp_path):
    reference = debtors["Disputer"]
    statement = tmp_path / "statement.pdf"
    statement.write_bytes(PDF)
    sign_in(page, reference, "Disputer")
    open_case(page, reference)
    page.get_by_role("link", name="Dispute this debt").click()
    page.get_by_label("What do you dispute, and why?").fill("I paid this invoice in June.")
    page.get_by_label("Documents (optional)").set_input_files(str(statement))
    page.get_by_role("button", name="Send my request").click()
    expect(page.get_by_role("heading", name="We received your dispute")).to_be_visible()
    expect(page.get_by_role("status")).to_have_text(
        f"We recorded your dispute of account {reference}, with 1 document."
    )
    expect(page.get_by_text("We have stopped collecting this debt.")).to_be_visible()
    with browser_app.app_context():
        status = db.session.scalar(
            sa.text("SELECT status FROM cases WHERE reference = :r"), {"r": reference}
        )
    assert status == "disputed"


def test_spanish_is_one_click_away_and_remembered(page: Page, debtors):
    reference = debtors["Reader"]
    sign_in(page, reference, "Reader")
    page.get_by_role("button", name="Español").click()
    expect(page.get_by_role("heading", name="Hola, Maria Reader")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "es")
    page.get_by_role("link", name=f"Ver detalles {reference}").click()
    expect(page.get_by_role("heading", name="Por qué debe esta cantidad")).to_be_visible()
    page.get_by_role("link", name="Preferencias de contacto").click()
    expect(page.get_by_label("Idioma")).to_have_value("es")
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", name="How and when we may contact you")).to_be_visible()


@pytest.mark.parametrize("width", [1280, 375])
def test_every_portal_page_passes_axe_and_fits_a_phone(browser, live_server, debtors, width):
    require_axe()
    # axe is injected as a script: let this context alone bypass the page's CSP to do it.
    context = browser.new_context(
        base_url=live_server, bypass_csp=True, viewport={"width": width, "height": 800}
    )
    page = context.new_page()
    reference = debtors["Reader"]
    pages = ["/portal/login"]
    try:
        page.goto("/portal/login")
        found = {"/portal/login": axe_problems(page)}
        sign_in(page, reference, "Reader")
        pages += [
            "/portal/",
            f"/portal/cases/{reference}",
            f"/portal/cases/{reference}/pay",
            f"/portal/cases/{reference}/dispute",
            "/portal/preferences",
        ]
        for path in pages[1:]:
            page.goto(path)
            found[path] = axe_problems(page)
        page.goto(f"/portal/cases/{reference}/pay")
        page.get_by_role("button", name=re.compile("^Continue")).click()
        expect(page.locator("#card-element input").first).to_be_visible()
        found["card page"] = axe_problems(page)
        overflow = {}
        for path in pages:
            page.goto(path)
            wide = page.evaluate("document.documentElement.scrollWidth")
            if wide > width:
                overflow[path] = wide
    finally:
        context.close()
    assert_no_axe_problems(found)
    assert overflow == {}, f"pages wider than {width}px: {overflow}"


def test_five_wrong_tries_lock_the_reference(page: Page, debtors):
    reference = debtors["Reader"]
    page.goto("/portal/login")
    for _ in range(5):
        page.get_by_label("Case reference").fill(reference)
        page.get_by_label("Last name, or company name").fill("Wrong")
        page.get_by_label("ZIP code").fill("10001")
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_role("alert")).to_have_text(
            "We could not find a case with those details. Please check your letter."
        )
    page.get_by_label("Case reference").fill(reference)
    page.get_by_label("Last name, or company name").fill("Reader")
    page.get_by_label("ZIP code").fill("10001")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert")).to_have_text(
        re.compile(r"Too many attempts\. For your security, please try again in \d+ seconds\.")
    )
