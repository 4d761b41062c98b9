"""The demo agency: deterministic data for trying Recourse out (`flask demo seed`)."""

from __future__ import annotations

import datetime as dt
import random

import sqlalchemy as sa
from sqlalchemy.orm import Session

from cases import audit
from cases.case import Case, change_status, next_references, open_case
from cases.clients import create_client
from cases.contacts import CALL_OUTCOMES, CaseNote, Contact
from cases.debtors import Address, Debtor, Email, Phone, match_key
from cases.disputes import Dispute
from cases.model import utcnow
from cases.offers import SettlementOffer
from cases.plans import Installment, PaymentPlan, PromiseToPay
from cases.users import User, create_user
from payments.fees import parse_tiers, set_schedule
from payments.posting import LedgerEntry, post_payment, post_placement

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


def seed(session: Session, today: dt.date | None = None) -> int:
    """Create the demo agency if it is not there yet; returns the number of cases created."""
    if session.scalar(sa.select(User.id).where(User.email == DEMO_LOGINS[0][1])):
        return 0
    today = today or utcnow().date()
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
        for n in range(CASES_PER_CLIENT):
            _demo_case(session, rng, client, n, today, collectors, actor)
            created += 1
    return created


def _demo_case(session, rng, client, n, today, collectors, actor) -> Case:
    state, zip_code, city, area = rng.choice(PLACES)
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

    referred_on = today - dt.timedelta(days=rng.randint(5, 300))
    due_date = referred_on - dt.timedelta(days=rng.choice([95, 120, 200, 250, 400, 500]))
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

    outcome = rng.choice(OUTCOMES)
    if outcome == "new":
        return case
    sent = dt.datetime.combine(referred_on + dt.timedelta(days=1), dt.time(14), dt.UTC)
    case.validation_sent_at = sent
    case.validation_mailed_on = sent.date()  # the mail house confirmed it the same day
    case.validation_period_ends_on = referred_on + dt.timedelta(days=38)
    change_status(session, case, "active", actor=actor, reason="validation notice sent")
    session.add(
        Contact(
            case_id=case.id,
            channel="letter",
            direction="outbound",
            occurred_at=sent,
            subject="Validation notice",
            target=debtor.addresses[0].line1,
        )
    )
    for k in range(rng.randint(0, 5)):
        at = sent + dt.timedelta(days=2 + 3 * k, hours=rng.randint(0, 6))
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
                inst.paid_at = dt.datetime.combine(inst.due_on, dt.time(15), dt.UTC)
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
                received_at=sent + dt.timedelta(days=10),
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
