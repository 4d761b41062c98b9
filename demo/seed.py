"""The demo agency: deterministic data for trying Recourse out (`flask demo seed`).

It holds together as real data does: every case whose notice went out has the notice (the
real B-1 PDF, sent through the same path as the daily run), no contact is dated after now,
each client's statements for the months before the last one are issued (so the last month's
statement lists that month's money, not every earlier month's as late adjustments), and each
client has cases in the states worth showing: a dispute awaiting verification, an autopay plan
whose card was declined, a time-barred debt, a debtor with an attorney, a cease request."""

from __future__ import annotations

import datetime as dt
import functools
import random
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from cases import audit
from cases.case import Case, change_status, next_references, open_case
from cases.clients import Client, create_client
from cases.contacts import CALL_OUTCOMES, CaseNote, Contact
from cases.debtors import Address, Debtor, Email, Phone, match_key
from cases.disputes import Dispute
from cases.model import utcnow
from cases.offers import SettlementOffer
from cases.plans import Installment, PaymentPlan, PromiseToPay
from cases.users import User, create_user
from demo.showcase import SHOWCASE, showcase_case
from payments.fees import parse_tiers, set_schedule
from payments.posting import LedgerEntry, post_payment, post_placement
from payments.statements import Month, StatementDoc, issue, last_ended_month

DEMO_PASSWORD = "recourse-demo"
DEMO_LOGINS = [
    ("admin", "admin@recourse.test", DEMO_PASSWORD),
    ("supervisor", "supervisor@recourse.test", DEMO_PASSWORD),
    ("collector", "collector@recourse.test", DEMO_PASSWORD),
    ("collector", "collector2@recourse.test", DEMO_PASSWORD),
    ("client", "client@acme.test", DEMO_PASSWORD),
    ("client", "client@bluesky.test", DEMO_PASSWORD),
    ("client", "client@cedar.test", DEMO_PASSWORD),
]
CLIENTS = [
    ("ACME", "Acme Plumbing Supply", "90=2500,181=3300,366=4000", None),
    ("BLUESKY", "Blue Sky Dental", "90=3000,181=3500", 4500),
    ("CEDAR", "Cedar Grove Veterinary", "90=2500,366=3500", None),
]
CASES_PER_CLIENT = 100
# How a demo case ends up, in proportion; every status appears.
OUTCOMES = (
    ["new"] * 10
    + ["active"] * 40
    + ["plan"] * 12
    + ["paid"] * 10
    + ["settled"] * 6
    + ["disputed"] * 8
    + ["closed"] * 14
)
FIRST = ["Maria", "James", "Aisha", "Wei", "Carlos", "Emily", "Dmitri", "Grace", "Tomás", "Nora"]
LAST = ["Garcia", "Smith", "Johnson", "Nguyen", "Okafor", "Kowalski", "Brown", "Lopez", "Chen"]
COMPANIES = ["Riverside Bakery LLC", "Summit Auto Body", "Harbor Florist Inc", "Maple Day Spa"]
# (state, ZIP, city, area code): spread across time zones, with MA, WA and CA for their rules.
PLACES = [
    ("NY", "10001", "New York", "212"),
    ("MA", "02108", "Boston", "617"),
    ("IL", "60601", "Chicago", "312"),
    ("TX", "75201", "Dallas", "214"),
    ("CO", "80202", "Denver", "303"),
    ("AZ", "85004", "Phoenix", "602"),
    ("CA", "94103", "San Francisco", "415"),
    ("WA", "98101", "Seattle", "206"),
    ("FL", "33130", "Miami", "305"),
    ("GA", "30303", "Atlanta", "404"),
]
CLOSE_REASONS = ["recalled", "uncollectible", "cease", "bankrupt", "deceased", "legal", "duplicate"]
# Per client, this many cases in each state worth showing (demo/showcase.py).
SHOWCASE_PER_CLIENT = 2


@dataclass(frozen=True)
class Paperwork:
    """What the seed needs from the rooms above it, handed in by `flask demo seed`
    (shell/cli.py): the daily run's way of sending a validation notice (correspondence.
    notice_run.send_notice: the B-1 PDF kept with the case, the letter recorded, the case
    active), the statement PDF, and the agency's time zone."""

    send_notice: Callable[..., object]
    render_statement: Callable[[StatementDoc], bytes]
    zone: ZoneInfo


def seed(
    session: Session,
    paperwork: Paperwork,
    today: dt.date | None = None,
    *,
    cases_per_client: int = CASES_PER_CLIENT,
    showcase_per_client: int = SHOWCASE_PER_CLIENT,
    now: dt.datetime | None = None,
) -> int:
    """Create the demo agency if it is not there yet; returns the number of cases created."""
    if session.scalar(sa.select(User.id).where(User.email == DEMO_LOGINS[0][1])):
        return 0
    now = now or utcnow()
    today = today or now.astimezone(paperwork.zone).date()
    # Nothing is dated after this: the end of `today`, or now if that is sooner.
    cap = min(now, dt.datetime.combine(today, dt.time(23, 59), dt.UTC))
    rng = random.Random(20261123)
    actor = audit.Actor(None, "demo")

    staff = {}
    for role, email, password in DEMO_LOGINS:
        if role != "client":
            staff[email] = create_user(
                session, email, password, role, actor=actor, name=email.split("@")[0].capitalize()
            )
    collectors = [u for u in staff.values() if u.role == "collector"]

    created = 0
    for (code, name, tiers, legal_bps), (_, client_email, password) in zip(
        CLIENTS, DEMO_LOGINS[4:], strict=True
    ):
        client = create_client(session, code, name, actor=actor)
        set_schedule(session, client, parse_tiers(tiers), actor=actor, legal_bps=legal_bps)
        create_user(
            session,
            client_email,
            password,
            "client",
            actor=actor,
            client=client,
            name=f"{name} staff",
        )
        for n in range(cases_per_client):
            _demo_case(session, rng, client, n, today, cap, collectors, actor, paperwork)
            created += 1
        for k, state in enumerate(SHOWCASE * showcase_per_client):
            n = cases_per_client + k
            ordinary = functools.partial(
                _demo_case, session, rng, client, n, today, cap, collectors, actor, paperwork
            )
            showcase_case(session, state, ordinary, today=today, cap=cap, actor=actor)
            created += 1
        _issue_earlier_statements(session, client, cap, actor, paperwork)
    return created


def _issue_earlier_statements(
    session: Session, client: Client, now: dt.datetime, actor: audit.Actor, paperwork: Paperwork
) -> None:
    """The statements of every month with money before the last ended one, oldest first: as
    if the agency had issued them each month. The last ended month's is left to issue."""
    zone = paperwork.zone
    first = session.scalar(
        sa.select(sa.func.min(LedgerEntry.received_at))
        .join(Case, Case.id == LedgerEntry.case_id)
        .where(Case.client_id == client.id)
    )
    if first is None:
        return
    month, last = Month.of(first), last_ended_month(zone, now)
    while str(month) < str(last):
        issue(
            session,
            client,
            month,
            zone=zone,
            now=dt.datetime.combine(month.next_start, dt.time(14), dt.UTC),
            actor=actor,
            render_pdf=paperwork.render_statement,
        )
        month = month.shift(1)


def _demo_case(
    session,
    rng,
    client,
    n,
    today,
    cap,
    collectors,
    actor,
    paperwork,
    outcome=None,
    place=None,
    due_days=None,
    referred_days=None,
    debt_kind=None,
) -> Case:
    state, zip_code, city, area = place or rng.choice(PLACES)
    commercial = rng.random() < 0.15
    if commercial:
        debtor = Debtor(kind="commercial", company_name=rng.choice(COMPANIES))
    else:
        debtor = Debtor(kind="consumer", first_name=rng.choice(FIRST), last_name=rng.choice(LAST))
    debtor.match_key = match_key(debtor.kind, debtor.display_name, zip_code)
    debtor.language = "es" if rng.random() < 0.1 else "en"
    debtor.addresses = [
        Address(
            line1=f"{rng.randint(1, 9999)} Main St", city=city, state=state, postal_code=zip_code
        )
    ]
    debtor.phones = [
        Phone(
            number=f"+1{area}555{rng.randint(0, 9999):04d}",
            type=rng.choice(["mobile", "home", "work"]),
            text_consent=rng.random() < 0.5,
        )
    ]
    slug = debtor.display_name.lower().replace(" ", ".")
    debtor.emails = [Email(address=f"{slug}.{client.code.lower()}{n}@example.com")]
    session.add(debtor)

    referred_on = today - dt.timedelta(days=referred_days or rng.randint(5, 300))
    due_date = referred_on - dt.timedelta(
        days=due_days or rng.choice([95, 120, 200, 250, 400, 500])
    )
    reference = next_references(session, referred_on)[0]
    case = open_case(
        session,
        client=client,
        debtor=debtor,
        reference=reference,
        account_number=f"{client.code[:3]}-{10000 + n}",
        referred_on=referred_on,
        due_date=due_date,
        actor=actor,
        invoice_number=f"INV-{rng.randint(1000, 99999)}",
        service_description="Services rendered",
    )
    case.assigned_to_id = rng.choice(collectors).id
    case.debt_kind = debt_kind
    principal = rng.randint(150, 8000) * 100 + rng.choice([0, 25, 50, 99])
    post_placement(
        session, case, "principal", principal, f"demo:{reference}:principal", referred_on
    )
    if rng.random() < 0.4:
        post_placement(
            session, case, "interest", principal // 20, f"demo:{reference}:interest", referred_on
        )
    if rng.random() < 0.3:
        post_placement(session, case, "fees", 3500, f"demo:{reference}:fees", referred_on)
    session.flush()
    balance = sum(
        e.amount_cents
        for e in session.scalars(sa.select(LedgerEntry).where(LedgerEntry.case_id == case.id))
    )

    outcome = outcome or rng.choice(OUTCOMES)
    if outcome == "new":
        return case
    # The notice goes the way the daily run sends it: the B-1 PDF kept on the case, the
    # letter recorded, the case active; the mail house confirms the mailing the same day.
    sent = dt.datetime.combine(referred_on + dt.timedelta(days=1), dt.time(14), dt.UTC)
    paperwork.send_notice(session, case, actor=actor, sent_at=sent, sent_on=sent.date())
    case.validation_mailed_on = sent.date()
    for k in range(rng.randint(0, 5)):
        at = sent + dt.timedelta(days=2 + 3 * k, hours=rng.randint(0, 6))
        if at > cap:  # no contact after now
            break
        session.add(
            Contact(
                case_id=case.id,
                channel="call",
                direction="outbound",
                outcome=rng.choice(CALL_OUTCOMES),
                occurred_at=at,
                user_id=case.assigned_to_id,
                target=debtor.phones[0].number,
            )
        )
        case.last_contact_at = at
    if rng.random() < 0.3:
        session.add(
            CaseNote(
                case_id=case.id,
                user_id=case.assigned_to_id,
                body="Debtor asked for a call back after payday.",
            )
        )

    def pay(amount, days_after, method="check"):
        when = min(referred_on + dt.timedelta(days=days_after), today)
        return post_payment(
            session,
            case,
            amount,
            external_id=f"demo:{reference}:{days_after}",
            received_at=when,
            method=method,
            actor=actor,
        )

    if outcome == "active" and rng.random() < 0.3:
        pay(balance // 4, 20)
        session.add(
            PromiseToPay(
                case_id=case.id,
                amount_cents=balance // 4,
                due_on=today + dt.timedelta(days=rng.randint(-5, 10)),
                recorded_by_id=case.assigned_to_id,
            )
        )
    elif outcome == "plan":
        count = rng.choice([3, 6, 12])
        plan = PaymentPlan(
            case_id=case.id,
            total_cents=balance,
            frequency="monthly",
            autopay=False,
            consented_at=sent,
            consent_text="I agree to pay on the schedule shown.",
        )
        each = balance // count
        start = referred_on + dt.timedelta(days=30)
        for seq in range(count):
            amount = each if seq < count - 1 else balance - each * (count - 1)
            plan.installments.append(
                Installment(
                    seq=seq + 1, due_on=start + dt.timedelta(days=30 * seq), amount_cents=amount
                )
            )
        session.add(plan)
        change_status(session, case, "plan", actor=actor, reason="payment plan agreed")
        session.flush()
        for inst in plan.installments:
            if inst.due_on <= today and inst.seq < count:
                pay(inst.amount_cents, (inst.due_on - referred_on).days, "card")
                inst.status = "paid"
                inst.paid_at = min(dt.datetime.combine(inst.due_on, dt.time(15), dt.UTC), cap)
    elif outcome == "paid":
        pay(balance, 25, rng.choice(["check", "ach", "card"]))
    elif outcome == "settled":
        amount = balance * 75 // 100
        session.add(
            SettlementOffer(
                case_id=case.id,
                amount_cents=amount,
                balance_cents=balance,
                expires_on=referred_on + dt.timedelta(days=60),
                status="paid",
                proposed_by_id=case.assigned_to_id,
            )
        )
        pay(amount, 30, "card")
        session.add(
            LedgerEntry(
                case_id=case.id,
                kind="settlement_writeoff",
                amount_cents=-(balance - amount),
                external_id=f"demo:{reference}:writeoff",
                received_at=min(referred_on + dt.timedelta(days=30), today),
            )
        )
        change_status(session, case, "settled", actor=actor, reason="settlement paid")
    elif outcome == "disputed":
        session.add(
            Dispute(
                case_id=case.id,
                received_at=min(sent + dt.timedelta(days=10), cap),
                channel="portal",
                reason="I do not recognise this debt.",
                within_validation_period=True,
            )
        )
        change_status(session, case, "disputed", actor=actor, reason="dispute received")
    elif outcome == "closed":
        change_status(
            session,
            case,
            "closed",
            actor=actor,
            reason="demo",
            close_reason=rng.choice(CLOSE_REASONS),
        )
    return case


def portal_example(session: Session) -> tuple[str, str, str] | None:
    """A demo debtor who can sign in to the portal and pay: (reference, last name, ZIP)."""
    row = session.execute(
        sa.select(Case.reference, Debtor.last_name, Address.postal_code)
        .join(Debtor, Debtor.id == Case.debtor_id)
        .join(Address, Address.debtor_id == Debtor.id)
        .where(Case.status == "active", Debtor.kind == "consumer")
        .order_by(Case.id)
        .limit(1)
    ).first()
    return tuple(row) if row else None
