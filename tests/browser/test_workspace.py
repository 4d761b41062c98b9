"""The supervisor's and collector's workspace in a real browser: "next case" moves on after a
call and past a skip; deactivating a collector hands their cases over; the case list filters
by collector (inactive included) and assigns all matching cases; alerts in the agency's time;
fee tiers, the floor and bands entered as percentages. axe-core and screenshots at 1366×768
and 375 px on each page touched."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine
from playwright.sync_api import Page, expect

from cases import audit
from cases.case import Case
from cases.clients import create_client
from cases.contacts import ComplianceAlert
from cases.users import User, create_user
from payments.fees import current_schedule, parse_tiers, set_schedule
from shell.extensions import db
from tests.browser.kit import (
    AXE,
    RULES,
    assert_no_axe_problems,
    axe_problems,
    overflow_width,
    require_axe,
    save_screenshot,
)
from tests.browser.test_collector import open_active_case
from tests.conftest import SUITE_DAY

NY = ZoneInfo("America/New_York")
PASSWORD = "correct-horse-battery"
ACTOR = audit.Actor(None, "test")
# A Tuesday morning in New York: every New York case may be called.
MORNING = dt.datetime(2026, 11, 24, 10, 0, tzinfo=NY)
# An alert raised at 03:30 UTC: 22:30 the evening before in New York.
ALERT_AT = dt.datetime(2026, 11, 24, 3, 30, tzinfo=dt.UTC)
WIDTHS = [(1366, 768), (375, 812)]


@pytest.fixture(scope="module")
def office(browser_app) -> dict:
    """An admin, a collector with four cases, two more collectors, one deactivated long ago
    who still holds 55 cases (as before deactivation asked where they go), one about to
    leave with 5, and an alert; committed for real."""
    with time_machine.travel(SUITE_DAY, tick=True), browser_app.app_context():
        acme = create_client(db.session, "ACME", "Acme Plumbing", actor=ACTOR)
        set_schedule(db.session, acme, parse_tiers("90=2500,181=3300"), actor=ACTOR)
        users = {
            role_name: create_user(
                db.session, f"{role_name}@recourse.test", PASSWORD, role, actor=ACTOR
            )
            for role_name, role in (
                ("admin", "admin"),
                ("worker", "collector"),
                ("bea", "collector"),
                ("cal", "collector"),
                ("gone", "collector"),
                ("leaving", "collector"),
            )
        }
        db.session.flush()
        books = {
            owner: [
                open_active_case(
                    db.session,
                    acme,
                    users[owner],
                    last_name=f"{owner.title()}{n}",
                    principal=50_000,
                )
                for n in range(count)
            ]
            for owner, count in (("worker", 4), ("gone", 55), ("leaving", 5))
        }
        for n, case in enumerate(books["worker"]):
            case.last_contact_at = dt.datetime(2026, 11, 1 + n, tzinfo=dt.UTC)
            case.debtor.phones[0].number = f"+1212555{n:04d}"
        users["gone"].active = False
        db.session.add(
            ComplianceAlert(
                case_id=books["worker"][0].id, kind="notice_overdue", created_at=ALERT_AT
            )
        )
        db.session.commit()
        return {
            "ids": {name: user.id for name, user in users.items()},
            "worker_cases": [c.reference for c in books["worker"]],
            "phones": {c.reference: c.debtor.phones[0].number for c in books["worker"]},
        }


def sign_in(page: Page, who: str) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(f"{who}@recourse.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/agency/$"))


def _axe_within(page: Page, selector: str) -> list[dict]:
    """axe_problems for one part of a page."""
    page.add_script_tag(content=AXE.read_text())
    result = page.evaluate(
        f"async () => await axe.run({{include: [['{selector}']]}}, {{runOnly: {RULES}}})"
    )
    return [v for v in result["violations"] if v["impact"] in ("serious", "critical")]


def _reference(page: Page) -> str:
    expect(page).to_have_url(re.compile(r"/agency/cases/RC-\d{4}-\d{5}$"))
    return page.url.rsplit("/", 1)[-1]


def test_next_case_moves_on_after_a_call_and_past_a_skip(page: Page, office):
    with time_machine.travel(MORNING, tick=True):
        sign_in(page, "worker")
        page.goto("/agency/queue")
        seen = []
        page.get_by_role("link", name="Next case to call").click()
        for _ in range(3):
            reference = _reference(page)
            seen.append(reference)
            page.get_by_label("Number called").select_option(office["phones"][reference])
            page.get_by_label("Outcome").select_option("no_answer")
            page.get_by_role("button", name="Log call").click()
            expect(page.get_by_role("status")).to_have_text("Call logged.")
            page.get_by_role("link", name="Next case to call").click()
        assert len(set(seen)) == 3, seen
        fourth = _reference(page)
        assert fourth not in seen
        page.locator("#skip-case summary").click()
        page.get_by_label("Why skip it?").fill("Debtor at work until noon")
        page.get_by_label("Call back at (optional, agency time)").fill("2026-11-24T12:00")
        page.get_by_role("button", name="Skip and go to the next case").click()
        expect(page).to_have_url(re.compile(r"/agency/queue$"))
        expect(page.get_by_role("status").first).to_contain_text(
            "the 4 case(s) you worked or skipped today come back tomorrow"
        )
    # At the callback time the skipped case is offered again.
    with time_machine.travel(MORNING.replace(hour=12, minute=1), tick=True):
        page.get_by_role("link", name="Next case to call").click()
        assert _reference(page) == fourth


@pytest.mark.parametrize("width,height", WIDTHS)
def test_the_pages_touched_pass_axe_and_fit(browser, live_server, office, width, height):
    require_axe()
    ids = office["ids"]
    context = browser.new_context(
        base_url=live_server, bypass_csp=True, viewport={"width": width, "height": height}
    )
    page = context.new_page()
    pages = {
        "users": "/agency/users",
        "user-handover": f"/agency/users/{ids['worker']}",
        "cases-by-collector": f"/agency/cases?collector={ids['gone']}",
        "cases-unassigned": "/agency/cases?unassigned=1",
        "alerts": "/agency/alerts",
        "client-form": "/agency/clients/ACME",
        "bands": "/agency/clients/ACME/bands",
        "queue": "/agency/queue",
    }
    found, overflow = {}, {}
    try:
        with time_machine.travel(MORNING, tick=True):
            sign_in(page, "admin")
            for name, path in pages.items():
                page.goto(path)
                found[path] = axe_problems(page)
                if overflow_width(page) > width:
                    overflow[path] = overflow_width(page)
                save_screenshot(page, "workspace", name)
            page.goto(f"/agency/cases/{office['worker_cases'][0]}")
            page.locator("#skip-case summary").click()
            # The case screen itself is another part's: check the skip control alone.
            found["case screen: skip control"] = _axe_within(page, "#skip-case")
            save_screenshot(page, "workspace", "case-skip")
    finally:
        context.close()
    assert_no_axe_problems(found)
    assert overflow == {}, f"pages wider than {width}px: {overflow}"


def test_deactivation_hands_over_and_the_case_list_assigns_all_matching(
    page: Page, browser_app, office
):
    ids = office["ids"]
    page.set_viewport_size({"width": 1366, "height": 768})
    with time_machine.travel(MORNING, tick=True):
        sign_in(page, "admin")
        page.goto(f"/agency/users/{ids['leaving']}")
        page.get_by_label("Active").uncheck()
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_role("alert").first).to_contain_text("say where")
        page.get_by_label("Their 5 open case(s) go to").select_option("round_robin")
        page.get_by_label("Active").uncheck()
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_role("status").first).to_contain_text("5 open case(s) handed over to")

        page.goto("/agency/cases")
        page.get_by_label("Collector", exact=True).select_option(
            label="gone@recourse.test (inactive)"
        )
        page.get_by_role("button", name="Show").click()
        expect(page.locator("#match-count")).to_have_text("55 case(s) match.")
        page.get_by_label("All 55 matching case(s), not only the ticked ones").check()
        page.get_by_label("Assign them to").select_option(label="bea@recourse.test")
        page.get_by_role("button", name="Assign", exact=True).click()
        expect(page.get_by_role("status").first).to_have_text("55 case(s) assigned.")
        expect(page.locator("#match-count")).to_have_text("0 case(s) match.")

        page.goto("/agency/alerts")
        expect(page.get_by_role("table").first).to_contain_text("2026-11-23 22:30 EST")

        page.goto("/agency/clients/ACME")
        page.get_by_label("Settlement floor (% of the balance)").fill("65%")
        page.locator("#tier_rows-0-fee").fill("thirty")
        page.get_by_role("button", name="Save").click()
        expect(page.locator("#tier_rows-0-fee-error")).to_have_text(
            "Enter a percentage like 25% or 33.5%"
        )
        page.locator("#tier_rows-0-fee").fill("30%")
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_role("status").first).to_have_text("Client ACME saved.")
        page.goto("/agency/clients/ACME")
        expect(page.locator("#tier_rows-0-fee")).to_have_value("30%")
        expect(page.get_by_label("Settlement floor (% of the balance)")).to_have_value("65%")

        page.goto("/agency/clients/ACME/bands")
        page.get_by_label("Balances from").fill("100")
        page.get_by_label("The debtor pays (% of the balance)").fill("82.5%")
        page.get_by_label("Days to pay after accepting").fill("14")
        page.get_by_role("button", name="Add band").click()
        expect(page.get_by_role("table")).to_contain_text("82.50%")

    with browser_app.app_context():
        leaving = db.session.get(User, ids["leaving"])
        assert not leaving.active
        owners = db.session.scalars(
            sa.select(Case.assigned_to_id).where(Case.assigned_to_id.in_(ids.values()))
        ).all()
        assert ids["leaving"] not in owners and ids["gone"] not in owners
        assert owners.count(ids["bea"]) >= 55
        acme = db.session.scalar(sa.select(Case).limit(1)).client
        assert acme.min_settlement_bps == 6500
        assert current_schedule(db.session, acme.id).tiers[0].bps == 3000
