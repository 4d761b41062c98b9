"""axe-core on every page (issues #18 and #19): every GET route of the agency's pages (staff,
at 1366 and 375 px), the client area and the debtor portal (1280 and 375 px), and the sign-in
pages, read from `app.url_map`, on one book of data: the demo agency (demo/seed.py, small),
its early-out accounts, and a portal debtor whose cases have payments, a plan, a plan waiting
for new dates, an offer and a dispute. No serious or critical violation, nothing wider than
the screen, a screenshot of each page under build/screenshots/every-page/.

A GET route this test does not visit fails it: add the page to `visits` (or, for a download,
a JSON answer or a redirect, to NOT_PAGES with the reason)."""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse
import urllib.request

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from cases import audit
from cases.case import Case
from cases.clients import Client
from cases.contacts import ComplianceAlert, raise_alert
from cases.debtors import Debtor
from cases.disputes import Dispute
from cases.documents import Document
from cases.notices import NoticeRun
from cases.plans import create_plan
from cases.referrals import hold_for_mapping, preview
from cases.users import User, create_user
from correspondence.early_out_messages import pay_token
from demo.early_out_seed import seed_early_out
from demo.seed import DEMO_PASSWORD, seed
from payments.posting import post_payment
from payments.statements import Statement, StatementRun, StatementRunItem
from payments.unmatched import hold_unmatched
from shell.cli import demo_paperwork
from shell.extensions import db
from shell.timezone import agency_today
from tests.browser.conftest import build_browser_app
from tests.browser.kit import (
    assert_no_axe_problems,
    axe_problems,
    overflow_width,
    require_axe,
    save_screenshot,
)
from tests.browser.test_client_pages import referral_csv
from tests.browser.test_collector import open_active_case
from tests.browser.test_portal import PUBLISHABLE_KEY
from tests.payments.conftest import SECRET_KEY, WEBHOOK_SECRET, start_localstripe

ACTOR = audit.Actor(None, "test")
AREA = "every-page"
BLUEPRINTS = ("staff", "client_area", "portal", "auth", "second_factor")
STAFF_WIDTHS = [1366, 375]
OTHER_WIDTHS = [1280, 375]
# GET routes that are not pages, so not for axe: each with why.
NOT_PAGES = {
    "auth.index": "a redirect to the signed-in user's home (or the sign-in page)",
    "staff.next_case": "a redirect to the next case in the collector's queue",
    "staff.document": "a stored document (PDF), downloaded",
    "staff.run_file": "a notice run's print file (PDF) or manifest (CSV)",
    "staff.early_out_file": "an early-out letter run's print file (PDF) or manifest (CSV)",
    "staff.report_csv": "a report as CSV",
    "staff.statement_file": "a statement as PDF or CSV",
    "staff.statement_run_status": "a statement run's progress as JSON (polled by its page)",
    "client_area.case_document": "a case's document (PDF or upload), downloaded",
    "client_area.batch_rejected": "a referral file's rejected rows as CSV",
    "client_area.batch_status": "a referral import's progress as JSON (polled by its page)",
    "client_area.report_csv": "a report as CSV",
    "client_area.client_statement_file": "a statement as PDF or CSV",
    "portal.plan_agreement": "the plan agreement (PDF)",
    "portal.settlement_letter": "a settlement letter (PDF)",
    "portal.validation_notice": "the validation notice (PDF)",
    "portal.receipt_pdf": "a receipt (PDF)",
    "portal.autopay_done": "where Stripe.js lands after saving a card: a redirect to the case "
    "(or back to the card form)",
    "portal.installment_authenticated": "where Stripe.js lands after the bank's check: a "
    "redirect to the case",
}
# Serious violations known on pages of work going on in parallel (not ours to change here):
# endpoint -> (axe rule, why). The test fails if one goes away, so the entry goes too.
KNOWN: dict[str, tuple[str, str]] = {}
# What each test visited, by width: the last test checks every route was (they run in order).
VISITED: dict[str, set[str]] = {}


@pytest.fixture(scope="module")
def stripe_server(tmp_path_factory):
    process, url = start_localstripe(tmp_path_factory.mktemp("every-page-stripe") / "log")
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


@pytest.fixture(autouse=True)
def fixed_day():
    """The real clock here (as tests/browser/test_portal.py): localstripe signs its webhooks
    with the real time, and the demo dates everything from today."""
    yield


def get_routes(app) -> dict[str, str]:
    """Every GET route of the blueprints people see: endpoint -> rule."""
    return {
        rule.endpoint: rule.rule
        for rule in app.url_map.iter_rules()
        if "GET" in rule.methods and rule.endpoint.split(".")[0] in BLUEPRINTS
    }


def _first(query):
    value = db.session.scalar(query.limit(1))
    assert value is not None, str(query)
    return value


@pytest.fixture(scope="module")
def book(browser_app, live_server, stripe_server) -> dict:
    """The demo agency (a few cases per client, one of each showcase state), its early-out
    accounts, and what the demo does not make: referral files, a notice run, a statement run,
    an unmatched payment, an alert, and a portal debtor (Sweep) with a case paid towards, one
    on a plan and one whose plan waits for new dates. The values every route needs."""
    body = urllib.parse.urlencode(
        {"url": f"{live_server}/stripe/webhook", "secret": WEBHOOK_SECRET}
    ).encode()
    urllib.request.urlopen(f"{stripe_server}/_config/webhooks/recourse", data=body).close()
    with browser_app.app_context():
        session = db.session
        seed(session, demo_paperwork(), cases_per_client=3, showcase_per_client=1)
        seed_early_out(session)
        today = agency_today()
        acme = _first(sa.select(Client).order_by(Client.id))
        client_user = _first(sa.select(User).where(User.client_id == acme.id))
        actor = audit.Actor.user(client_user)
        mapping = hold_for_mapping(
            session,
            acme,
            b"Acct #,First Name,Surname,ST,Zip,Amount Due,Due\nX-1,Ann,Lee,NY,10001,250.00,2025-01-02\n",
            "export.csv",
            as_of=today,
            actor=actor,
        )
        batch = preview(
            session, acme, referral_csv(["Q-1", "Q-2"]), "new.csv", as_of=today, actor=actor
        )
        if session.scalar(sa.select(NoticeRun.id)) is None:
            session.add(NoticeRun(run_on=today, notice_count=0))
        month = _first(sa.select(Statement.month).order_by(Statement.id.desc()))
        run = StatementRun(month=str(month), started_by="test")
        run.items = [StatementRunItem(client_id=acme.id, status="waiting")]
        session.add(run)
        hold_unmatched(
            session,
            external_id="check:unplaced-1",
            amount_cents=4_200,
            received_at=today,
            method="check",
            payer="J. Doe",
            actor=ACTOR,
        )
        collector = _first(sa.select(User).where(User.role == "collector").order_by(User.id))
        paying = open_active_case(session, acme, collector, last_name="Sweep", principal=60_000)
        paying.validation_period_ends_on = today + dt.timedelta(days=30)
        payment = post_payment(
            session,
            paying,
            5_000,
            external_id="check:sweep-1",
            received_at=today,
            method="check",
            actor=ACTOR,
        )
        planned = open_active_case(session, acme, collector, last_name="Sweeptwo", principal=60_000)
        plan = create_plan(
            session,
            planned,
            frequency="monthly",
            count=3,
            first_on=today + dt.timedelta(days=7),
            today=today,
            actor=ACTOR,
        )
        paused = open_active_case(
            session, acme, collector, last_name="Sweepthree", principal=30_000
        )
        moved = create_plan(
            session,
            paused,
            frequency="monthly",
            count=2,
            first_on=today + dt.timedelta(days=7),
            today=today,
            actor=ACTOR,
        )
        moved.status, moved.reconfirm_by = "paused", today + dt.timedelta(days=10)
        # One debtor for all three, so one portal sign-in sees them all.
        for case in (planned, paused):
            extra = case.debtor
            case.debtor = paying.debtor
            session.flush()
            session.delete(extra)
        case = _first(sa.select(Case.reference).where(Case.status == "active"))
        if session.scalar(sa.select(ComplianceAlert.id)) is None:
            raise_alert(session, paying.id, "notice_overdue", "test", "a test alert")
        early = _first(
            sa.select(Case)
            .join(Debtor, Debtor.id == Case.debtor_id)
            .where(Case.program == "early_out", Debtor.last_name == "Brooks")
        )
        # Card payments not (yet) confirmed, at the fake Stripe: their pages say where they stand.
        stripe = browser_app.extensions["recourse.gateway"]

        def intent(case: Case, key: str) -> str:
            return stripe.create_payment_intent(
                amount_cents=1_000, case_reference=case.reference, idempotency_key=key
            ).id

        # An autopay charge the bank wants the debtor to authenticate.
        asked = plan.installments[0]
        asked.status, asked.last_error = "failed", "authentication_required"
        asked.payment_intent_id = intent(planned, "every-page-authenticate")
        session.commit()
        return {
            "client": acme.code,
            "case": case,
            "alert_case": session.get(Case, paying.id).reference,
            "user": collector.id,
            "statement": _first(sa.select(Statement.number).where(Statement.client_id == acme.id)),
            "statement_run": run.id,
            "batch": batch.id,
            "mapping": mapping.id,
            "dispute": _first(sa.select(Dispute.id).join(Case).where(Case.client_id == acme.id)),
            "client_case": _first(
                sa.select(Case.reference).where(Case.client_id == acme.id, Case.status == "active")
            ),
            "client_email": client_user.email,
            "paying": paying.reference,
            "planned": planned.reference,
            "plan": plan.id,
            "moved_plan": moved.id,
            "receipt": payment.id,
            "early_out": pay_token(early),
            "early_out_intent": intent(early, "every-page-early-out"),
            "intent": intent(paying, "every-page-payment"),
            "installment": asked.id,
            "documents": _first(sa.select(Document.case_id)),
        }


def _sign_in_staff(page: Page, email: str) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile(r"/login"))


def _sign_in_portal(page: Page, reference: str) -> None:
    page.goto("/portal/login")
    page.get_by_label("Case reference").fill(reference)
    page.get_by_label("Last name, or company name").fill("Sweep")
    page.get_by_label("ZIP code").fill("10001")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name=re.compile("^Hello"))).to_be_visible()


class Sweep:
    """Pages checked at one width: axe, overflow and a screenshot each; which routes seen."""

    def __init__(self, page: Page, width: int):
        self.page, self.width = page, width
        self.found: dict[str, list] = {}
        self.overflow: dict[str, int] = {}
        self.visited: set[str] = set()
        self.statuses: dict[str, int] = {}

    def visit(self, endpoint: str, path: str | None = None, status: int = 200) -> None:
        """Go to `path` (or check the page as it is) and check it as `endpoint`'s page."""
        if path is not None:
            response = self.page.goto(path)
            if response is None or response.status != status:
                self.statuses[endpoint] = response.status if response else 0
            # Not sent elsewhere: the page checked is the route's own.
            landed = urllib.parse.urlsplit(self.page.url).path
            if landed != path:
                self.statuses[endpoint] = f"redirected to {landed}"
        self.check(endpoint)

    def check(self, endpoint: str) -> None:
        self.page.wait_for_load_state("load")
        self.visited.add(endpoint)
        name = endpoint.replace(".", "-").replace("_", "-")
        self.found[endpoint] = axe_problems(self.page)
        wide = overflow_width(self.page)
        if wide > self.width:
            self.overflow[endpoint] = wide
        save_screenshot(self.page, AREA, name)

    def assert_clean(self) -> None:
        assert self.statuses == {}, f"pages not answered as expected: {self.statuses}"
        found = dict(self.found)
        for endpoint, (rule, _why) in KNOWN.items():
            if endpoint in found and self.width < 400:
                assert rule in [v["id"] for v in found[endpoint]], f"{endpoint} is fixed: unlist it"
                found[endpoint] = [v for v in found[endpoint] if v["id"] != rule]
        assert_no_axe_problems(found)
        assert self.overflow == {}, f"pages wider than {self.width}px: {self.overflow}"


def _context(browser, live_server, width):
    return browser.new_context(
        base_url=live_server, bypass_csp=True, viewport={"width": width, "height": 800}
    )


def _staff_pages(sweep: Sweep, book: dict) -> None:
    page = sweep.page
    _sign_in_staff(page, "admin@recourse.test")
    visits = {
        "staff.home": "/agency/",
        "staff.alerts": "/agency/alerts",
        "staff.cases": "/agency/cases",
        "staff.case": f"/agency/cases/{book['alert_case']}",
        "staff.client_documents": f"/agency/cases/{book['alert_case']}/client-documents",
        "staff.clients": "/agency/clients",
        "staff.client_edit": f"/agency/clients/{book['client']}",
        "staff.early_out_terms": f"/agency/clients/{book['client']}/early-out",
        "staff.bands": f"/agency/clients/{book['client']}/bands",
        "staff.client_new": "/agency/clients/new",
        "staff.notices": "/agency/notices",
        "staff.offers": "/agency/offers",
        "staff.reports_page": "/agency/reports",
        "staff.statements": "/agency/statements",
        "staff.statement": f"/agency/statements/{book['statement']}",
        "staff.statement_runs": "/agency/statements/runs",
        "staff.statement_run": f"/agency/statements/runs/{book['statement_run']}",
        "staff.trust": "/agency/trust",
        "staff.unmatched": "/agency/unmatched",
        "staff.users": "/agency/users",
        "staff.user_edit": f"/agency/users/{book['user']}",
        "staff.user_access": f"/agency/users/{book['user']}/access",
        "staff.user_new": "/agency/users/new",
    }
    for endpoint, path in visits.items():
        sweep.visit(endpoint, path)
    page.context.clear_cookies()
    _sign_in_staff(page, "collector@recourse.test")
    sweep.visit("staff.queue", "/agency/queue")


def _sign_in_pages(sweep: Sweep, browser_app) -> None:
    """The sign-in page, then the second step's pages with MFA required: enrolment (the
    password was right, no authenticator yet) and, by an enrolment link, its own page."""
    page = sweep.page
    page.context.clear_cookies()
    sweep.visit("auth.login", "/login")
    with browser_app.app_context():
        from cases.second_factor import issue_enrolment_link

        user = create_user(
            db.session,
            f"newcomer{sweep.width}@recourse.test",
            DEMO_PASSWORD,
            "collector",
            actor=ACTOR,
        )
        token = issue_enrolment_link(db.session, user, actor=ACTOR)
        enrolled = create_user(
            db.session,
            f"enrolled{sweep.width}@recourse.test",
            DEMO_PASSWORD,
            "collector",
            actor=ACTOR,
        )
        enrolled.totp_enrolled_at = dt.datetime.now(dt.UTC)  # the code page asks for a code
        db.session.commit()
    sweep.visit("second_factor.enrol_by_link", f"/enrol/{token}")
    browser_app.config["MFA_REQUIRED"] = True
    try:
        page.context.clear_cookies()
        page.goto("/login")
        page.get_by_label("Email").fill("admin@recourse.test")
        page.get_by_label("Password").fill(DEMO_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(re.compile(r"/login/enrol$"))
        sweep.check("second_factor.enrol")
        page.context.clear_cookies()
        page.goto("/login")
        page.get_by_label("Email").fill(f"enrolled{sweep.width}@recourse.test")
        page.get_by_label("Password").fill(DEMO_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(re.compile(r"/login/code$"))
        sweep.check("second_factor.code")
    finally:
        browser_app.config["MFA_REQUIRED"] = False


def _client_pages(sweep: Sweep, book: dict) -> None:
    page = sweep.page
    page.context.clear_cookies()
    _sign_in_staff(page, book["client_email"])
    visits = {
        "client_area.dashboard": "/client/",
        "client_area.cases": "/client/cases",
        "client_area.case": f"/client/cases/{book['client_case']}",
        "client_area.disputes": "/client/disputes",
        "client_area.dispute": f"/client/disputes/{book['dispute']}",
        "client_area.early_out": "/client/early-out",
        "client_area.referrals": "/client/referrals",
        "client_area.batch": f"/client/referrals/{book['batch']}",
        "client_area.mapping": f"/client/referrals/{book['mapping']}/mapping",
        "client_area.reports_page": "/client/reports",
        "client_area.client_statements": "/client/statements",
    }
    for endpoint, path in visits.items():
        sweep.visit(endpoint, path)


def _portal_pages(sweep: Sweep, book: dict) -> None:
    page = sweep.page
    page.context.clear_cookies()
    sweep.visit("portal.login", "/portal/login")
    token = book["early_out"]
    sweep.visit("portal.early_out", f"/portal/early-out/{token}")
    sweep.visit("portal.early_out_plan", f"/portal/early-out/{token}/plan")
    # An unconfirmed payment's page answers 409 (not paid), and says so.
    sweep.visit(
        "portal.early_out_payment",
        f"/portal/early-out/{token}/payments/{book['early_out_intent']}",
        status=409,
    )
    _sign_in_portal(page, book["paying"])
    paying, planned = book["paying"], book["planned"]
    visits = {
        "portal.home": "/portal/",
        "portal.case": f"/portal/cases/{planned}",
        "portal.dispute": f"/portal/cases/{paying}/dispute",
        "portal.pay": f"/portal/cases/{paying}/pay",
        "portal.choose_plan": f"/portal/cases/{paying}/plan",
        "portal.preferences": "/portal/preferences",
        "portal.receipt": f"/portal/receipts/{book['receipt']}",
        "portal.confirm_plan_dates": f"/portal/plans/{book['moved_plan']}/new-dates",
        "portal.autopay": f"/portal/plans/{book['plan']}/autopay",
    }
    for endpoint, path in visits.items():
        sweep.visit(endpoint, path)
    sweep.visit(
        "portal.authenticate_installment",
        f"/portal/installments/{book['installment']}/authenticate",
    )
    sweep.visit("portal.payment", f"/portal/payments/{book['intent']}", status=409)


def _assert_every_route(app, visited: set[str]) -> None:
    routes = get_routes(app)
    missing = sorted(set(routes) - visited - set(NOT_PAGES))
    assert missing == [], f"GET routes this test does not visit: {missing}"
    stale = sorted(set(NOT_PAGES) - set(routes))
    assert stale == [], f"NOT_PAGES names routes that are gone: {stale}"


@pytest.mark.parametrize("width", STAFF_WIDTHS)
def test_every_staff_page(browser, live_server, browser_app, book, width):
    require_axe()
    context = _context(browser, live_server, width)
    try:
        sweep = Sweep(context.new_page(), width)
        _staff_pages(sweep, book)
        _sign_in_pages(sweep, browser_app)
    finally:
        context.close()
    VISITED[f"staff-{width}"] = sweep.visited
    print(f"{len(sweep.visited)} staff and sign-in pages at {width}px")
    sweep.assert_clean()


@pytest.mark.parametrize("width", OTHER_WIDTHS)
def test_every_client_and_portal_page(browser, live_server, browser_app, book, width):
    require_axe()
    context = _context(browser, live_server, width)
    try:
        sweep = Sweep(context.new_page(), width)
        _client_pages(sweep, book)
        _portal_pages(sweep, book)
    finally:
        context.close()
    VISITED[f"other-{width}"] = sweep.visited
    print(f"{len(sweep.visited)} client and portal pages at {width}px")
    sweep.assert_clean()


def test_no_get_route_is_left_out(browser_app):
    """Every GET route was visited at both widths of its kind, or is in NOT_PAGES."""
    assert sorted(VISITED) == sorted(
        [f"staff-{w}" for w in STAFF_WIDTHS] + [f"other-{w}" for w in OTHER_WIDTHS]
    ), "run the whole module: the page tests record what they visit"
    for w, o in zip(STAFF_WIDTHS, OTHER_WIDTHS, strict=True):
        _assert_every_route(browser_app, VISITED[f"staff-{w}"] | VISITED[f"other-{o}"])
