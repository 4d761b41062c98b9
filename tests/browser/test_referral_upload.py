"""A client refers accounts in a real browser: upload, preview, import, cases, rejected rows."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from cases import audit
from cases.case import Case
from cases.clients import create_client
from cases.users import create_user
from payments.fees import parse_tiers, set_schedule
from shell.extensions import db

EMAIL = "ap@acme.test"
PASSWORD = "correct-horse-battery"
ACTOR = audit.Actor(None, "test")
HEADER = [
    "account_number",
    "first_name",
    "last_name",
    "email",
    "phone",
    "address_line1",
    "city",
    "state",
    "postal_code",
    "principal",
    "interest",
    "fees",
    "due_date",
]
ACCEPTED = ["ACC-1001", "ACC-1002", "ACC-1004"]


@pytest.fixture(scope="module")
def acme(browser_app) -> int:
    """The client ACME with a fee schedule and one client user; committed for real."""
    with browser_app.app_context():
        client = create_client(db.session, "ACME", "Acme Plumbing", actor=ACTOR)
        set_schedule(db.session, client, parse_tiers("90=2500"), actor=ACTOR)
        create_user(db.session, EMAIL, PASSWORD, "client", actor=ACTOR, client=client)
        db.session.commit()
        return client.id


def referral_file() -> tuple[bytes, list[list[str]]]:
    """A CSV with three good rows, one too young and one repeating an account; and its rows."""
    # The upload's as-of date is today in the agency's time zone (AGENCY_TIMEZONE's default).
    today = dt.datetime.now(ZoneInfo("America/New_York")).date()
    old = (today - dt.timedelta(days=200)).isoformat()
    young = (today - dt.timedelta(days=10)).isoformat()
    rows = [
        ["ACC-1001", "Maria", "Garcia", "maria@example.com", "(212) 555-0100",
         "1 Main St", "New York", "NY", "10001", "1,234.56", "10.00", "0", old],
        ["ACC-1002", "John", "Smith", "", "(617) 555-0101",
         "2 Beacon St", "Boston", "MA", "02108", "$500.00", "0", "25.00", old],
        ["ACC-1003", "Ana", "Young", "", "",
         "3 Pine St", "Seattle", "WA", "98101", "300.00", "0", "0", young],
        ["ACC-1001", "Maria", "Garcia", "", "",
         "1 Main St", "New York", "NY", "10001", "99.00", "0", "0", old],
        ["ACC-1004", "Lee", "Chen", "lee@example.com", "",
         "4 Pike St", "Seattle", "WA", "98101", "750.00", "0", "0", old],
    ]  # fmt: skip
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    return out.getvalue().encode(), rows


def sign_in(page: Page) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/client/$"))


def test_upload_preview_import_and_download_rejected_rows(page: Page, browser_app, acme):
    data, rows = referral_file()
    sign_in(page)

    page.goto("/client/referrals")
    page.get_by_label("Referral file (CSV or Excel .xlsx, up to 200 MB)").set_input_files(
        {"name": "march.csv", "mimeType": "text/csv", "buffer": data}
    )
    page.get_by_role("button", name="Upload and preview").click()

    # The preview: what would be imported, and each rejected row with its row, column and why.
    expect(page).to_have_url(re.compile(r"/client/referrals/\d+$"))
    expect(page.get_by_role("heading", name="Preview")).to_be_visible()
    expect(page.locator("#accepted-count")).to_have_text("3")
    rejected = page.locator("#rejected-rows tbody tr")
    expect(rejected).to_have_count(2)
    expect(rejected.nth(0).locator("td")).to_have_text(
        ["4", "due_date", re.compile(r"10 days past due on .*at least 90 days past due")]
    )
    expect(rejected.nth(1).locator("td")).to_have_text(
        ["5", "account_number", "account_number ACC-1001 repeats row 2; the first is kept"]
    )

    page.get_by_role("button", name="Import 3 accounts").click()

    # Without Redis the import runs in-process after the confirm commits; with a queue the page
    # polls status.json and reloads. Either way it ends on "Imported".
    expect(page.get_by_role("heading", name="Imported")).to_be_visible()
    expect(page.locator("#imported-count")).to_have_text("3")

    with page.expect_download() as download_info:
        page.get_by_role("link", name=re.compile(r"^Download rejected rows")).click()
    download = download_info.value
    assert re.fullmatch(r"rejected-rows-\d+\.csv", download.suggested_filename)
    with open(download.path(), newline="", encoding="utf-8") as f:
        downloaded = list(csv.reader(f))
    assert downloaded[0] == [*HEADER, "reason"]
    assert [line[:-1] for line in downloaded[1:]] == [rows[2], rows[3]]
    assert downloaded[1][-1].startswith("due_date: the account is 10 days past due on ")
    assert (
        downloaded[2][-1]
        == "account_number: account_number ACC-1001 repeats row 2; the first is kept"
    )

    with browser_app.app_context():
        opened = dict(
            db.session.execute(
                sa.select(Case.account_number, Case.reference).where(Case.client_id == acme)
            ).all()
        )
    assert sorted(opened) == ACCEPTED

    page.get_by_role("link", name="See your cases").click()
    expect(page).to_have_url(re.compile(r"/client/cases$"))
    expect(page.get_by_role("heading", name=re.compile(r"^Cases"))).to_contain_text("(3)")
    for account, reference in opened.items():
        row = page.get_by_role("row").filter(has_text=account)
        expect(row.get_by_role("link", name=reference)).to_be_visible()
