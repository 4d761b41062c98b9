"""Recording contacts and asking whether one is allowed: the compliance engine applied to a case.

Recording never loses the truth: a contact that happened is always stored, with the rules it
broke and an alert for supervisors. Before the fact, `window` and `gate` say no.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from cases import audit
from cases.case import Case
from cases.compliance import DebtorFacts, PastContact, TimeRange, Violation, Window, check, window
from cases.contacts import CALL_OUTCOMES, CHANNELS, DIRECTIONS, ComplianceAlert, Contact
from cases.model import utcnow
from cases.timezones import candidate_zones

MAX_NOTE_CHARS = 5000
# A contact may be logged a little ahead of the server clock (a dialer's clock drifts).
CLOCK_SKEW = dt.timedelta(minutes=5)


class ContactError(ValueError):
    """A contact could not be recorded as given; the message says why."""


class ContactRefused(ValueError):
    """An outbound message that a rule forbids was not sent."""

    def __init__(self, violations: list[Violation]):
        self.violations = violations
        super().__init__("; ".join(v.message for v in violations))


def _time(text: str) -> dt.time:
    return dt.time.fromisoformat(text)


def debtor_facts(case: Case) -> DebtorFacts:
    return facts_of(case.debtor, disputed=case.status == "disputed")


def facts_of(debtor, *, disputed: bool) -> DebtorFacts:
    """The facts the rules need about a debtor: a Debtor, or plain rows with the same
    attributes (the queue reads many debtors' contact points as columns, not ORM objects)."""
    address = debtor.addresses[0] if debtor.addresses else None
    opted_out = set()
    if debtor.emails and all(e.opted_out_at for e in debtor.emails):
        opted_out.add("email")
    if debtor.phones and all(p.texts_opted_out_at for p in debtor.phones):
        opted_out.add("text")
    if debtor.phones and all(p.calls_opted_out_at for p in debtor.phones):
        opted_out.add("call")
    return DebtorFacts(
        kind=debtor.kind,
        state=address.state if address else None,
        zones=candidate_zones(
            [a.postal_code for a in debtor.addresses], [p.number for p in debtor.phones]
        ),
        inconvenient=tuple(
            TimeRange(tuple(r["days"]), _time(r["start"]), _time(r["end"]))
            for r in debtor.inconvenient_times
        ),
        cease_requested_at=debtor.cease_requested_at,
        attorney_since=debtor.attorney_since,
        dispute_hold=disputed,
        opted_out=frozenset(opted_out),
    )


def history(session: Session, case_id: int) -> list[PastContact]:
    rows = session.execute(
        sa.select(Contact.channel, Contact.direction, Contact.outcome, Contact.occurred_at)
        .where(Contact.case_id == case_id)
        .order_by(Contact.occurred_at)
    )
    return [PastContact(*row) for row in rows]


# Every rule looks back at most 7 days (plus a day for the local calendar).
RULES_LOOK_BACK = dt.timedelta(days=8)


def histories(
    session: Session, case_ids: list[int], since: dt.datetime | None = None
) -> dict[int, list[PastContact]]:
    """Many cases' recent contact histories in one query (the queue ranks pages of cases)."""
    found: dict[int, list[PastContact]] = {}
    if not case_ids:
        return found
    query = sa.select(
        Contact.case_id, Contact.channel, Contact.direction, Contact.outcome, Contact.occurred_at
    ).where(Contact.case_id.in_(case_ids))
    if since is not None:
        query = query.where(Contact.occurred_at >= since)
    for case_id, *contact in session.execute(query.order_by(Contact.occurred_at)):
        found.setdefault(case_id, []).append(PastContact(*contact))
    return found


def contact_window(
    session: Session,
    case: Case,
    channel: str,
    at: dt.datetime | None = None,
    purpose: str = "collection",
) -> Window:
    if channel not in CHANNELS:
        raise ContactError(f"channel must be one of: {', '.join(CHANNELS)}")
    return window(
        debtor_facts(case), history(session, case.id), channel, at or utcnow(), purpose=purpose
    )


def gate(
    session: Session,
    case: Case,
    channel: str,
    at: dt.datetime | None = None,
    purpose: str = "collection",
) -> None:
    """Raise ContactRefused if an outbound message may not be sent now."""
    violations = check(
        debtor_facts(case), history(session, case.id), channel, at or utcnow(), purpose=purpose
    )
    if violations:
        raise ContactRefused(violations)


@dataclass(frozen=True)
class Recorded:
    contact: Contact
    violations: list[Violation]


def record_contact(
    session: Session,
    case: Case,
    *,
    channel: str,
    direction: str,
    occurred_at: dt.datetime,
    actor: audit.Actor,
    outcome: str | None = None,
    note: str | None = None,
    target: str | None = None,
    subject: str | None = None,
    body: str | None = None,
    purpose: str = "collection",
    document_id: int | None = None,
) -> Recorded:
    """Record a contact that happened, with the rules it broke (and an alert if any)."""
    if channel not in CHANNELS:
        raise ContactError(f"channel must be one of: {', '.join(CHANNELS)}")
    if direction not in DIRECTIONS:
        raise ContactError(f"direction must be one of: {', '.join(DIRECTIONS)}")
    if channel == "call":
        if outcome not in CALL_OUTCOMES:
            raise ContactError(f"a call needs an outcome: one of {', '.join(CALL_OUTCOMES)}")
    elif outcome is not None:
        raise ContactError("only calls have an outcome")
    if occurred_at.tzinfo is None:
        raise ContactError("the time of the contact needs a time zone")
    if occurred_at > utcnow() + CLOCK_SKEW:
        raise ContactError("a contact cannot be recorded in the future")
    if note and len(note) > MAX_NOTE_CHARS:
        raise ContactError(f"the note is longer than {MAX_NOTE_CHARS} characters")

    violations = check(
        debtor_facts(case),
        history(session, case.id),
        channel,
        occurred_at,
        direction=direction,
        outcome=outcome,
        purpose=purpose,
    )
    contact = Contact(
        case_id=case.id,
        channel=channel,
        direction=direction,
        outcome=outcome,
        occurred_at=occurred_at,
        user_id=actor.user_id,
        target=target,
        subject=subject,
        body=body,
        note=note,
        document_id=document_id,
        violations=[{"rule": v.rule, "message": v.message} for v in violations],
    )
    session.add(contact)
    session.flush()
    if case.last_contact_at is None or occurred_at > case.last_contact_at:
        case.last_contact_at = occurred_at
    if violations:
        session.add(
            ComplianceAlert(case_id=case.id, contact_id=contact.id, rules=contact.violations)
        )
    audit.record(
        session,
        actor,
        "contact",
        contact.id,
        "contact.recorded",
        case_id=case.id,
        channel=channel,
        direction=direction,
        outcome=outcome,
        violations=[v.rule for v in violations],
    )
    return Recorded(contact, violations)
