"""The case screen's timeline in plain words: contacts, messages, notes, documents and the
audit trail as one list, newest first, with no audit codes and nothing said twice."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from agency.case_forms import CALL_OUTCOME_WORDS, SITUATION_WORDS
from cases.audit import AuditEvent
from cases.case import Case
from cases.contacts import CaseNote
from cases.users import User
from shell.extensions import db
from shell.timezone import agency_zone

# Events another item already says: the note itself, the contact, the message.
SAID_ELSEWHERE = ("note.added", "contact.recorded")

EVENT_WORDS = {
    "case.opened": "Case opened from the referral",
    "case.assigned": "Case assigned",
    "queue.skipped": "Skipped in the queue",
    "case.status_changed": "Status changed",
    "debtor.attorney_recorded": "Attorney representation recorded",
    "debtor.cease_requested": "The debtor asked in writing that we stop (cease)",
    "debtor.inconvenient_times_set": "Inconvenient times recorded",
    "debtor.language_set": "Language changed",
    "debtor.monthly_statements_set": "Monthly statements of balance changed",
    "debtor.opted_out": "The debtor opted out",
    "debtor.phone_type_set": "Phone type changed",
    "debtor.preferences_set": "The debtor changed their contact preferences",
    "debtor.situation_set": "Situation changed",
    "debtor.wrong_number": "A number turned out not to be the debtor's",
    "dispute.received": "Dispute received",
    "dispute.verified": "Verification sent",
    "original_creditor.requested": "Request for the original creditor received",
    "original_creditor.answered": "Original creditor's name and address sent",
    "notice.mailed": "Validation notice confirmed as mailed",
    "offer.proposed": "Settlement offer proposed",
    "offer.accepted": "Settlement offer accepted by the debtor",
    "offer.approved": "Settlement offer approved",
    "offer.withdrawn": "Settlement offer withdrawn",
    "offer.declined": "Settlement offer declined",
    "offer.expired": "Settlement offer expired",
    "promise.recorded": "Promise to pay recorded",
    "plan.created": "Payment plan set up",
    "plan.consented": "The debtor agreed to the payment plan",
    "plan.confirmed": "Payment plan confirmed",
    "plan.card_saved": "The debtor saved a card for autopay",
    "plan.paused": "Payment plan paused",
    "plan.resumed": "Payment plan resumed",
    "plan.rescheduled": "Payment plan rescheduled",
    "plan.completed": "Payment plan completed",
    "plan.broken": "Payment plan broken",
    "plan.lapsed": "Payment plan lapsed",
    "plan.cancelled": "Payment plan cancelled",
    "installment.paid": "Installment paid",
    "installment.failed": "Installment payment failed",
    "installment.needs_auth": "Installment needs the debtor's authentication",
    "installment.withheld": "Installment not charged (held)",
    "payment.failed": "Card payment failed",
    "autopay.authentication_email": "Emailed the debtor to authenticate a card payment",
    "statement.issued": "Monthly statement issued",
    "alert.resolved": "Compliance alert resolved",
}

DOCUMENT_WORDS = {
    "cease_letter": "The debtor's cease letter",
    "attorney_letter": "The debtor's letter naming an attorney",
    "dispute_upload": "Documents the debtor sent with a dispute",
    "verification": "Verification from the client",
    "plan_agreement": "Payment plan agreement",
    "settlement_letter": "Settlement letter",
}


def words(value: object) -> str:
    """A stored value (`no_answer`, `payment_options`) as words."""
    return str(value).replace("_", " ")


def who(actor_label: str) -> str:
    """Who did it, without the audit's prefix: `user:ana@x` is ana@x."""
    kind, _, name = actor_label.partition(":")
    if kind == "user" and name:
        return name
    return words(actor_label.replace(":", " "))


HOW_ASSIGNED = {"bulk": "with other matching cases", "hand-over": "handed over by a deactivation"}


def event_text(e: AuditEvent, names: dict[int, str] | None = None) -> str:
    """One audit event as a sentence; `names` are the users' emails by id (for assignments)."""
    base = EVENT_WORDS.get(e.action) or words(e.action.replace(".", " ")).capitalize()
    d = e.detail or {}
    if e.action == "case.assigned":
        names = names or {}
        to = names.get(d.get("to"), "nobody") if d.get("to") else "nobody"
        text = f"Case assigned to {to}"
        if d.get("from"):
            text += f" (was {names.get(d['from'], 'another user')})"
        how = d.get("how")
        return f"{text}, {HOW_ASSIGNED.get(how, words(how))}" if how else text
    if e.action == "queue.skipped":
        text = f"{base}: {e.reason}" if e.reason else base
        if d.get("callback_at"):
            at = dt.datetime.fromisoformat(d["callback_at"]).astimezone(agency_zone())
            text += f" (call back {at:%Y-%m-%d %H:%M})"
        return text
    if e.action == "debtor.situation_set":
        return f"Situation: {SITUATION_WORDS.get(d.get('to'), words(d.get('to', '')))}"
    if e.action == "debtor.opted_out" and d.get("channel"):
        return f"The debtor opted out of {d['channel']}s"
    if e.action == "debtor.monthly_statements_set":
        return "Monthly statements: " + ("wanted" if d.get("wanted") else "stopped")
    if e.action == "debtor.attorney_recorded" and d.get("attorney"):
        return f"{base}: {d['attorney']}"
    if e.action in ("debtor.wrong_number", "debtor.phone_type_set") and d.get("number"):
        base = f"{base} ({d['number']})"
    if e.action == "case.status_changed" and d.get("to"):
        closed = f" ({words(d['close_reason'])})" if d.get("close_reason") else ""
        return f"Case now {words(d['to'])}{closed} (was {words(d.get('from', ''))})"
    if "from" in d and "to" in d and e.action.startswith("offer."):
        return base  # the action names the new state already
    if "from" in d and "to" in d:
        return f"{base}: from {words(d['from'])} to {words(d['to'])}"
    return base


def call_outcome(outcome: str | None) -> str:
    return CALL_OUTCOME_WORDS.get(outcome or "", words(outcome or ""))


def timeline(case: Case, contacts, messages, documents) -> list[dict]:
    """Contacts, messages not (yet) sent, notes, kept documents and audit events as one list,
    newest first. `contacts`, `messages` and `documents` are the case's, already read (the case
    screen shows them elsewhere too).

    A sent email or text is its contact (with `message` beside it); one still queued, failed
    or held is a `message` item at the time it was queued, saying so and why: it was no
    contact with the debtor. A document a contact carries (a letter) is linked from it; any
    other (the debtor's cease letter, a dispute's papers) is an item of its own."""
    items: list[dict] = []
    sent = {m.contact_id: m for m in messages if m.contact_id is not None}
    for c in contacts:
        items.append(
            {
                "at": c.occurred_at,
                "kind": "contact",
                "item": c,
                "message": sent.get(c.id),
                "outcome": call_outcome(c.outcome) if c.outcome else "",
            }
        )
    for m in sorted(messages, key=lambda m: m.id):
        if m.contact_id is None:
            items.append({"at": m.created_at, "kind": "message", "item": m})
    for n in db.session.scalars(sa.select(CaseNote).where(CaseNote.case_id == case.id)):
        items.append({"at": n.created_at, "kind": "note", "item": n})
    carried = {c.document_id for c in contacts if c.document_id is not None}
    for d in documents:
        if d.id not in carried and d.kind in DOCUMENT_WORDS:
            items.append(
                {"at": d.created_at, "kind": "document", "item": d, "text": DOCUMENT_WORDS[d.kind]}
            )
    events = db.session.scalars(
        sa.select(AuditEvent).where(
            AuditEvent.case_id == case.id,
            AuditEvent.action.not_in(SAID_ELSEWHERE),
            AuditEvent.action.not_like("message.%"),  # the message items say it
        )
    ).all()
    assigned = {
        uid
        for e in events
        if e.action == "case.assigned"
        for uid in ((e.detail or {}).get("from"), (e.detail or {}).get("to"))
        if isinstance(uid, int)
    }
    names = {}
    if assigned:
        names = dict(
            db.session.execute(sa.select(User.id, User.email).where(User.id.in_(assigned))).all()
        )
    for e in events:
        items.append(
            {
                "at": e.at,
                "kind": "event",
                "item": e,
                "text": event_text(e, names),
                "who": who(e.actor_label),
            }
        )
    items.sort(key=lambda i: i["at"], reverse=True)
    return items[:200]
