"""The case screen in a real browser: the common path (open the case, log a call, add a note,
next case) fits a 1366×768 laptop without scrolling and runs from the keyboard; the screen
passes axe-core at 1366 and 375 px; cease and close need their confirmation; the timeline
speaks plainly; and without JavaScript the tabs are links and the forms still post."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine
from playwright.sync_api import Page, expect

from cases.case import Case
from cases.clients import create_client
from cases.documents import Document
from cases.users import create_user
from payments.fees import parse_tiers, set_schedule
from shell.extensions import db
from tests.browser.kit import (
    assert_no_axe_problems,
    axe_problems,
    overflow_width,
    require_axe,
    save_screenshot,
)
from tests.browser.test_collector import ACTOR, EMAIL, PASSWORD, PHONE, open_active_case, sign_in
from tests.conftest import SUITE_DAY

NY = ZoneInfo("America/New_York")
# A Tuesday morning in New York: calls are allowed.
MORNING = dt.datetime(2026, 11, 24, 10, 0, tzinfo=NY)
LAPTOP = {"width": 1366, "height": 768}
PHONE_SCREEN = {"width": 375, "height": 812}
# What a raw audit code or actor label looks like: `note.added`, `user:ana@x`, an arrow.
RAW = re.compile(
    r"\b(note|offer|debtor|case|plan|contact|message|promise|dispute)\.[a-z_]+|user:|→"
)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture(scope="module")
def caseload(browser_app) -> dict[str, str]:
    """A collector with three active New York cases (one debtor in hardship); committed."""
    with time_machine.travel(SUITE_DAY, tick=True), browser_app.app_context():
        client = create_client(db.session, "ACME", "Acme Plumbing", actor=ACTOR)
        set_schedule(db.session, client, parse_tiers("90=2500"), actor=ACTOR)
        collector = create_user(db.session, EMAIL, PASSWORD, "collector", actor=ACTOR)
        cases = {
            name: open_active_case(
                db.session, client, collector, last_name=name, principal=principal
            )
            for name, principal in (("Garcia", 120_000), ("Hardy", 40_000), ("Smith", 80_000))
        }
        cases["Hardy"].debtor.situation = "hardship"
        db.session.commit()
        return {name: case.reference for name, case in cases.items()}


def screen_height(page: Page) -> int:
    return page.evaluate("document.documentElement.scrollHeight")


def fits(page: Page, selector: str) -> bool:
    """The element shows all its content without scrolling inside itself."""
    return page.locator(selector).evaluate("e => e.scrollHeight <= e.clientHeight")


def bottom_of(page: Page, selector: str) -> float:
    box = page.locator(selector).bounding_box()
    assert box is not None, selector
    return box["y"] + box["height"]


def test_the_common_path_fits_a_laptop_screen_and_runs_from_the_keyboard(
    browser, live_server, browser_app, caseload
):
    require_axe()
    context = browser.new_context(base_url=live_server, viewport=LAPTOP, bypass_csp=True)
    page = context.new_page()
    reference = caseload["Garcia"]
    heights = {}
    with time_machine.travel(MORNING, tick=True):
        sign_in(page)
        page.goto(f"/agency/cases/{reference}")
        expect(page.locator("#window-call")).to_contain_text("Call allowed now: yes")
        expect(page.locator("#debtor-name")).to_have_text("Maria Garcia")
        expect(page.locator("#situation")).to_have_text("situation not known yet")
        expect(page.locator("#validation-state")).to_contain_text(
            "Validation period until 2026-12-10 (16 days left"
        )
        heights["open"] = screen_height(page)
        bottoms = {"open": bottom_of(page, "#panel-call button[type=submit]")}
        assert fits(page, "#panel-call")
        found = {"open": axe_problems(page)}
        save_screenshot(page, "case-screen", "open")

        # Alt+C opens the call tab and puts the cursor in its first field.
        page.locator("#tab-note").click()
        expect(page.locator("#panel-call")).to_be_hidden()
        page.keyboard.press("Alt+c")
        expect(page.locator("#panel-call")).to_be_visible()
        expect(page.get_by_role("tab", name=re.compile("^Log a call"))).to_have_attribute(
            "aria-selected", "true"
        )
        expect(page.get_by_label("Number called")).to_be_focused()
        page.get_by_label("Number called").select_option(PHONE)
        page.keyboard.press("Tab")
        page.keyboard.press("End")  # the last outcome: spoke with the debtor
        page.get_by_role("button", name="Log call").click()
        expect(page.get_by_role("status")).to_have_text("Call logged.")
        timeline = page.locator(".timeline")
        expect(timeline).to_contain_text(f"outbound call — spoke with the debtor ({PHONE})")
        # After a call the note tab is open, ready for the note.
        expect(page.locator("#panel-note")).to_be_visible()
        heights["call"] = screen_height(page)
        bottoms["call"] = bottom_of(page, "#panel-note button[type=submit]")
        assert fits(page, "#panel-note")
        found["after call"] = axe_problems(page)

        page.locator("#note-body").fill("Will pay on Friday; prefers mornings.")
        page.get_by_role("button", name="Add note").click()
        expect(page.get_by_role("status")).to_have_text("Note added.")
        heights["note"] = screen_height(page)
        bottoms["note"] = bottom_of(page, "#panel-note button[type=submit]")
        save_screenshot(page, "case-screen", "after-note")
        items = timeline.locator("li")
        expect(items.filter(has_text="Will pay on Friday")).to_have_count(1)
        text = timeline.inner_text()
        assert RAW.search(text) is None, text

        page.keyboard.press("Alt+j")  # next case
        expect(page).to_have_url(re.compile(r"/agency/cases/RC-"))
        heights["next"] = screen_height(page)
    context.close()
    print(f"case screen at 1366×768: page heights {heights}, submit button bottoms {bottoms}")
    assert all(h <= LAPTOP["height"] for h in heights.values()), heights
    assert all(b <= LAPTOP["height"] for b in bottoms.values()), bottoms
    assert_no_axe_problems(found)


def test_the_case_screen_on_a_phone(browser, live_server, browser_app, caseload):
    require_axe()
    context = browser.new_context(base_url=live_server, viewport=PHONE_SCREEN, bypass_csp=True)
    page = context.new_page()
    with time_machine.travel(MORNING, tick=True):
        sign_in(page)
        page.goto(f"/agency/cases/{caseload['Hardy']}")
        expect(page.locator("#situation")).to_have_text("hardship: cannot pay now")
        found = {"call": axe_problems(page)}
        assert overflow_width(page) <= PHONE_SCREEN["width"]
        save_screenshot(page, "case-screen", "phone")
        page.locator("#tab-message").click()
        # The situation picks the template and says the tone.
        expect(page.get_by_label("Email", exact=True)).to_have_value("payment_options")
        expect(page.locator("#tone")).to_contain_text("Be gentle")
        found["message"] = axe_problems(page)
        for tab in ("represent", "account", "prefs"):
            page.locator(f"#tab-{tab}").click()
            found[tab] = axe_problems(page)
            assert overflow_width(page) <= PHONE_SCREEN["width"], tab
        save_screenshot(page, "case-screen", "phone-preferences")
    context.close()
    assert_no_axe_problems(found)


def test_cease_and_close_need_their_confirmation_and_keep_the_letter(
    page: Page, browser_app, caseload, tmp_path
):
    reference = caseload["Smith"]
    letter = tmp_path / "cease-letter.pdf"
    letter.write_bytes(PDF)
    page.set_viewport_size(LAPTOP)
    with time_machine.travel(MORNING, tick=True):
        sign_in(page)
        page.goto(f"/agency/cases/{reference}?tab=represent")
        cease = page.locator("form").filter(has_text="Cease request")
        cease.get_by_label("The debtor's letter").set_input_files(str(letter))
        cease.get_by_role("button", name="Record cease request").click()
        expect(page.get_by_role("alert").filter(has_text="Tick the box")).to_be_visible()
        expect(page.locator("#panel-represent")).to_be_visible()
        with browser_app.app_context():
            case = db.session.scalar(sa.select(Case).where(Case.reference == reference))
            assert case.debtor.cease_requested_at is None

        cease = page.locator("form").filter(has_text="Cease request")
        cease.get_by_label("The debtor's letter").set_input_files(str(letter))
        cease.get_by_role("checkbox", name=re.compile("I confirm")).check()
        cease.get_by_role("button", name="Record cease request").click()
        expect(page.get_by_role("status")).to_contain_text("Cease request recorded")
        expect(page.locator(".timeline")).to_contain_text("The debtor's cease letter")
        page.locator(".timeline").get_by_role("link", name="cease-letter.pdf").click()
        expect(page).to_have_url(re.compile(r"/agency/documents/\d+$"))
        page.go_back()

        page.locator("#tab-close").click()
        page.get_by_label("Close reason").select_option("cease")
        page.get_by_label("Why", exact=True).fill("Debtor asked us to stop")
        page.get_by_role("button", name="Close").click()
        expect(page.get_by_role("alert").filter(has_text="Tick the box")).to_be_visible()
        with browser_app.app_context():
            case = db.session.scalar(sa.select(Case).where(Case.reference == reference))
            assert case.status == "active" and case.debtor.cease_requested_at is not None
            kept = db.session.scalars(sa.select(Document).where(Document.case_id == case.id)).all()
            assert [(d.kind, d.filename) for d in kept] == [("cease_letter", "cease-letter.pdf")]


def test_without_javascript_the_tabs_are_links_and_the_forms_post(
    browser, live_server, browser_app, caseload
):
    context = browser.new_context(base_url=live_server, viewport=LAPTOP, java_script_enabled=False)
    page = context.new_page()
    with time_machine.travel(MORNING, tick=True):
        sign_in(page)
        page.goto(f"/agency/cases/{caseload['Hardy']}")
        expect(page.locator("#panel-call")).to_be_visible()
        expect(page.locator("#panel-note")).to_be_hidden()
        page.get_by_role("link", name=re.compile("^Note")).click()
        expect(page).to_have_url(re.compile(r"\?tab=note$"))
        expect(page.locator("#panel-note")).to_be_visible()
        page.locator("#note-body").fill("Sent without JavaScript.")
        page.get_by_role("button", name="Add note").click()
        expect(page.get_by_role("status")).to_have_text("Note added.")
        expect(
            page.locator(".timeline li").filter(has_text="Sent without JavaScript")
        ).to_have_count(1)
    context.close()
