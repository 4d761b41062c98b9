"""Early-out: reminders sent in the client's name from an account's first late day, before
collection; each client's cadence and terms, which step is due for which account, and the
conversion to a collection case on the client's day.

An early-out account is a case with `program` "early_out". It is not a collection case: it gets
no validation notice, is never in a collector's queue and is kept out of the collection part of
statements. Under 15 U.S.C. 1692a(6)(F)(iii) the agency is not a debt collector for a debt that
was not in default when it obtained it (the client attests that per file: cases.referrals); once
the account converts, 1692e(14) requires the agency's true name, so after conversion nothing
uses the client's name.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from cases import audit
from cases.case import Case, new_stamp
from cases.clients import Client
from cases.contact_log import RULES_LOOK_BACK
from cases.debtors import Debtor
from cases.ledger import LedgerEntry
from cases.model import Base, Timestamped
from cases.plans import PaymentPlan

CHANNELS = ("email", "text", "letter")
TONES = ("friendly", "firm", "final")
# Day past due, channel, tone: a friendly email on day 1, a text on day 7 (only to a phone that
# consented), a firmer email on day 15, a letter on day 30, and on day 60 a final notice naming
# the day the account goes to collection.
DEFAULT_CADENCE = (
    {"day": 1, "channel": "email", "tone": "friendly"},
    {"day": 7, "channel": "text", "tone": "friendly"},
    {"day": 15, "channel": "email", "tone": "firm"},
    {"day": 30, "channel": "letter", "tone": "firm"},
    {"day": 60, "channel": "email", "tone": "final"},
)
DEFAULT_CONVERT_AFTER_DAYS = 90
FEE_KINDS = ("percent", "flat")
DEFAULT_FEE_BPS = 1000  # 10% of what is paid during early-out
DEFAULT_FLAT_FEE_CENTS = 500  # $5 per account placed, when the client chose a flat fee
# A short plan on the branded page, within the client's terms: up to N installments (0: none
# offered), monthly or every two weeks.
PLAN_FREQUENCIES = ("monthly", "biweekly")
DEFAULT_PLAN_INSTALLMENTS = 3
MAX_PLAN_INSTALLMENTS = 6
# No reminder in the last days before conversion: the contact-frequency rules look back this
# far, so no early-out message ever counts toward a collection case's limits.
QUIET_BEFORE_CONVERSION_DAYS = RULES_LOOK_BACK.days
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class EarlyOutError(ValueError):
    """Early-out terms or a switch were refused; the message says why."""


class EarlyOutTerms(Timestamped, Base):
    """A client's early-out terms: the cadence, the reply address and logo its reminders carry,
    the day its accounts convert to collection, and its early-out fee."""

    __tablename__ = "early_out_terms"

    client_id: Mapped[int] = mapped_column(sa.ForeignKey("clients.id"), primary_key=True)
    cadence: Mapped[list[dict]] = mapped_column(sa.JSON)
    reply_to: Mapped[str | None] = mapped_column(sa.String(254))
    # A path under static/ (the PDF renderer fetches only the app's own static files).
    logo_path: Mapped[str | None] = mapped_column(sa.String(200))
    convert_after_days: Mapped[int] = mapped_column(default=DEFAULT_CONVERT_AFTER_DAYS)
    fee_kind: Mapped[str] = mapped_column(sa.String(10), default="percent")
    fee_bps: Mapped[int] = mapped_column(default=DEFAULT_FEE_BPS)
    flat_fee_cents: Mapped[int] = mapped_column(sa.BigInteger, default=DEFAULT_FLAT_FEE_CENTS)
    plan_max_installments: Mapped[int] = mapped_column(
        default=DEFAULT_PLAN_INSTALLMENTS, server_default=str(DEFAULT_PLAN_INSTALLMENTS)
    )
    plan_frequency: Mapped[str] = mapped_column(
        sa.String(10), default="monthly", server_default="monthly"
    )

    __table_args__ = (
        sa.CheckConstraint("fee_kind IN ('percent','flat')", name="fee_kind"),
        sa.CheckConstraint("plan_frequency IN ('monthly','biweekly')", name="plan_frequency"),
    )


class EarlyOutReminder(Timestamped, Base):
    """One cadence step for one account: sent (or held by a contact rule), never twice."""

    __tablename__ = "early_out_reminders"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id"), index=True)
    day: Mapped[int]
    channel: Mapped[str] = mapped_column(sa.String(10))
    tone: Mapped[str] = mapped_column(sa.String(10))
    language: Mapped[str] = mapped_column(sa.String(5))
    sent_on: Mapped[dt.date]
    message_id: Mapped[int | None] = mapped_column(sa.ForeignKey("outbound_messages.id"))
    document_id: Mapped[int | None] = mapped_column(sa.ForeignKey("documents.id"))

    __table_args__ = (sa.UniqueConstraint("case_id", "day", name="uq_early_out_reminders_step"),)


REPLY_KINDS = ("already_paid", "problem")
MAX_REPLY_CHARS = 2000


class EarlyOutReply(Timestamped, Base):
    """What a debtor told the client from its branded page: "I already paid" or "there is a
    problem". It goes to the client (its early-out page), not to the agency's collectors."""

    __tablename__ = "early_out_replies"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(15))
    message: Mapped[str] = mapped_column(sa.Text, default="")

    __table_args__ = (sa.CheckConstraint("kind IN ('already_paid','problem')", name="kind"),)


def record_reply(
    session: Session, case: Case, kind: str, message: str, *, actor: audit.Actor
) -> EarlyOutReply:
    """Keep the debtor's reply for the client; refused (nothing kept) when it is not one."""
    message = (message or "").strip()
    if kind not in REPLY_KINDS:
        raise EarlyOutError("choose: I already paid, or there is a problem")
    if case.program != "early_out":
        raise EarlyOutError("this account is no longer handled here")
    if kind == "problem" and not message:
        raise EarlyOutError("tell us what the problem is")
    if len(message) > MAX_REPLY_CHARS:
        raise EarlyOutError(f"write at most {MAX_REPLY_CHARS} characters")
    reply = EarlyOutReply(case_id=case.id, kind=kind, message=message)
    session.add(reply)
    session.flush()
    audit.record(session, actor, "case", case.id, "early_out.reply", case_id=case.id, kind=kind)
    return reply


def fee_bps_for(session: Session, case: Case) -> int:
    """The fee on a payment during early-out: the client's percentage, or none when it chose a
    flat fee per account placed (charged on the statement instead)."""
    terms = terms_of(session, case.client_id)
    return terms.fee_bps if terms.fee_kind == "percent" else 0


def default_terms(client_id: int) -> EarlyOutTerms:
    return EarlyOutTerms(
        client_id=client_id,
        cadence=[dict(step) for step in DEFAULT_CADENCE],
        convert_after_days=DEFAULT_CONVERT_AFTER_DAYS,
        fee_kind="percent",
        fee_bps=DEFAULT_FEE_BPS,
        flat_fee_cents=DEFAULT_FLAT_FEE_CENTS,
        plan_max_installments=DEFAULT_PLAN_INSTALLMENTS,
        plan_frequency="monthly",
    )


def terms_of(session: Session, client_id: int) -> EarlyOutTerms:
    """The client's terms, or the defaults (not saved) when it has set none."""
    return session.get(EarlyOutTerms, client_id) or default_terms(client_id)


def parse_cadence(text: str) -> list[dict]:
    """ "1:email, 7:text, 15:email:firm" -> steps; the tone defaults by position."""
    steps = []
    for part in [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]:
        bits = [b.strip().lower() for b in part.split(":")]
        if len(bits) not in (2, 3) or not bits[0].isdigit():
            raise EarlyOutError(
                f"cadence step {part!r} must be DAY:CHANNEL or DAY:CHANNEL:TONE, like 7:text"
            )
        steps.append({"day": int(bits[0]), "channel": bits[1], "tone": bits[2] if bits[2:] else ""})
    for index, step in enumerate(steps):
        if not step["tone"]:
            last = index == len(steps) - 1
            step["tone"] = (
                "final" if last and len(steps) > 1 else "friendly" if index == 0 else "firm"
            )
    return steps


def validate(
    cadence: list[dict],
    convert_after_days: int,
    fee_kind: str,
    fee_bps: int,
    flat_fee_cents: int,
    plan_max_installments: int = DEFAULT_PLAN_INSTALLMENTS,
    plan_frequency: str = "monthly",
) -> None:
    if not 30 <= convert_after_days <= 365:
        raise EarlyOutError("accounts convert to collection between day 30 and day 365 past due")
    if not cadence:
        raise EarlyOutError("the cadence needs at least one step")
    days = [step["day"] for step in cadence]
    if days != sorted(set(days)):
        raise EarlyOutError("cadence days must be different and in order, like 1, 7, 15")
    for step in cadence:
        if step["channel"] not in CHANNELS:
            raise EarlyOutError(f"a step's channel must be one of {', '.join(CHANNELS)}")
        if step["tone"] not in TONES:
            raise EarlyOutError(f"a step's tone must be one of {', '.join(TONES)}")
    last_day = convert_after_days - QUIET_BEFORE_CONVERSION_DAYS
    if days[0] < 1 or days[-1] > last_day:
        raise EarlyOutError(
            f"cadence days must be from day 1 to day {last_day}: no reminder goes out in the "
            f"{QUIET_BEFORE_CONVERSION_DAYS} days before conversion on day {convert_after_days}"
        )
    if fee_kind not in FEE_KINDS:
        raise EarlyOutError(f"the early-out fee is one of {', '.join(FEE_KINDS)}")
    if not 0 <= fee_bps <= 5000:
        raise EarlyOutError("the early-out percentage must be between 0% and 50%")
    if not 0 <= flat_fee_cents <= 100_000:
        raise EarlyOutError("the flat fee per account must be between $0 and $1,000")
    if plan_max_installments != 0 and not 2 <= plan_max_installments <= MAX_PLAN_INSTALLMENTS:
        raise EarlyOutError(
            f"an early-out plan has from 2 to {MAX_PLAN_INSTALLMENTS} installments (0: no plans)"
        )
    if plan_frequency not in PLAN_FREQUENCIES:
        raise EarlyOutError(f"an early-out plan is {' or '.join(PLAN_FREQUENCIES)}")


def set_terms(
    session: Session,
    client: Client,
    *,
    actor: audit.Actor,
    cadence: list[dict] | None = None,
    convert_after_days: int | None = None,
    reply_to: str | None = None,
    logo_path: str | None = None,
    fee_kind: str | None = None,
    fee_bps: int | None = None,
    flat_fee_cents: int | None = None,
    plan_max_installments: int | None = None,
    plan_frequency: str | None = None,
) -> EarlyOutTerms:
    """Change a client's early-out terms (an admin's edit); refused whole, changing nothing."""
    current = terms_of(session, client.id)
    merged = {
        "cadence": cadence if cadence is not None else current.cadence,
        "convert_after_days": convert_after_days or current.convert_after_days,
        "fee_kind": fee_kind or current.fee_kind,
        "fee_bps": current.fee_bps if fee_bps is None else fee_bps,
        "flat_fee_cents": current.flat_fee_cents if flat_fee_cents is None else flat_fee_cents,
        "plan_max_installments": (
            current.plan_max_installments
            if plan_max_installments is None
            else plan_max_installments
        ),
        "plan_frequency": plan_frequency or current.plan_frequency,
    }
    validate(**merged)
    if reply_to is not None and reply_to and not _EMAIL_RE.match(reply_to):
        raise EarlyOutError(f"{reply_to!r} is not an email address")
    if logo_path and (".." in logo_path or logo_path.startswith("/")):
        raise EarlyOutError("the logo is a path under static/, like img/acme.png")
    terms = session.get(EarlyOutTerms, client.id)
    if terms is None:
        terms = current
        session.add(terms)
    for key, value in merged.items():
        setattr(terms, key, value)
    if reply_to is not None:
        terms.reply_to = reply_to or None
    if logo_path is not None:
        terms.logo_path = logo_path or None
    session.flush()
    audit.record(
        session,
        actor,
        "client",
        client.id,
        "client.early_out_terms_set",
        **{k: v for k, v in merged.items()},
        reply_to=terms.reply_to,
    )
    client.stamp = new_stamp()
    return terms


# --- the daily run: what is due ----------------------------------------------------------------


@dataclass(frozen=True)
class DueStep:
    case: Case
    day: int
    channel: str
    tone: str
    convert_on: dt.date


def days_past_due(case: Case, today: dt.date) -> int:
    return (today - case.due_date).days


def conversion_day(case: Case, terms: EarlyOutTerms) -> dt.date:
    return case.due_date + dt.timedelta(days=terms.convert_after_days)


def on_a_plan() -> sa.ColumnElement[bool]:
    """The account has an early-out plan in force (cases.early_out_plans): a plan in good
    standing holds the reminders and the conversion; a broken one no longer does."""
    return (
        sa.select(PaymentPlan.id)
        .where(PaymentPlan.case_id == Case.id, PaymentPlan.status == "active")
        .exists()
    )


def open_early_out_cases() -> sa.Select:
    """The early-out accounts still owed something: placed, not yet paid, closed or converted."""
    return sa.select(Case).where(Case.program == "early_out", Case.status == "new")


def applicable(debtor: Debtor, channel: str) -> bool:
    """Whether the debtor can be reached on the channel at all: an email not opted out, a phone
    that consented to texts and has not said stop, a postal address."""
    if debtor.cease_requested_at is not None or debtor.attorney_since is not None:
        return False
    if channel == "email":
        return debtor.email_to_use is not None
    if channel == "text":
        return debtor.phone_for_texts is not None
    return debtor.primary_address is not None


def due_steps(
    cases: list[Case],
    sent_days: dict[int, int],
    terms: dict[int, EarlyOutTerms],
    today: dt.date,
) -> list[DueStep]:
    """For each account, at most one step: the latest one due that can reach the debtor and is
    later than every step already sent. Steps passed over (an account placed on day 10 gets its
    day-7 text, not the day-1 email as well) are not sent later."""
    found = []
    for case in cases:
        client_terms = terms[case.client_id]
        age = days_past_due(case, today)
        convert_on = conversion_day(case, client_terms)
        if age >= client_terms.convert_after_days - QUIET_BEFORE_CONVERSION_DAYS:
            continue
        after = sent_days.get(case.id, 0)
        for step in reversed(client_terms.cadence):
            if step["day"] > age or step["day"] <= after:
                continue
            if applicable(case.debtor, step["channel"]):
                found.append(DueStep(case, step["day"], step["channel"], step["tone"], convert_on))
                break
    return found


def last_sent_days(session: Session, case_ids: list[int]) -> dict[int, int]:
    """The last cadence day sent to each of these accounts (0: none yet)."""
    found: dict[int, int] = {}
    for start in range(0, len(case_ids), 1000):
        found.update(
            session.execute(
                sa.select(EarlyOutReminder.case_id, sa.func.max(EarlyOutReminder.day))
                .where(EarlyOutReminder.case_id.in_(case_ids[start : start + 1000]))
                .group_by(EarlyOutReminder.case_id)
            ).all()
        )
    return {case_id: found.get(case_id, 0) for case_id in case_ids}


def clients_in_early_out(session: Session) -> list[int]:
    """The clients with an open early-out account: an EXISTS per client on the partial index
    ix_cases_early_out_open, not a pass over the accounts."""
    open_account = (
        sa.select(Case.id)
        .where(Case.client_id == Client.id, Case.program == "early_out", Case.status == "new")
        .exists()
    )
    return list(session.scalars(sa.select(Client.id).where(open_account).order_by(Client.id)))


def due_candidates(terms: EarlyOutTerms, today: dt.date) -> sa.Select:
    """Ids of the client's open early-out accounts that may have a step due today: no step
    was sent on or after the latest cadence day they have reached, and they are not yet in the
    quiet days before conversion. All in the database (the partial index
    ix_cases_early_out_open on client and due date, and an anti-join on the reminders' unique
    (case_id, day)), so a day with 200,000 accounts in reminders loads only the few thousand
    with something due."""
    days = sorted(step["day"] for step in terms.cadence)
    reached = sa.case(
        *((Case.due_date <= today - dt.timedelta(days=day), day) for day in reversed(days)),
        else_=0,
    )
    quiet_from = terms.convert_after_days - QUIET_BEFORE_CONVERSION_DAYS
    sent_since = (
        sa.select(EarlyOutReminder.id)
        .where(EarlyOutReminder.case_id == Case.id, EarlyOutReminder.day >= reached)
        .exists()
    )
    return (
        sa.select(Case.id)
        .where(
            Case.client_id == terms.client_id,
            Case.program == "early_out",
            Case.status == "new",
            Case.due_date <= today - dt.timedelta(days=days[0]),
            Case.due_date > today - dt.timedelta(days=quiet_from),
            ~sent_since,
            ~on_a_plan(),
        )
        .order_by(Case.id)
    )


def due_conversions(session: Session, today: dt.date) -> list[Case]:
    """The unpaid early-out accounts whose client's conversion day has come, unless the client
    switched conversion off for them or they are on a plan in good standing."""
    found: list[Case] = []
    for client_id in clients_in_early_out(session):
        terms = terms_of(session, client_id)
        found.extend(
            session.scalars(
                sa.select(Case)
                .where(
                    Case.client_id == client_id,
                    Case.program == "early_out",
                    Case.status == "new",
                    Case.early_out_converts,
                    Case.due_date <= today - dt.timedelta(days=terms.convert_after_days),
                    ~on_a_plan(),
                )
                .order_by(Case.id)
            )
        )
    return found


def convert(session: Session, case: Case, *, today: dt.date, actor: audit.Actor) -> None:
    """Make an early-out account a collection case, `new`, with the same reference and history:
    the conversion date is its referral date, so its validation notice and every rule counted
    from referral start now."""
    if case.program != "early_out":
        raise EarlyOutError(f"{case.reference} is not an early-out account")
    if case.status != "new":
        raise EarlyOutError(f"{case.reference} is {case.status}; only an unpaid account converts")
    case.program = "collection"
    case.referred_on = today
    case.days_past_due_at_referral = days_past_due(case, today)
    case.first_communication_at = None  # early-out reminders start no notice clock
    case.stamp = new_stamp()
    audit.record(
        session,
        actor,
        "case",
        case.id,
        "case.converted_to_collection",
        case_id=case.id,
        reference=case.reference,
        referred_on=today.isoformat(),
        placed_on=case.early_out_placed_on.isoformat() if case.early_out_placed_on else None,
    )


def set_conversion(
    session: Session, cases: list[Case], converts: bool, *, actor: audit.Actor
) -> int:
    """Switch conversion on or off for early-out accounts (one account, or a file's); returns how
    many changed. Accounts already converted or ended are left alone."""
    changed = 0
    for case in cases:
        if case.program != "early_out" or case.early_out_converts == converts:
            continue
        case.early_out_converts = converts
        changed += 1
        audit.record(
            session,
            actor,
            "case",
            case.id,
            "case.early_out_conversion_set",
            case_id=case.id,
            converts=converts,
        )
    return changed


def during_early_out() -> sa.ColumnElement[bool]:
    """A ledger movement of an early-out account made before it converted (joined with its
    case): it belongs to the early-out part of a statement, never to the collection part."""
    return sa.and_(
        Case.early_out_placed_on.is_not(None),
        sa.or_(Case.program == "early_out", LedgerEntry.received_at < Case.referred_on),
    )


def statement_section(
    session: Session,
    client_id: int,
    start: dt.date,
    end: dt.date,
    *,
    listed: frozenset[int] = frozenset(),
    covered: tuple[tuple[dt.date, dt.date], ...] = (),
) -> dict:
    """The early-out part of a client's monthly statement: the payments received during
    early-out in the month (with the early-out fee on each), as late adjustments those of earlier
    months not yet on a statement (recorded after their month's statement was issued), the
    accounts placed in the month (with the flat fee each, when the client chose one), and the
    totals. `listed`: the ledger entries earlier statements listed; `covered`: the months of
    earlier statements that kept no list (each listed what was received in its month)."""
    terms = terms_of(session, client_id)
    rows = session.execute(
        sa.select(
            LedgerEntry.id,
            Case.reference,
            LedgerEntry.received_at,
            LedgerEntry.kind,
            LedgerEntry.amount_cents,
            LedgerEntry.fee_bps,
            LedgerEntry.fee_cents,
        )
        .join(Case, Case.id == LedgerEntry.case_id)
        .where(
            Case.client_id == client_id,
            during_early_out(),
            LedgerEntry.kind.in_(("payment", "direct_payment", "reversal")),
            LedgerEntry.received_at <= end,
        )
        .order_by(Case.reference, LedgerEntry.received_at, LedgerEntry.id)
    ).all()

    def earlier_listed(entry_id: int, received: dt.date) -> bool:
        return entry_id in listed or any(a <= received <= b for a, b in covered)

    payments, late = [], []
    for entry_id, reference, received, kind, amount, bps, fee in rows:
        if received < start and earlier_listed(entry_id, received):
            continue
        (payments if received >= start else late).append(
            {
                "id": entry_id,
                "reference": reference,
                "date": received.isoformat(),
                "kind": kind,
                "amount_cents": -amount,
                "fee_bps": bps,
                "fee_cents": fee,
            }
        )
    placed = list(
        session.scalars(
            sa.select(Case.reference)
            .where(
                Case.client_id == client_id,
                Case.early_out_placed_on.between(start, end),
            )
            .order_by(Case.reference)
        )
    )
    flat = terms.flat_fee_cents if terms.fee_kind == "flat" else 0
    moved = payments + late
    by_agency = sum(p["amount_cents"] for p in moved if p["kind"] != "direct_payment")
    fees = sum(p["fee_cents"] for p in moved) + flat * len(placed)
    return {
        "fee_kind": terms.fee_kind,
        "fee_bps": terms.fee_bps,
        "flat_fee_cents": flat,
        "payments": payments,
        "late": late,
        "entry_ids": sorted(p["id"] for p in moved),
        "placed": placed,
        "collected_cents": by_agency,
        "fees_cents": fees,
        "net_cents": by_agency - fees,
    }


@dataclass(frozen=True)
class StepRecovery:
    day: int
    channel: str
    reached: int  # accounts this step went to
    paid: int  # of them, accounts paid in full during early-out with this as their last step

    @property
    def rate_percent(self) -> float:
        return 100 * self.paid / self.reached if self.reached else 0.0


@dataclass(frozen=True)
class Recovery:
    placed: int
    in_reminders: int
    saved: int  # paid during early-out: never reached collection
    converted: int
    recovered_cents: int
    steps: list[StepRecovery]

    @property
    def saved_percent(self) -> float:
        ended = self.saved + self.converted
        return 100 * self.saved / ended if ended else 0.0


def recovery(session: Session, client_id: int) -> Recovery:
    """The client's early-out results: accounts saved from collection, and which reminder (day
    and channel) each paid account last received before it paid."""
    placed = Case.early_out_placed_on.is_not(None)
    counts = dict(
        session.execute(
            sa.select(
                sa.case(
                    (Case.program == "collection", "converted"),
                    (Case.status.in_(("paid", "settled")), "saved"),
                    (Case.status == "new", "in_reminders"),
                    else_="other",
                ),
                sa.func.count(),
            )
            .where(Case.client_id == client_id, placed)
            .group_by(sa.text("1"))
        ).all()
    )
    recovered = session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(-LedgerEntry.amount_cents), 0))
        .join(Case, Case.id == LedgerEntry.case_id)
        .where(
            Case.client_id == client_id,
            during_early_out(),
            LedgerEntry.kind.in_(("payment", "direct_payment", "reversal")),
        )
    )
    last_day = (
        sa.select(EarlyOutReminder.case_id, sa.func.max(EarlyOutReminder.day).label("day"))
        .group_by(EarlyOutReminder.case_id)
        .subquery()
    )
    saved_last = dict(
        session.execute(
            sa.select(last_day.c.day, sa.func.count())
            .join(Case, Case.id == last_day.c.case_id)
            .where(
                Case.client_id == client_id,
                Case.program == "early_out",
                Case.status.in_(("paid", "settled")),
            )
            .group_by(last_day.c.day)
        ).all()
    )
    reached = session.execute(
        sa.select(EarlyOutReminder.day, EarlyOutReminder.channel, sa.func.count())
        .join(Case, Case.id == EarlyOutReminder.case_id)
        .where(Case.client_id == client_id)
        .group_by(EarlyOutReminder.day, EarlyOutReminder.channel)
        .order_by(EarlyOutReminder.day)
    ).all()
    steps = [
        StepRecovery(day, channel, count, saved_last.get(day, 0)) for day, channel, count in reached
    ]
    return Recovery(
        placed=sum(counts.values()),
        in_reminders=counts.get("in_reminders", 0),
        saved=counts.get("saved", 0),
        converted=counts.get("converted", 0),
        recovered_cents=int(recovered or 0),
        steps=steps,
    )


def sender_of(session: Session, case_id: int | None) -> tuple[str, str | None]:
    """(name, reply address) an early-out email is sent as: the client's, never the agency's."""
    case = session.get(Case, case_id) if case_id is not None else None
    if case is None:
        raise EarlyOutError("an early-out message belongs to an account")
    return case.client.name, terms_of(session, case.client_id).reply_to


def converted_cases(session: Session, client_id: int, limit: int = 200) -> list[Case]:
    """The client's early-out accounts that became collection cases, latest first."""
    return list(
        session.scalars(
            sa.select(Case)
            .where(
                Case.client_id == client_id,
                Case.program == "collection",
                Case.early_out_placed_on.is_not(None),
            )
            .order_by(Case.referred_on.desc(), Case.id.desc())
            .limit(limit)
        )
    )
