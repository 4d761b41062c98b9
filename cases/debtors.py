"""Debtors, the people or businesses who owe, and the ways to reach them."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from cases import audit
from cases.model import Base, Timestamped

DEBTOR_KINDS = ("consumer", "commercial")
# What a number is to the debtor. A mobile or home number is the debtor's own (personal) number;
# Massachusetts limits calls to any other number more tightly (209 CMR 18.14(1)(d)). A number
# from a referral is `other` until staff learn what it is: the stricter reading.
PHONE_TYPES = ("mobile", "home", "work", "other")
PERSONAL_PHONE_TYPES = ("mobile", "home")
SITUATIONS = ("unknown", "hardship", "juggling", "avoiding")


def display_name(kind: str, first_name: str, last_name: str, company_name: str) -> str:
    if kind == "commercial":
        return company_name
    return f"{first_name} {last_name}".strip()


class Debtor(Timestamped, Base):
    __tablename__ = "debtors"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(12), default="consumer")
    first_name: Mapped[str] = mapped_column(sa.String(100), default="")
    last_name: Mapped[str] = mapped_column(sa.String(100), default="")
    company_name: Mapped[str] = mapped_column(sa.String(200), default="")
    # Normalised name + postal code: how the same debtor is recognised across referrals.
    match_key: Mapped[str] = mapped_column(sa.String(300), index=True)
    language: Mapped[str] = mapped_column(sa.String(5), default="en")
    situation: Mapped[str] = mapped_column(sa.String(12), default="unknown")
    # Times the debtor said are inconvenient: [{"days": [0..6], "start": "HH:MM", "end": "HH:MM"}]
    inconvenient_times: Mapped[list[dict]] = mapped_column(default=list)
    cease_requested_at: Mapped[dt.datetime | None]
    attorney_name: Mapped[str | None] = mapped_column(sa.String(200))
    attorney_phone: Mapped[str | None] = mapped_column(sa.String(20))
    attorney_email: Mapped[str | None] = mapped_column(sa.String(254))
    attorney_since: Mapped[dt.datetime | None]
    # The debtor asked for a statement of balance every month (sent by the reminders job).
    monthly_statements: Mapped[bool] = mapped_column(default=False, server_default=sa.false())

    addresses: Mapped[list[Address]] = relationship(
        back_populates="debtor", order_by="Address.id", cascade="all, delete-orphan"
    )
    phones: Mapped[list[Phone]] = relationship(
        back_populates="debtor", order_by="Phone.id", cascade="all, delete-orphan"
    )
    emails: Mapped[list[Email]] = relationship(
        back_populates="debtor", order_by="Email.id", cascade="all, delete-orphan"
    )

    __table_args__ = (sa.CheckConstraint("kind IN ('consumer', 'commercial')", name="kind"),)

    @property
    def display_name(self) -> str:
        return display_name(self.kind, self.first_name, self.last_name, self.company_name)

    @property
    def primary_address(self) -> Address | None:
        return self.addresses[0] if self.addresses else None

    @property
    def email_to_use(self) -> Email | None:
        """The first email address the debtor lets us write to (consented, not opted out)."""
        return next((e for e in self.emails if e.consent and e.opted_out_at is None), None)

    @property
    def own_phones(self) -> list[Phone]:
        """The phones that are the debtor's: every one but those a call found to be someone
        else's (SPEC §6.13)."""
        return [p for p in self.phones if p.is_debtors]

    @property
    def phone_for_texts(self) -> Phone | None:
        """The first phone the debtor agreed to receive texts at and has not opted out of."""
        return next(
            (p for p in self.own_phones if p.text_consent and p.texts_opted_out_at is None), None
        )


class Address(Base):
    __tablename__ = "debtor_addresses"

    id: Mapped[int] = mapped_column(primary_key=True)
    debtor_id: Mapped[int] = mapped_column(sa.ForeignKey("debtors.id"), index=True)
    line1: Mapped[str] = mapped_column(sa.String(200), default="")
    line2: Mapped[str] = mapped_column(sa.String(200), default="")
    city: Mapped[str] = mapped_column(sa.String(100), default="")
    state: Mapped[str] = mapped_column(sa.String(2))
    postal_code: Mapped[str] = mapped_column(sa.String(10))

    debtor: Mapped[Debtor] = relationship(back_populates="addresses")


class Phone(Base):
    __tablename__ = "debtor_phones"

    id: Mapped[int] = mapped_column(primary_key=True)
    debtor_id: Mapped[int] = mapped_column(sa.ForeignKey("debtors.id"), index=True)
    number: Mapped[str] = mapped_column(sa.String(20))  # E.164
    type: Mapped[str] = mapped_column(sa.String(10), default="other")
    text_consent: Mapped[bool] = mapped_column(default=False)
    calls_opted_out_at: Mapped[dt.datetime | None]
    texts_opted_out_at: Mapped[dt.datetime | None]
    # A call reached someone else (a `wrong_number` outcome): not the debtor's number, never
    # offered or dialled again for this debtor (SPEC §6.13).
    wrong_number_at: Mapped[dt.datetime | None]

    debtor: Mapped[Debtor] = relationship(back_populates="phones")

    __table_args__ = (sa.CheckConstraint("type IN ('mobile','home','work','other')", name="type"),)

    @property
    def is_debtors(self) -> bool:
        return self.wrong_number_at is None

    @property
    def is_personal(self) -> bool:
        return self.type in PERSONAL_PHONE_TYPES


class Email(Base):
    __tablename__ = "debtor_emails"

    id: Mapped[int] = mapped_column(primary_key=True)
    debtor_id: Mapped[int] = mapped_column(sa.ForeignKey("debtors.id"), index=True)
    address: Mapped[str] = mapped_column(sa.String(254))
    consent: Mapped[bool] = mapped_column(default=True)
    opted_out_at: Mapped[dt.datetime | None]

    debtor: Mapped[Debtor] = relationship(back_populates="emails")


def takes_email(debtor_id) -> sa.ColumnElement[bool]:
    """SQL for "the debtor has an email address open to us" (`Debtor.email_to_use` is not
    None), to be read in the same statement as something else about the debtor's case."""
    return sa.exists().where(
        Email.debtor_id == debtor_id, Email.consent.is_(True), Email.opted_out_at.is_(None)
    )


def fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def match_key(kind: str, name: str, postal_code: str) -> str:
    """The key under which the same debtor referred twice is found (name + 5-digit ZIP)."""
    return f"{kind}|{fold(name)}|{postal_code.strip()[:5]}"


class DebtorError(ValueError):
    """A change to a debtor's instructions was refused; the message says why."""


def record_cease(
    session: Session,
    debtor: Debtor,
    *,
    at: dt.datetime,
    actor: audit.Actor,
    case_id: int | None = None,
) -> None:
    """A written request to stop contact (FDCPA 805(c)): from now on, only the notices the
    law allows go out."""
    if debtor.cease_requested_at is None:
        debtor.cease_requested_at = at
        audit.record(
            session,
            actor,
            "debtor",
            debtor.id,
            "debtor.cease_requested",
            case_id=case_id,
            at=at.isoformat(),
        )


def record_attorney(
    session: Session,
    debtor: Debtor,
    *,
    name: str,
    phone: str,
    email: str,
    at: dt.datetime,
    actor: audit.Actor,
    case_id: int | None = None,
) -> None:
    name = (name or "").strip()
    if not name:
        raise DebtorError("the attorney's name is required")
    if not (phone or "").strip() and not (email or "").strip():
        raise DebtorError("give the attorney's phone or email, so contact can go to them")
    debtor.attorney_name = name[:200]
    debtor.attorney_phone = (phone or "").strip()[:20] or None
    debtor.attorney_email = (email or "").strip()[:254] or None
    debtor.attorney_since = debtor.attorney_since or at
    audit.record(
        session,
        actor,
        "debtor",
        debtor.id,
        "debtor.attorney_recorded",
        case_id=case_id,
        attorney=name,
    )


def set_inconvenient_times(
    session: Session,
    debtor: Debtor,
    ranges: list[dict],
    *,
    actor: audit.Actor,
    case_id: int | None = None,
) -> None:
    """[{"days": [0..6], "start": "HH:MM", "end": "HH:MM"}] in the debtor's own time."""
    checked = []
    for r in ranges:
        days = sorted({int(d) for d in r.get("days", [])})
        if not days or any(d < 0 or d > 6 for d in days):
            raise DebtorError("choose at least one day of the week")
        try:
            start, end = dt.time.fromisoformat(r["start"]), dt.time.fromisoformat(r["end"])
        except (KeyError, ValueError):
            raise DebtorError("times must look like 18:30") from None
        if start >= end:
            raise DebtorError("the start time must be before the end time")
        checked.append(
            {"days": days, "start": start.strftime("%H:%M"), "end": end.strftime("%H:%M")}
        )
    debtor.inconvenient_times = checked
    audit.record(
        session,
        actor,
        "debtor",
        debtor.id,
        "debtor.inconvenient_times_set",
        case_id=case_id,
        ranges=checked,
    )


def opt_out(
    session: Session,
    debtor: Debtor,
    channel: str,
    *,
    at: dt.datetime,
    actor: audit.Actor,
    case_id: int | None = None,
) -> None:
    """Stop a channel (SPEC §6.6): every email address, or every phone for texts or calls."""
    if channel == "email":
        targets = debtor.emails
        for e in targets:
            e.opted_out_at = e.opted_out_at or at
    elif channel == "text":
        targets = debtor.phones
        for p in targets:
            p.texts_opted_out_at = p.texts_opted_out_at or at
    elif channel == "call":
        targets = debtor.phones
        for p in targets:
            p.calls_opted_out_at = p.calls_opted_out_at or at
    else:
        raise DebtorError("opt-outs are for email, text or call")
    if not targets:
        raise DebtorError(f"the debtor has no {'email address' if channel == 'email' else 'phone'}")
    audit.record(
        session, actor, "debtor", debtor.id, "debtor.opted_out", case_id=case_id, channel=channel
    )


def set_phone_type(
    session: Session,
    debtor: Debtor,
    number: str,
    phone_type: str,
    *,
    actor: audit.Actor,
    case_id: int | None = None,
) -> Phone:
    """Staff learnt what a number is (the debtor's mobile, home, work, or another's)."""
    if phone_type not in PHONE_TYPES:
        raise DebtorError(f"the phone type {phone_type!r} is not one of: {', '.join(PHONE_TYPES)}")
    phone = next((p for p in debtor.phones if p.number == number), None)
    if phone is None:
        raise DebtorError("that number is not on file for this debtor")
    if phone.type != phone_type:
        audit.record(
            session,
            actor,
            "debtor",
            debtor.id,
            "debtor.phone_type_set",
            case_id=case_id,
            number=number,
            **{"from": phone.type, "to": phone_type},
        )
        phone.type = phone_type
    return phone


def mark_wrong_number(
    session: Session,
    debtor: Debtor,
    number: str | None,
    *,
    at: dt.datetime,
    actor: audit.Actor,
    case_id: int | None = None,
) -> Phone | None:
    """A call to `number` reached someone who is not the debtor: the number is not theirs
    (SPEC §6.13). Returns the phone marked, or None when the number is not on file."""
    phone = next((p for p in debtor.phones if p.number == number), None)
    if phone is None or phone.wrong_number_at is not None:
        return phone
    phone.wrong_number_at = at
    audit.record(
        session,
        actor,
        "debtor",
        debtor.id,
        "debtor.wrong_number",
        case_id=case_id,
        number=number,
    )
    return phone


def set_situation(
    session: Session,
    debtor: Debtor,
    situation: str,
    *,
    actor: audit.Actor,
    case_id: int | None = None,
) -> None:
    if situation not in SITUATIONS:
        raise DebtorError(f"situation must be one of: {', '.join(SITUATIONS)}")
    if debtor.situation != situation:
        audit.record(
            session,
            actor,
            "debtor",
            debtor.id,
            "debtor.situation_set",
            case_id=case_id,
            **{"from": debtor.situation, "to": situation},
        )
        debtor.situation = situation


def set_preferences(
    session: Session,
    debtor: Debtor,
    *,
    emails: dict[int, bool],
    texts: dict[int, bool],
    at: dt.datetime,
    actor: audit.Actor,
) -> list[str]:
    """The debtor's own choice, per address and number: email yes/no, texts yes/no.

    Saying yes to texts is the debtor's consent to texts at that number; saying no is an
    opt-out (SPEC §6.6). Returns what changed, in words, for the confirmation."""
    changed = []
    for email in debtor.emails:
        wanted = emails.get(email.id)
        if wanted is None or wanted == (email.opted_out_at is None):
            continue
        email.opted_out_at = None if wanted else at
        email.consent = wanted
        changed.append(f"email:{email.address}:{'in' if wanted else 'out'}")
    for phone in debtor.phones:
        wanted = texts.get(phone.id)
        if wanted is None or wanted == (phone.text_consent and phone.texts_opted_out_at is None):
            continue
        phone.text_consent = wanted
        phone.texts_opted_out_at = None if wanted else at
        changed.append(f"text:{phone.number}:{'in' if wanted else 'out'}")
    if changed:
        audit.record(session, actor, "debtor", debtor.id, "debtor.preferences_set", changes=changed)
    return changed


def set_language(session: Session, debtor: Debtor, language: str, *, actor: audit.Actor) -> None:
    """The language the debtor reads us in (portal, emails, letters); audited when it changes."""
    if debtor.language == language:
        return
    audit.record(
        session,
        actor,
        "debtor",
        debtor.id,
        "debtor.language_set",
        **{"from": debtor.language, "to": language},
    )
    debtor.language = language


def set_monthly_statements(
    session: Session,
    debtor: Debtor,
    wanted: bool,
    *,
    actor: audit.Actor,
    case_id: int | None = None,
) -> bool:
    """The debtor asks for (or stops) a monthly statement of balance; audited when it changes.
    Returns whether it changed."""
    if debtor.monthly_statements == wanted:
        return False
    debtor.monthly_statements = wanted
    audit.record(
        session,
        actor,
        "debtor",
        debtor.id,
        "debtor.monthly_statements_set",
        case_id=case_id,
        wanted=wanted,
    )
    return True
