"""Every client page in a real browser at desktop and phone widths: axe-core finds no serious
problem, nothing is wider than the screen, and a screenshot of each is kept. Also the client's
side of a dispute, driven as a client user does it."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from cases import audit
from cases.case import Case
from cases.clients import create_client
from cases.disputes import Dispute, record_dispute
from cases.documents import Document
from cases.referrals import hold_for_mapping, preview
from cases.users import create_user
from payments.fees import parse_tiers, set_schedule
from shell.document_store import store
from shell.extensions import db
from tests.browser.kit import (
    assert_no_axe_problems,
    axe_problems,
    overflow_width,
    require_axe,
    save_screenshot,
)

EMAIL = "ap@clientpages.test"
PASSWORD = "correct-horse-battery"
ACTOR = audit.Actor(None, "test")
PDF = b"%PDF-1.4 the signed agreement"


def today() -> dt.date:
    return dt.datetime.now(ZoneInfo("America/New_York")).date()


def referral_csv(accounts: list[str], separator: str = ",") -> bytes:
    old = (today() - dt.timedelta(days=200)).isoformat()
    young = (today() - dt.timedelta(days=10)).isoformat()
    header = [
        "account_number", "first_name", "last_name", "email", "address_line1", "city",
        "state", "postal_code", "principal", "due_date",
    ]  # fmt: skip
    lines = [separator.join(header)]
    for i, account in enumerate(accounts):
        due = young if i == 1 else old
        lines.append(
            separator.join(
                [
                    account,
                    "Maria",
                    f"Garcia{i}",
                    f"m{i}@example.com",
                    f"{i} Main Street",
                    "New York",
                    "NY",
                    "10001",
                    f"{100 + i}.00",
                    due,
                ]
            )  # fmt: skip
        )
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture(scope="module")
def seeded(browser_app) -> dict:
    """A client with cases imported from a file, a disputed case with the debtor's document,
    a file waiting for its columns, a previewed file and one part-way through its import."""
    with browser_app.app_context():
        client = create_client(db.session, "CLPG", "Client Pages Ltd", actor=ACTOR)
        set_schedule(db.session, client, parse_tiers("90=2500"), actor=ACTOR)
        user = create_user(db.session, EMAIL, PASSWORD, "client", actor=ACTOR, client=client)
        actor = audit.Actor.user(user)
        from cases.referrals import confirm
        from shell.referral_store import import_job

        imported = preview(
            db.session, client, referral_csv(["P-1", "P-2", "P-3"]), "first.csv",
            as_of=today(), actor=actor,
        )  # fmt: skip
        confirm(db.session, imported, actor=actor)
        db.session.flush()
        import_job(db.session, imported.id)
        case = db.session.scalar(sa.select(Case).where(Case.account_number == "P-1"))
        dispute = record_dispute(
            db.session,
            case,
            reason="I never signed up for this plan; the amount is wrong.",
            channel="portal",
            received_at=dt.datetime.now(dt.UTC),
            actor=ACTOR,
        )
        store(
            b"%PDF-1.4 my bank statement",
            filename="bank-statement.pdf",
            content_type="application/pdf",
            kind="dispute_upload",
            case_id=case.id,
            debtor_id=case.debtor_id,
        )
        theirs = b"Acct #,First Name,Surname,ST,Zip,Amount Due,Due\n"
        theirs += b"X-1,Ann,Lee,NY,10001,250.00,2025-01-02\nX-2,Bo,Kim,NY,10002,99.00,2025-02-01\n"
        mapping = hold_for_mapping(
            db.session, client, theirs, "export.csv", as_of=today(), actor=actor
        )
        previewed = preview(
            db.session, client, referral_csv(["Q-1", "Q-2", "Q-3", "P-1"], ";"), "semi.csv",
            as_of=today(), actor=actor,
        )  # fmt: skip
        importing = preview(
            db.session, client, referral_csv(["R-1", "R-2", "R-3"]), "big.csv",
            as_of=today(), actor=actor,
        )  # fmt: skip
        importing.status, importing.processed_rows = "importing", 1
        db.session.commit()
        return {
            "case": case.reference,
            "dispute": dispute.id,
            "mapping": mapping.id,
            "preview": previewed.id,
            "importing": importing.id,
        }


def sign_in(page: Page) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/client/$"))


@pytest.mark.parametrize("width", [1280, 375])
def test_every_client_page_passes_axe_and_fits_a_phone(browser, live_server, seeded, width):
    require_axe()
    context = browser.new_context(
        base_url=live_server, bypass_csp=True, viewport={"width": width, "height": 900}
    )
    page = context.new_page()
    pages = {
        "dashboard": "/client/",
        "referrals": "/client/referrals",
        "mapping": f"/client/referrals/{seeded['mapping']}/mapping",
        "preview": f"/client/referrals/{seeded['preview']}",
        "progress": f"/client/referrals/{seeded['importing']}",
        "cases": "/client/cases",
        "case": f"/client/cases/{seeded['case']}",
        "disputes": "/client/disputes",
        "dispute": f"/client/disputes/{seeded['dispute']}",
        "reports": "/client/reports",
        "statements": "/client/statements",
    }
    found, overflow = {}, {}
    try:
        sign_in(page)
        for name, path in pages.items():
            page.goto(path)
            expect(page.locator("h1")).to_be_visible()
            found[name] = axe_problems(page)
            if (wide := overflow_width(page)) > width:
                overflow[name] = wide
            save_screenshot(page, "client", name)
        # The upload form showing its refusal.
        page.goto("/client/referrals")
        page.get_by_role("button", name="Upload and preview").click()
        expect(page.get_by_text("Choose a file to upload.")).to_be_visible()
        found["upload"] = axe_problems(page)
        if (wide := overflow_width(page)) > width:
            overflow["upload"] = wide
        save_screenshot(page, "client", "upload")
    finally:
        context.close()
    assert_no_axe_problems(found)
    assert overflow == {}, f"pages wider than {width}px: {overflow}"


def test_preview_mapping_and_progress_in_the_browser(page: Page, seeded):
    sign_in(page)
    # The semicolon file's preview: each row with its status, the rejected cell highlighted.
    page.goto(f"/client/referrals/{seeded['preview']}")
    rows = page.locator("#preview-rows tbody tr")
    expect(rows).to_have_count(4)
    expect(rows.nth(1)).to_have_class("rejected")
    expect(rows.nth(1).locator("td.bad-cell")).to_have_count(1)
    expect(rows.nth(1).locator("td.why")).to_contain_text("days past due")
    expect(rows.nth(3).locator("td.why")).to_contain_text("already open as case")
    expect(rows.nth(3).locator("td.bad-cell")).to_contain_text("P-1")

    # The mapping form comes with its guesses chosen and examples shown.
    page.goto(f"/client/referrals/{seeded['mapping']}/mapping")
    expect(page.get_by_label("account_number (required)")).to_have_value("Acct #")
    expect(page.get_by_label(re.compile(r"^last_name"))).to_have_value("Surname")
    expect(page.get_by_label("principal (required)")).to_have_value("Amount Due")
    expect(page.get_by_label("due_date (required)")).to_have_value("Due")
    expect(page.locator("#samples")).to_contain_text("250.00 · 99.00")
    page.get_by_role("button", name="Check the file").click()
    expect(page.get_by_role("heading", name="Preview")).to_be_visible()
    expect(page.locator("#accepted-count")).to_have_text("2")

    # The import part-way: rows done of all, and the page keeps its meta refresh for no-JS.
    page.goto(f"/client/referrals/{seeded['importing']}")
    expect(page.locator("#progress-text")).to_have_text("1 of 3 rows")
    expect(page.locator("#import-progress")).to_have_attribute("value", "33")


def test_the_client_uploads_a_document_for_a_dispute(page: Page, browser_app, seeded):
    sign_in(page)
    page.get_by_role("link", name="Disputes").click()
    page.get_by_role("link", name=re.compile(seeded["case"])).click()
    expect(page.locator("#dispute-reason")).to_contain_text("I never signed up")
    expect(page.locator("#needs")).to_contain_text("signed agreement or contract")
    page.get_by_label(re.compile("^Document for the verification")).set_input_files(
        {"name": "agreement.pdf", "mimeType": "application/pdf", "buffer": PDF}
    )
    page.get_by_role("button", name="Upload document").click()
    expect(page.get_by_text("agreement.pdf is with the agency")).to_be_visible()
    expect(page.locator("#documents")).to_contain_text("agreement.pdf")
    with browser_app.app_context():
        kinds = db.session.scalars(
            sa.select(Document.kind)
            .join(Dispute, Dispute.case_id == Document.case_id)
            .where(Dispute.id == seeded["dispute"])
        ).all()
    assert sorted(kinds) == ["client_verification", "dispute_upload"]
