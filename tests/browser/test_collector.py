"""A collector works the queue in a real browser: too late to call at 21:30, then the next
morning the promised case first, a call, a promise and a dispute that puts the case on hold."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from cases import audit
from cases.case import Case, change_status, next_references, open_case
from cases.clients import Client, create_client
from cases.contacts import Contact
from cases.debtors import Address, Debtor, Email, Phone, match_key
from cases.plans import PromiseToPay, record_promise
from cases.users import User, create_user
from payments.fees import parse_tiers, set_schedule
from payments.posting import post_placement
from shell.extensions import db
from tests.browser.kit import save_screenshot
from tests.conftest import SUITE_DAY

NY = ZoneInfo("America/New_York")
EMAIL = "collector@recourse.test"
PASSWORD = "correct-horse-battery"
ACTOR = audit.Actor(None, "test")
PHONE = "+12125550100"
REFERRED_ON = dt.date(2026, 11, 2)
# A Monday evening, after the 21:00 end of the calling window; then the next morning.
EVENING = dt.datetime(2026, 11, 23, 21, 30, tzinfo=NY)
MORNING = dt.datetime(2026, 11, 24, 10, 0, tzinfo=NY)


def open_active_case(
    session: Session, client: Client, collector: User, *, last_name: str, principal: int
) -> Case:
    """An active New York case assigned to the collector, inside its validation period."""
    debtor = Debtor(
        kind="consumer",
        first_name="Maria",
        last_name=last_name,
        match_key=match_key("consumer", f"Maria {last_name}", "10001"),
        addresses=[Address(line1="1 Main St", city="New York", state="NY", postal_code="10001")],
        phones=[Phone(number=PHONE, type="mobile")],
        emails=[Email(address=f"{last_name.lower()}@example.com")],
    )
    session.add(debtor)
    reference = next_references(session, REFERRED_ON)[0]
    case = open_case(
        session,
        client=client,
        debtor=debtor,
        reference=reference,
        account_number=f"A-{last_name.upper()}",
        referred_on=REFERRED_ON,
        due_date=REFERRED_ON - dt.timedelta(days=120),
        actor=ACTOR,
    )
    post_placement(session, case, "principal", principal, f"test:{reference}", REFERRED_ON)
    change_status(session, case, "active", actor=ACTOR, reason="validation notice sent")
    case.validation_sent_at = dt.datetime(2026, 11, 3, 15, 0, tzinfo=dt.UTC)
    case.validation_period_ends_on = dt.date(2026, 12, 10)  # a dispute now holds the case
    case.assigned_to_id = collector.id
    session.flush()
    return case


@pytest.fixture(scope="module")
def worklist(browser_app) -> dict[str, str]:
    """A collector with three New York cases, one with a promise due on the morning's date;
    committed for real. Their references by debtor's last name."""
    # A module fixture runs before the autouse `fixed_day`: put it on the suite's day too.
    with time_machine.travel(SUITE_DAY, tick=True), browser_app.app_context():
        client = create_client(db.session, "ACME", "Acme Plumbing", actor=ACTOR)
        set_schedule(db.session, client, parse_tiers("90=2500"), actor=ACTOR)
        collector = create_user(db.session, EMAIL, PASSWORD, "collector", actor=ACTOR)
        cases = {
            name: open_active_case(
                db.session, client, collector, last_name=name, principal=principal
            )
            for name, principal in (("Garcia", 120_000), ("Promised", 40_000), ("Smith", 80_000))
        }
        record_promise(
            db.session,
            cases["Promised"],
            amount_cents=10_000,
            due_on=MORNING.date(),
            today=EVENING.date(),
            actor=ACTOR,
        )
        db.session.commit()
        return {name: case.reference for name, case in cases.items()}


def sign_in(page: Page) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/agency/$"))


def test_a_collector_works_the_queue_within_the_calling_hours(page: Page, browser_app, worklist):
    promised = worklist["Promised"]
    call = page.locator("#window-call")

    # Time only moves forward: a signed session cookie from the future would be refused.
    with time_machine.travel(EVENING, tick=True):
        sign_in(page)
        page.goto("/agency/queue")
        rows = page.get_by_role("row").filter(has_text=re.compile(r"RC-\d{4}-\d{5}"))
        expect(rows).to_have_count(3)
        for reference in worklist.values():
            row = rows.filter(has_text=reference)
            expect(row.locator("td").last).to_have_text("No — from 2026-11-24 08:00 EST")

        page.get_by_role("link", name="Next case to call").click()
        expect(page).to_have_url(re.compile(r"/agency/queue$"))
        expect(page.get_by_role("status")).to_contain_text("Nothing to call right now")

        page.get_by_role("link", name=promised).click()
        expect(page).to_have_url(re.compile(rf"/agency/cases/{promised}$"))
        expect(call).to_contain_text("Call allowed now: no")
        expect(call.get_by_role("listitem")).to_have_text(
            "It is 21:30 in America/New_York; calls are allowed 08:00–21:00 the debtor's time."
        )
        expect(call.locator(".next-allowed")).to_have_text(
            "Next allowed: 2026-11-24 08:00 EST — the debtor's time: "
            "Tue Nov 24 08:00 America/New_York"
        )

    with time_machine.travel(MORNING, tick=True):
        page.goto("/agency/queue")
        first = page.get_by_role("row").nth(1)
        expect(first).to_contain_text(promised)
        expect(first).to_contain_text("promise due today")
        page.get_by_role("link", name="Next case to call").click()
        expect(page).to_have_url(re.compile(rf"/agency/cases/{promised}$"))
        expect(call).to_contain_text("Call allowed now: yes")

        page.get_by_label("Number called").select_option(PHONE)
        page.get_by_label("Outcome").select_option("conversation")
        page.get_by_role("button", name="Log call").click()
        expect(page.get_by_role("status")).to_have_text("Call logged.")
        expect(page.locator(".timeline")).to_contain_text(
            f"outbound call — spoke with the debtor ({PHONE})"
        )

        # The case screen's actions are tabs.
        page.get_by_role("tab", name=re.compile(r"^Promise")).click()
        page.get_by_label("Amount promised").fill("150.00")
        page.get_by_label("Due on").fill("2026-11-30")
        page.get_by_role("button", name="Record promise").click()
        expect(page.get_by_role("status")).to_have_text("Promise to pay recorded.")
        page.get_by_role("tab", name=re.compile(r"^Account")).click()
        expect(page.get_by_role("region", name=re.compile(r"^Balance"))).to_contain_text(
            "$150.00 by 2026-11-30 — open"
        )

        page.get_by_role("tab", name=re.compile(r"^Dispute")).click()
        page.get_by_label("What the debtor disputes").fill("Says the invoice was paid in June.")
        page.get_by_role("button", name="Record dispute or request").click()
        expect(page.get_by_role("status")).to_contain_text(
            "Dispute recorded. The case is on hold until verification is sent."
        )
        expect(page.get_by_role("alert").filter(has_text="On hold")).to_be_visible()
        expect(page.locator("h1 .status")).to_have_text("disputed")
        expect(call).to_contain_text("Call allowed now: no")
        expect(call.locator(".next-allowed")).to_have_text("Not by waiting.")
        save_screenshot(page, "case-screen", "disputed")

    with browser_app.app_context():
        case = db.session.scalar(sa.select(Case).where(Case.reference == promised))
        collector = db.session.scalar(sa.select(User).where(User.email == EMAIL))
        contacts = db.session.scalars(sa.select(Contact).where(Contact.case_id == case.id)).all()
        promises = db.session.scalars(
            sa.select(PromiseToPay).where(
                PromiseToPay.case_id == case.id, PromiseToPay.recorded_by_id == collector.id
            )
        ).all()
        assert case.status == "disputed"
        assert [(c.channel, c.outcome, c.user_id) for c in contacts] == [
            ("call", "conversation", collector.id)
        ]
        assert [(p.amount_cents, p.due_on) for p in promises] == [(15_000, dt.date(2026, 11, 30))]
