"""Recording contacts and asking whether one is allowed: the compliance engine applied to a case.

Recording never loses the truth: a contact that happened is always stored, with the rules it
broke and an alert for supervisors. Before the fact, `window` and `gate` say no.

An email or a text is a contact only once the provider took it (cases.messages records it
then). While it waits in the outbox (`queued`) it still counts toward the limits, so that two
messages queued together cannot break a weekly limit; one `failed` or `held` never counts.
The outbox's table is defined here for that reason (cases.messages builds on this module).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from cases import audit
from cases.case import Case
from cases.compliance import (
    NOTICE_DAYS,
    DebtorFacts,
    PastContact,
    TimeRange,
    Violation,
    Window,
    check,
    window,
)
from cases.contacts import CALL_OUTCOMES, CHANNELS, DIRECTIONS, ComplianceAlert, Contact
from cases.debtors import PERSONAL_PHONE_TYPES, mark_wrong_number
from cases.model import Base, Timestamped, utcnow
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


class OutboundMessage(Timestamped, Base):
    """An email or text in the outbox (cases.messages): what is to be sent, to whom, and how
    it went: `queued` (waiting, or waiting to be tried again), `sent` (the provider took it;
    `contact_id` is the contact it became), `failed` (the provider refused it, or gave up),
    `held` (a contact rule forbade it at hand-over); `error` says why for the last two."""

    __tablename__ = "outbound_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int | None] = mapped_column(sa.ForeignKey("cases.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(sa.ForeignKey("contacts.id"))
    channel: Mapped[str] = mapped_column(sa.String(10), default="email")
    to_address: Mapped[str] = mapped_column(sa.String(254))
    subject: Mapped[str] = mapped_column(sa.String(300))
    body: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(10), default="queued", index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(sa.Text)
    sent_at: Mapped[dt.datetime | None]
    # The text provider's id for a sent text (what its delivery reports name).
    provider_id: Mapped[str | None] = mapped_column(sa.String(64))
    # What the rules are asked again at hand-over: the purpose, and who asked for it (the
    # contact it becomes is theirs).
    purpose: Mapped[str] = mapped_column(
        sa.String(30), default="collection", server_default="collection"
    )
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    actor_label: Mapped[str] = mapped_column(
        sa.String(80), default="system", server_default="system"
    )
    # After a transient failure: when it is tried again (its job waits in the job outbox).
    next_attempt_at: Mapped[dt.datetime | None]


def _time(text: str) -> dt.time:
    return dt.time.fromisoformat(text)


def debtor_facts(case: Case) -> DebtorFacts:
    return facts_of(
        case.debtor, disputed=case.status == "disputed", notice_due_by=notice_due_by(case)
    )


def notice_due_by(case) -> dt.datetime | None:
    """When the validation notice is due, for a `new` case still without one whose first
    communication is on record (SPEC §6.7); None otherwise. (A case leaves `new` when its
    notice is sent; one held or ended before that is governed by the hold or the end.)"""
    if (
        case.status != "new"
        or case.validation_sent_at is not None
        or case.first_communication_at is None
    ):
        return None
    return case.first_communication_at + NOTICE_DAYS


# A call that reached no one, or a limited-content voicemail (12 CFR 1006.2(j)), conveys
# nothing about the debt: it is not a communication and starts no clock.
NOT_COMMUNICATIONS = ("no_answer", "busy", "wrong_number", "voicemail")


def is_communication(channel: str, outcome: str | None) -> bool:
    return not (channel == "call" and outcome in NOT_COMMUNICATIONS)


def facts_of(debtor, *, disputed: bool, notice_due_by: dt.datetime | None = None) -> DebtorFacts:
    """The facts the rules need about a debtor: a Debtor, or plain rows with the same
    attributes (the queue reads many debtors' contact points as columns, not ORM objects)."""
    address = debtor.addresses[0] if debtor.addresses else None
    # A number a call found to be someone else's says nothing of the debtor (SPEC §6.13).
    phones = [p for p in debtor.phones if p.wrong_number_at is None]
    opted_out = set()
    if debtor.emails and all(e.opted_out_at for e in debtor.emails):
        opted_out.add("email")
    if phones and all(p.texts_opted_out_at for p in phones):
        opted_out.add("text")
    if phones and all(p.calls_opted_out_at for p in phones):
        opted_out.add("call")
    return DebtorFacts(
        kind=debtor.kind,
        state=address.state if address else None,
        zones=candidate_zones(
            [a.postal_code for a in debtor.addresses], [p.number for p in phones]
        ),
        inconvenient=tuple(
            TimeRange(tuple(r["days"]), _time(r["start"]), _time(r["end"]))
            for r in debtor.inconvenient_times
        ),
        cease_requested_at=debtor.cease_requested_at,
        attorney_since=debtor.attorney_since,
        dispute_hold=disputed,
        opted_out=frozenset(opted_out),
        wrong_numbers=frozenset(p.number for p in debtor.phones if p.wrong_number_at),
        other_numbers=frozenset(p.number for p in phones if p.type not in PERSONAL_PHONE_TYPES),
        notice_due_by=notice_due_by,
    )


def _queued(case_ids, since: dt.datetime | None, excluding: int | None):
    """The outbox's messages still waiting for the provider, as contacts (case, channel,
    "outbound", no outcome, queued at, to): they count toward the limits while they wait."""
    query = sa.select(
        OutboundMessage.case_id,
        OutboundMessage.channel,
        sa.literal("outbound", Contact.direction.type),
        sa.cast(sa.null(), Contact.outcome.type),
        OutboundMessage.created_at,
        OutboundMessage.to_address,
    ).where(OutboundMessage.case_id.in_(case_ids), OutboundMessage.status == "queued")
    if since is not None:
        query = query.where(OutboundMessage.created_at >= since)
    if excluding is not None:
        query = query.where(OutboundMessage.id != excluding)
    return query


def history(
    session: Session, case_id: int, *, excluding_message: int | None = None
) -> list[PastContact]:
    """The case's contacts, and its messages still queued, oldest first; `excluding_message`
    leaves out the message being judged at its hand-over."""
    return histories(session, [case_id], excluding_message=excluding_message).get(case_id, [])


def history_of(contacts, messages) -> list[PastContact]:
    """`history` from the case's contacts and outbox messages already read (the case screen
    reads them whole for its timeline): every contact, and the messages still queued."""
    past = [
        PastContact(c.channel, c.direction, c.outcome, c.occurred_at, c.target) for c in contacts
    ]
    past += [
        PastContact(m.channel, "outbound", None, m.created_at, m.to_address)
        for m in messages
        if m.status == "queued"
    ]
    past.sort(key=lambda p: p.occurred_at)
    return past


# Every rule looks back at most 7 days (plus a day for the local calendar).
RULES_LOOK_BACK = dt.timedelta(days=8)


def histories(
    session: Session,
    case_ids: list[int],
    since: dt.datetime | None = None,
    *,
    excluding_message: int | None = None,
) -> dict[int, list[PastContact]]:
    """Many cases' recent contact histories, queued messages included, in one query (the
    queue ranks pages of cases)."""
    found: dict[int, list[PastContact]] = {}
    if not case_ids:
        return found
    contacts = sa.select(
        Contact.case_id,
        Contact.channel,
        Contact.direction,
        Contact.outcome,
        Contact.occurred_at,
        Contact.target,
    ).where(Contact.case_id.in_(case_ids))
    if since is not None:
        contacts = contacts.where(Contact.occurred_at >= since)
    both = sa.union_all(contacts, _queued(case_ids, since, excluding_message))
    for case_id, *contact in session.execute(both):
        found.setdefault(case_id, []).append(PastContact(*contact))
    for past in found.values():
        past.sort(key=lambda p: p.occurred_at)
    return found


def contact_window(
    session: Session,
    case: Case,
    channel: str,
    at: dt.datetime | None = None,
    purpose: str = "collection",
    target: str | None = None,
) -> Window:
    if channel not in CHANNELS:
        raise ContactError(f"channel must be one of: {', '.join(CHANNELS)}")
    return window(
        debtor_facts(case),
        history(session, case.id),
        channel,
        at or utcnow(),
        purpose=purpose,
        target=target,
    )


def gate(
    session: Session,
    case: Case,
    channel: str,
    at: dt.datetime | None = None,
    purpose: str = "collection",
    target: str | None = None,
    past: list[PastContact] | None = None,
) -> None:
    """Raise ContactRefused if an outbound message (to the number `target`, for a text) may
    not be sent now. `past`: the case's history (`histories`), when a run read it already."""
    violations = check(
        debtor_facts(case),
        history(session, case.id) if past is None else past,
        channel,
        at or utcnow(),
        purpose=purpose,
        target=target,
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
    now: dt.datetime | None = None,
) -> Recorded:
    """Record a contact that happened, with the rules it broke (and an alert if any).

    `now` is the present moment as the caller knows it (the clock by default): a contact is
    refused if it lies ahead of it. The outbox passes the moment it handed a message over."""
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
    if occurred_at > (now or utcnow()) + CLOCK_SKEW:
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
        target=target,
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
    if channel == "call" and outcome == "wrong_number":
        mark_wrong_number(
            session, case.debtor, target, at=occurred_at, actor=actor, case_id=case.id
        )
    if (
        case.validation_sent_at is None
        and purpose not in ("validation_notice", "early_out")
        and is_communication(channel, outcome)
        and (case.first_communication_at is None or occurred_at < case.first_communication_at)
    ):
        case.first_communication_at = occurred_at  # the 5 days to send the notice start
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
