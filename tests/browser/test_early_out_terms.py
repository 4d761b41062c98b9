"""The early-out terms page in a real browser (issue #20): an admin edits a client's cadence,
conversion day and fee; a refused change says why and keeps nothing; the page passes axe and fits
a phone."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from cases import audit
from cases.clients import create_client
from cases.early_out import EarlyOutTerms
from cases.users import create_user
from shell.extensions import db
from tests.browser.kit import (
    assert_no_axe_problems,
    axe_problems,
    overflow_width,
    require_axe,
    save_screenshot,
)

ACTOR = audit.Actor(None, "test")
ADMIN = "terms-admin@recourse.test"
PASSWORD = "correct-horse-battery"
URL = "/agency/clients/ACME/early-out"


@pytest.fixture(scope="module")
def acme(browser_app) -> int:
    with browser_app.app_context():
        create_user(db.session, ADMIN, PASSWORD, "admin", actor=ACTOR)
        client = create_client(db.session, "ACME", "Acme Plumbing", actor=ACTOR)
        db.session.commit()
        return client.id


def sign_in(page: Page) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/agency/$"))


def _saved(browser_app, client_id: int) -> EarlyOutTerms | None:
    with browser_app.app_context():
        terms = db.session.scalar(
            sa.select(EarlyOutTerms).where(EarlyOutTerms.client_id == client_id)
        )
        if terms is not None:
            db.session.expunge(terms)
        return terms


@pytest.mark.parametrize("width", [1280, 375])
def test_the_terms_page_passes_axe_fits_a_phone_and_saves(
    browser, live_server, browser_app, acme, width
):
    require_axe()
    with browser_app.app_context():  # each width starts from the defaults
        db.session.execute(sa.delete(EarlyOutTerms).where(EarlyOutTerms.client_id == acme))
        db.session.commit()
    context = browser.new_context(
        base_url=live_server, bypass_csp=True, viewport={"width": width, "height": 900}
    )
    page = context.new_page()
    found, overflow = {}, {}
    try:
        sign_in(page)
        page.goto("/agency/clients/ACME")
        page.get_by_role("link", name="Early-out terms").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Early-out terms: ACME")
        found["form"] = axe_problems(page)
        overflow["form"] = overflow_width(page)
        save_screenshot(page, "early_out", "terms")

        # A step in the 8 quiet days before conversion: refused, said, nothing kept.
        step5 = page.get_by_role("group", name="Step 5")
        day = "85" if width == 1280 else "86"
        step5.get_by_label("Day past due").fill(day)
        page.get_by_role("button", name="Save early-out terms").click()
        expect(page.locator(".flash, [role=alert], .error").first).to_contain_text(
            "no reminder goes out in the 8 days before conversion"
        )
        found["refused"] = axe_problems(page)
        overflow["refused"] = overflow_width(page)
        save_screenshot(page, "early_out", "terms-refused")
        assert _saved(browser_app, acme) is None or _saved(browser_app, acme).cadence[2][
            "day"
        ] != int(day)

        # Moved conversion to day 120 makes room: saved, shown back.
        page.get_by_label("Accounts convert to collection on day (past due)").fill("120")
        page.get_by_label("A flat fee per account placed").check()
        page.get_by_label("Flat fee per account placed (dollars)").fill("6.25")
        page.get_by_role("button", name="Save early-out terms").click()
        expect(page.get_by_text("Early-out terms of ACME saved.")).to_be_visible()
        expect(page.get_by_label("Accounts convert to collection on day (past due)")).to_have_value(
            "120"
        )
        terms = _saved(browser_app, acme)
        assert terms.convert_after_days == 120 and terms.cadence[4]["day"] == int(day)
        assert (terms.fee_kind, terms.flat_fee_cents) == ("flat", 625)
    finally:
        context.close()
    assert_no_axe_problems(found)
    assert all(w <= width for w in overflow.values()), overflow
