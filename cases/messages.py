"""Outbound emails and texts: the outbox, with what was sent, to whom, and how it went.

A message is a communication only once the provider took it. Its life:

- `queued`: the rules allowed it when it was asked for (`send_case_email`, `send_case_text`)
  and its delivery job is on the way. It already counts toward the contact limits while it
  waits (cases.contact_log.history), so two queued messages cannot together break one.
- at hand-over (the delivery jobs in correspondence.mail and correspondence.texts) the rules
  are asked again, at that moment (`forbidden_now`): a message a rule now forbids (a cease
  request, an attorney, a dispute hold, an opt-out of the channel or of its address or phone,
  the debtor's hours, a limit) is `held`, with the rules' reasons in `error`; it is not sent,
  never counts and is not tried again: the collector asks again when the rules allow. (A
  reminder held there is not sent again by the reminders job, which records a reminder as
  sent when it queues it.)
- `sent`: the provider took it. Only then is it recorded as a contact (`contact_id`), at the
  moment of the hand-over, by whoever asked for it.
- a transient failure (the server unreachable, an SMTP 4xx, a provider's 5xx or 429) leaves
  it `queued` with `next_attempt_at` (`retry_at` gives the backoff) and `error` saying what
  went wrong, until MAX_ATTEMPTS attempts; then, or at once for a permanent failure (an SMTP
  5xx such as a refused recipient, a provider's 4xx such as an invalid number, no mail server
  or text provider configured), it is `failed`, with the reason in `error`, and never counts.
  The next attempt is a delivery job written to the job outbox, due at `next_attempt_at`,
  which the outbox's sweep sends then (correspondence.mail.retry_later).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from cases import audit, limitations
from cases.case import Case
from cases.compliance import PastContact, Violation, check
from cases.contact_log import OutboundMessage, debtor_facts, gate, history, record_contact
from cases.jobs import declare, enqueue
from cases.model import utcnow

DELIVER_EMAIL = declare("mail.deliver", queue="mail")
DELIVER_TEXT = declare("texts.deliver", queue="mail")

MESSAGE_STATUSES = ("queued", "sent", "failed", "held")
# Tries in all, the first included; the waits before the 2nd, 3rd, 4th and 5th.
MAX_ATTEMPTS = 5
BACKOFF = (
    dt.timedelta(minutes=1),
    dt.timedelta(minutes=5),
    dt.timedelta(minutes=30),
    dt.timedelta(hours=2),
)
DELIVERY = audit.Actor(None, "delivery")


class MessageError(ValueError):
    """A message could not be queued; the message says why."""


def _queue(
    session: Session,
    case: Case,
    job,
    *,
    channel: str,
    to: str,
    subject: str,
    body: str,
    actor: audit.Actor,
    purpose: str,
    past: list[PastContact] | None = None,
) -> OutboundMessage:
    gate(session, case, channel, utcnow(), purpose=purpose, target=to, past=past)
    if channel == "email":
        # The disclosure the debtor's state requires on a time-barred debt (SPEC §6.11).
        disclosure = limitations.disclosure(session, case, limitations.latest_us_date())
        if disclosure and disclosure not in body:
            body = f"{body.rstrip()}\n\n{disclosure}\n"
    message = OutboundMessage(
        case_id=case.id,
        channel=channel,
        to_address=to,
        subject=subject,
        body=body,
        purpose=purpose,
        user_id=actor.user_id,
        actor_label=actor.label,
    )
    session.add(message)
    session.flush()
    audit.record(
        session,
        actor,
        "outbound_message",
        message.id,
        "message.queued",
        case_id=case.id,
        channel=channel,
        to=to,
        purpose=purpose,
    )
    enqueue(session, job, message.id)
    if past is not None:  # what a run judges next for this case counts this one, queued
        past.append(PastContact(channel, "outbound", None, message.created_at, to))
    return message


def send_case_email(
    session: Session,
    case: Case,
    *,
    to: str,
    subject: str,
    body: str,
    actor: audit.Actor,
    purpose: str = "collection",
    past: list[PastContact] | None = None,
) -> OutboundMessage:
    """Queue an email to the debtor if the rules allow it now. It becomes a contact when the
    mail server takes it (see the module's docstring).

    Raises ContactRefused (and queues nothing) when a rule forbids it.
    """
    addresses = {e.address: e for e in case.debtor.emails}
    if to not in addresses:
        raise MessageError("send only to an email address on file for this debtor")
    if addresses[to].opted_out_at:
        raise MessageError(f"{to} opted out of email")
    return _queue(
        session,
        case,
        DELIVER_EMAIL,
        channel="email",
        to=to,
        subject=subject,
        body=body,
        actor=actor,
        purpose=purpose,
        past=past,
    )


TEXT_OPT_OUT = "Reply STOP to opt out"


def send_case_text(
    session: Session,
    case: Case,
    *,
    to: str,
    body: str,
    actor: audit.Actor,
    purpose: str = "collection",
    past: list[PastContact] | None = None,
) -> OutboundMessage:
    """Queue a text to the debtor if the rules allow it now. It becomes a contact when the
    provider takes it (see the module's docstring).

    Only to a phone on file whose owner consented to texts and has not opted out; the body
    must carry the opt-out. Raises ContactRefused (and queues nothing) when a rule forbids it.
    """
    phones = {p.number: p for p in case.debtor.phones}
    if to not in phones:
        raise MessageError("send texts only to a phone number on file for this debtor")
    phone = phones[to]
    if not phone.text_consent:
        raise MessageError(f"{to} has not consented to texts")
    if phone.texts_opted_out_at:
        raise MessageError(f"{to} opted out of texts")
    if "STOP" not in body:
        raise MessageError("a text must say how to opt out")
    return _queue(
        session,
        case,
        DELIVER_TEXT,
        channel="text",
        to=to,
        subject="",
        body=body,
        actor=actor,
        purpose=purpose,
        past=past,
    )


# --- the hand-over (the delivery jobs in correspondence.mail and correspondence.texts) ------


def claim(session: Session, message_id: int, channel: str) -> OutboundMessage | None:
    """The queued message to hand over, locked until the commit; None when there is nothing
    to do (unknown, another channel's, or already sent, failed or held: a job run twice is
    safe)."""
    message = session.get(OutboundMessage, message_id, with_for_update=True)
    if message is None or message.channel != channel or message.status != "queued":
        return None
    return message


def handover_time(message: OutboundMessage) -> dt.datetime:
    """Now, for the rules and the contact: never before the message was queued (a worker
    whose clock is behind the web server's cannot hand a message over before it existed)."""
    return max(utcnow(), message.created_at)


def _closed_target(case: Case, message: OutboundMessage) -> Violation | None:
    """The address or phone itself, closed since the message was queued (the debtor may
    still take email or texts elsewhere)."""
    to = message.to_address
    if message.channel == "email":
        email = next((e for e in case.debtor.emails if e.address == to), None)
        if email is None or email.opted_out_at:
            return Violation("opt_out", f"{to} opted out of email.")
        return None
    phone = next((p for p in case.debtor.phones if p.number == to), None)
    if phone is None or phone.texts_opted_out_at:
        return Violation("opt_out", f"{to} opted out of texts.")
    if not phone.text_consent:
        return Violation("opt_out", f"{to} has not consented to texts.")
    return None


def forbidden_now(session: Session, message: OutboundMessage, at: dt.datetime) -> list[Violation]:
    """The rules the message would break if handed over at `at`, judged on the case's
    contacts and its other queued messages, and whether its address or phone is still open
    to it (a message to a client's user, with no case, is not a contact with a debtor:
    none)."""
    if message.case_id is None:
        return []
    case = session.get(Case, message.case_id)
    past = history(session, case.id, excluding_message=message.id)
    found = check(
        debtor_facts(case),
        past,
        message.channel,
        at,
        purpose=message.purpose,
        target=message.to_address,
    )
    closed = _closed_target(case, message)
    if closed is not None and all(v.rule != "opt_out" for v in found):
        found.append(closed)
    return found


def hold(session: Session, message: OutboundMessage, violations: list[Violation]) -> None:
    """Not handed over: a rule forbids it now. It is not sent, not tried again, and does
    not count."""
    message.status = "held"
    message.error = " ".join(v.message for v in violations)
    message.next_attempt_at = None
    audit.record(
        session,
        DELIVERY,
        "outbound_message",
        message.id,
        "message.held",
        case_id=message.case_id,
        reason=message.error,
        rules=[v.rule for v in violations],
    )


def fail(session: Session, message: OutboundMessage, reason: str) -> None:
    """The provider refused it for good (or was never configured, or we gave up): not sent,
    not tried again, and it does not count."""
    message.status = "failed"
    message.error = reason
    message.next_attempt_at = None
    audit.record(
        session,
        DELIVERY,
        "outbound_message",
        message.id,
        "message.failed",
        case_id=message.case_id,
        reason=reason,
        attempts=message.attempts,
    )


def retry_at(message: OutboundMessage, now: dt.datetime) -> dt.datetime | None:
    """When to try again after a transient failure of attempt `message.attempts`, or None
    once MAX_ATTEMPTS have been made."""
    if message.attempts >= MAX_ATTEMPTS:
        return None
    return now + BACKOFF[min(message.attempts, len(BACKOFF)) - 1]


def wait_for_retry(
    session: Session, message: OutboundMessage, reason: str, now: dt.datetime
) -> dt.datetime | None:
    """A transient failure: the message stays queued until `next_attempt_at` (returned), or
    fails once the attempts are spent (None). The caller schedules the retry."""
    when = retry_at(message, now)
    if when is None:
        fail(session, message, f"{reason} (gave up after {message.attempts} attempts)")
        return None
    message.error = reason
    message.next_attempt_at = when
    return when


def mark_sent(
    session: Session, message: OutboundMessage, *, provider_id: str | None = None
) -> None:
    """The provider took it: sent, and from now on a contact with the debtor, recorded at
    this moment for whoever asked for it."""
    at = handover_time(message)
    message.status = "sent"
    message.sent_at = at
    message.provider_id = provider_id
    message.error = None
    message.next_attempt_at = None
    session.flush()  # no longer queued: it counts once, as the contact below
    if message.case_id is None:
        return
    recorded = record_contact(
        session,
        session.get(Case, message.case_id),
        channel=message.channel,
        direction="outbound",
        occurred_at=at,
        actor=audit.Actor(message.user_id, message.actor_label),
        target=message.to_address,
        subject=message.subject or None,
        body=message.body,
        purpose=message.purpose,
        now=at,
    )
    message.contact_id = recorded.contact.id
