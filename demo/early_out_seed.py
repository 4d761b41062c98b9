"""The demo's early-out accounts (issue #20), one at every stage, for the first demo client:
placed, each reminder sent (email, text, letter, final notice), paid after a reminder, a reply
to the client, conversion switched off, and converted to a collection case. Called by
`flask demo seed` after the demo agency is made; does nothing if they are already there."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from cases import audit
from cases.case import Case, next_references, open_case
from cases.clients import Client
from cases.debtors import Address, Debtor, Email, Phone, match_key
from cases.early_out import EarlyOutReminder, EarlyOutReply, convert, set_terms
from cases.model import utcnow
from payments.posting import post_payment, post_placement

ACTOR = audit.Actor(None, "demo")
# (first name, last name, language, days past due today, cadence days sent, stage)
ACCOUNTS = [
    ("Lena", "Brooks", "en", 3, [1], "day-1 email sent"),
    ("Tomás", "Reyes", "es", 9, [1, 7], "text sent (consented)"),
    ("Avery", "Stone", "en", 21, [1, 7, 15], "firmer email sent"),
    ("Noor", "Haddad", "en", 41, [1, 7, 15, 30], "letter sent"),
    ("Lucía", "Vega", "es", 66, [1, 7, 15, 30, 60], "final notice sent"),
    ("Sam", "Okafor", "en", 18, [1, 7, 15], "paid after the day-15 email"),
    ("Dana", "Whit", "en", 12, [1, 7], "says they already paid"),
    ("Rui", "Costa", "en", 95, [1, 7, 15, 30, 60], "conversion switched off by the client"),
    ("Kim", "Park", "en", 97, [1, 7, 15, 30, 60], "converted to collection on day 90"),
]
CHANNELS = {1: "email", 7: "text", 15: "email", 30: "letter", 60: "email"}
TONES = {1: "friendly", 7: "friendly", 15: "firm", 30: "firm", 60: "final"}


def seed_early_out(session: Session, today: dt.date | None = None) -> int:
    """The early-out accounts of the first demo client; returns how many were made."""
    today = today or utcnow().date()
    client = session.scalar(sa.select(Client).order_by(Client.id))
    if client is None or session.scalar(
        sa.select(Case.id).where(Case.client_id == client.id, Case.early_out_placed_on.is_not(None))
    ):
        return 0
    set_terms(session, client, actor=ACTOR, reply_to=f"billing@{client.code.lower()}.example")
    for n, (first, last, language, age, sent, stage) in enumerate(ACCOUNTS):
        due = today - dt.timedelta(days=age)
        placed = due + dt.timedelta(days=1)
        debtor = Debtor(kind="consumer", first_name=first, last_name=last, language=language)
        debtor.match_key = match_key("consumer", debtor.display_name, "10001")
        debtor.addresses = [
            Address(line1=f"{40 + n} Elm St", city="New York", state="NY", postal_code="10001")
        ]
        debtor.phones = [Phone(number=f"+1212555{7100 + n}", type="mobile", text_consent=True)]
        debtor.emails = [Email(address=f"{first.lower()}.{last.lower()}@example.com")]
        session.add(debtor)
        reference = next_references(session, placed)[0]
        case = open_case(
            session,
            client=client,
            debtor=debtor,
            reference=reference,
            account_number=f"EO-{2000 + n}",
            referred_on=placed,
            due_date=due,
            actor=ACTOR,
            invoice_number=f"INV-{7000 + n}",
            service_description=f"Demo early-out account: {stage}",
        )
        case.program = "early_out"
        case.early_out_placed_on = placed
        post_placement(session, case, "principal", 18_500 + 1_250 * n, f"demo:{reference}", placed)
        for day in sent:
            session.add(
                EarlyOutReminder(
                    case_id=case.id,
                    day=day,
                    channel=CHANNELS[day],
                    tone=TONES[day],
                    language=language,
                    sent_on=due + dt.timedelta(days=day),
                )
            )
        session.flush()
        if stage.startswith("paid"):
            post_payment(
                session,
                case,
                18_500 + 1_250 * n,
                external_id=f"demo-eo-{reference}",
                received_at=today - dt.timedelta(days=1),
                method="check",
                actor=ACTOR,
                today=today,
            )
        elif stage.startswith("says"):
            session.add(
                EarlyOutReply(
                    case_id=case.id, kind="already_paid", message="I mailed a check on the 3rd."
                )
            )
        elif stage.startswith("conversion switched off"):
            case.early_out_converts = False
        elif stage.startswith("converted"):
            convert(session, case, today=due + dt.timedelta(days=90), actor=ACTOR)
    session.flush()
    return len(ACCOUNTS)
