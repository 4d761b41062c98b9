"""Cases: one referred debt each, with its status and the transitions it may take."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from cases import audit
from cases.clients import Client
from cases.debtors import Debtor
from cases.model import Base, Timestamped, new_stamp, utcnow

STATUSES = ("new", "active", "plan", "paid", "settled", "disputed", "closed")
OPEN_STATUSES = ("new", "active", "plan", "disputed")
# The statuses in the order a case moves through them, for pages that count cases by status.
STATUSES_BY_STAGE = ("new", "active", "plan", "disputed", "paid", "settled", "closed")
# The open cases a collector works from the queue (a disputed case waits for verification).
WORKED_STATUSES = ("new", "active", "plan")
# Reg F 1006.34(b)(3): the reference dates an itemisation may start from.
ITEMIZATION_DATE_TYPES = ("last_statement", "charge_off", "last_payment", "transaction", "judgment")
CLOSE_REASONS = ("recalled", "uncollectible", "cease", "bankrupt", "deceased", "legal", "duplicate")
# The kinds of debt a statute of limitations distinguishes (SPEC §5 `debt_kind`, §6.11).
DEBT_KINDS = ("written_contract", "open_account", "promissory_note", "oral")
# A collection case, or an early-out account: reminders in the client's name before collection
# (cases.early_out); it converts to a collection case on the client's day.
PROGRAMS = ("collection", "early_out")

# Every allowed move, and only these (SPEC §3). `paid`/`settled` reopen only when a payment
# behind them is reversed; a closed case can be reopened by a supervisor.
TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"active", "disputed", "paid", "settled", "closed"}),
    "active": frozenset({"plan", "paid", "settled", "disputed", "closed"}),
    "plan": frozenset({"active", "paid", "settled", "disputed", "closed"}),
    "disputed": frozenset({"active", "paid", "settled", "closed"}),
    "paid": frozenset({"active"}),
    "settled": frozenset({"active"}),
    "closed": frozenset({"active"}),
}


class Case(Timestamped, Base):
    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(sa.String(16), unique=True)
    client_id: Mapped[int] = mapped_column(sa.ForeignKey("clients.id"), index=True)
    debtor_id: Mapped[int] = mapped_column(sa.ForeignKey("debtors.id"), index=True)
    batch_id: Mapped[int | None] = mapped_column(sa.ForeignKey("referral_batches.id"), index=True)
    batch_row: Mapped[int | None]
    account_number: Mapped[str] = mapped_column(sa.String(64))
    # Equal to account_number while the case is open, NULL once it is not: the unique
    # constraint below then means "unique per client among open cases" on every database.
    open_account_number: Mapped[str | None] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(10), default="new", index=True)
    program: Mapped[str] = mapped_column(
        sa.String(10), default="collection", server_default="collection", index=True
    )
    # The day an early-out account was placed (kept after it converts, for the reports), and
    # whether it converts to a collection case on the client's day (the client may switch it off).
    early_out_placed_on: Mapped[dt.date | None]
    early_out_converts: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    close_reason: Mapped[str | None] = mapped_column(sa.String(15))
    assigned_to_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"), index=True)
    referred_on: Mapped[dt.date]
    due_date: Mapped[dt.date]
    itemization_date: Mapped[dt.date]
    # Reg F 1006.34(b)(3): which of the five reference dates `itemization_date` is.
    itemization_date_type: Mapped[str] = mapped_column(
        sa.String(15), default="last_statement", server_default="last_statement"
    )
    # The referral's itemisation (SPEC §5), NULL on a case opened without one: then what was
    # placed is taken as owed on the itemisation date, with nothing accrued or paid since.
    amount_on_itemization_date_cents: Mapped[int | None] = mapped_column(sa.BigInteger)
    interest_since_itemization_cents: Mapped[int] = mapped_column(
        sa.BigInteger, default=0, server_default="0"
    )
    fees_since_itemization_cents: Mapped[int] = mapped_column(
        sa.BigInteger, default=0, server_default="0"
    )
    payments_since_itemization_cents: Mapped[int] = mapped_column(
        sa.BigInteger, default=0, server_default="0"
    )
    credits_since_itemization_cents: Mapped[int] = mapped_column(
        sa.BigInteger, default=0, server_default="0"
    )
    days_past_due_at_referral: Mapped[int]
    last_payment_date: Mapped[dt.date | None]
    # None when the referral did not say: the state's shortest period applies (SPEC §6.11).
    debt_kind: Mapped[str | None] = mapped_column(sa.String(20))
    invoice_number: Mapped[str | None] = mapped_column(sa.String(64))
    service_description: Mapped[str | None] = mapped_column(sa.String(500))
    in_legal: Mapped[bool] = mapped_column(default=False)
    validation_sent_at: Mapped[dt.datetime | None]
    validation_period_ends_on: Mapped[dt.date | None]
    # The day the mail house (or a supervisor) confirmed the notice was mailed: the period's
    # dates run from it. Until then `validation_period_ends_on` counts from the hand-over.
    validation_mailed_on: Mapped[dt.date | None]
    # The print run that carried the notice to the mail house (cases.notices.NoticeRun).
    notice_run_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("notice_runs.id", use_alter=True), index=True
    )
    # The first communication other than the notice, while no notice has gone out: the notice
    # is due within 5 days of it (12 CFR 1006.34(a)(1), SPEC §6.7).
    first_communication_at: Mapped[dt.datetime | None]
    # From the referral, for a request under 1006.38(c) (SPEC §6.12).
    original_creditor_name: Mapped[str | None] = mapped_column(sa.String(200))
    original_creditor_address: Mapped[str | None] = mapped_column(sa.String(500))
    last_contact_at: Mapped[dt.datetime | None]
    status_changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Changes with everything the debtor portal shows about the case (cases/stamps.py).
    stamp: Mapped[int] = mapped_column(sa.BigInteger, default=new_stamp, server_default="0")
    # What the search box matches, in lower case: reference, account number and the debtor's
    # names (search_text_of), written once when the case is opened (none of them changes), so
    # a client's search reads one table through one index (`ix_cases_search`).
    search_text: Mapped[str] = mapped_column(sa.String(500), default="", server_default="")
    # The monthly statement of balance (cases.reminders): the month (YYYY-MM) of the last one
    # sent on this case, "" while its debtor asks for them and none was sent yet, NULL when the
    # debtor does not ask. Kept with the debtor's choice (below) and set when one is sent, so the
    # hourly run reads, through `ix_cases_statement_due`, only the cases not yet sent this month.
    statement_month: Mapped[str | None] = mapped_column(sa.String(7))
    # The first day the case has a promise or plan to chase, NULL when none: the queue's first
    # two buckets (a promise due today; a broken promise or plan) on `today` are the cases with
    # `chase_from <= today` (cases/chase.py, which keeps it with every promise and plan).
    chase_from: Mapped[dt.date | None]

    client: Mapped[Client] = relationship()
    debtor: Mapped[Debtor] = relationship()

    __table_args__ = (
        sa.UniqueConstraint("client_id", "open_account_number", name="uq_cases_open_account"),
        sa.CheckConstraint(
            "status IN ('new','active','plan','paid','settled','disputed','closed')", name="status"
        ),
        sa.CheckConstraint("(status = 'closed') = (close_reason IS NOT NULL)", name="close_reason"),
        sa.CheckConstraint("program IN ('collection','early_out')", name="program"),
        sa.CheckConstraint(
            "debt_kind IN ('written_contract','open_account','promissory_note','oral')",
            name="debt_kind",
        ),
        sa.CheckConstraint(
            "itemization_date_type IN "
            "('last_statement','charge_off','last_payment','transaction','judgment')",
            name="itemization_date_type",
        ),
        # The queue ranks a collector's whole book from this index alone (cases.queue).
        sa.Index(
            "ix_cases_queue",
            "assigned_to_id",
            "last_contact_at",
            "referred_on",
            "id",
            # The queue leaves out early-out accounts, and the cases with something to chase.
            postgresql_include=["status", "program", "chase_from"],
            postgresql_where=sa.text("status IN ('new', 'active', 'plan')"),
            sqlite_where=sa.text("status IN ('new', 'active', 'plan')"),
        ),
        # A collector's worked cases with a promise or plan to chase, by the day they are
        # first due it: the queue's first two buckets are a short range of it (cases.chase).
        sa.Index(
            "ix_cases_chase",
            "assigned_to_id",
            "chase_from",
            postgresql_include=["program", "last_contact_at", "referred_on", "id"],
            postgresql_where=sa.text(
                "chase_from IS NOT NULL AND status IN ('new', 'active', 'plan')"
            ),
            sqlite_where=sa.text("chase_from IS NOT NULL AND status IN ('new', 'active', 'plan')"),
        ),
        # A client's case list in each of its orders, with and without a status filter: each
        # page is a short range of one of these (never a sort of the client's whole book), read
        # from the index alone (each ends in the id the page selects first).
        sa.Index("ix_cases_client_referred", "client_id", "referred_on", "id"),
        sa.Index("ix_cases_client_reference", "client_id", "reference", "id"),
        sa.Index("ix_cases_client_status", "client_id", "status", "reference", "id"),
        sa.Index("ix_cases_client_status_referred", "client_id", "status", "referred_on", "id"),
        # The search box: on PostgreSQL a trigram GIN index (pg_trgm, with btree_gin for the
        # client), so LIKE '%text%' finds a client's matches without reading its whole book.
        # Not the status too: a GIN index keeps each column's keys apart, and a status's key
        # lists that status's cases of every client (4 M at ten million cases): slower.
        sa.Index(
            "ix_cases_search",
            "client_id",
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        ),
        # A whole account number typed in the search box (`search`): its ten digits share
        # their trigrams with thousands of other accounts, so it is looked up here instead,
        # exactly and as a prefix (`text_pattern_ops`: LIKE 'text%' reads a range whatever
        # the collation). The account first, so the staff's search of every client uses it.
        sa.Index(
            "ix_cases_account",
            "account_number",
            "client_id",
            postgresql_ops={"account_number": "text_pattern_ops"},
        ),
    )

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    # What a case in its status can take. Services refuse by these and pages ask them, so no
    # template keeps a list of statuses of its own.
    @property
    def takes_payments(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def takes_offers(self) -> bool:
        """Settlement offers and promises to pay: a case being worked, not one in dispute."""
        return self.status in WORKED_STATUSES

    @property
    def takes_plan(self) -> bool:
        return self.status == "active"

    def __repr__(self) -> str:
        return f"<Case {self.reference} {self.status}>"


class ReferenceCounter(Base):
    """The last number used for each month's references (RC-YYMM-NNNNN)."""

    __tablename__ = "reference_counters"

    prefix: Mapped[str] = mapped_column(sa.String(8), primary_key=True)
    last: Mapped[int] = mapped_column(default=0)


class TransitionError(ValueError):
    """A status change the lifecycle does not allow."""


def next_references(session: Session, on: dt.date, count: int = 1) -> list[str]:
    """Reserve `count` consecutive references for the month of `on`.

    The counter row is updated in place (a row lock on PostgreSQL, the write lock on SQLite),
    so two imports at once never hand out the same number.
    """
    prefix = on.strftime("%y%m")
    updated = session.execute(
        sa.update(ReferenceCounter)
        .where(ReferenceCounter.prefix == prefix)
        .values(last=ReferenceCounter.last + count)
        .returning(ReferenceCounter.last)
    ).scalar()
    if updated is None:
        session.add(ReferenceCounter(prefix=prefix, last=count))
        session.flush()
        updated = count
    first = updated - count + 1
    return [f"RC-{prefix}-{n:05d}" for n in range(first, updated + 1)]


# Called as hook(session, case, actor) when a case ends paid, settled or closed: cases.plans
# registers one that cancels the payment plan in force, so nothing more is charged.
ON_END: list[Callable[[Session, Case, audit.Actor], None]] = []
# Called as guard(session, case, new_status, close_reason) before a change of status; a guard
# refuses by raising TransitionError with the reason. cases.limitations registers one: a
# time-barred case never goes to `legal` (12 CFR 1006.26(b)).
GUARDS: list[Callable[[Session, Case, str, str | None], None]] = []
ENDED_STATUSES = ("paid", "settled", "closed")


def change_status(
    session: Session,
    case: Case,
    new_status: str,
    *,
    actor: audit.Actor,
    reason: str,
    close_reason: str | None = None,
) -> None:
    """Move a case to `new_status` if the lifecycle allows it, and audit who, when and why."""
    if new_status not in STATUSES:
        raise TransitionError(f"unknown status {new_status!r}")
    if new_status not in TRANSITIONS[case.status]:
        raise TransitionError(f"a {case.status} case cannot become {new_status}")
    if new_status == "closed":
        if close_reason not in CLOSE_REASONS:
            raise TransitionError(f"closing needs a reason: one of {', '.join(CLOSE_REASONS)}")
    elif close_reason is not None:
        raise TransitionError("only a closed case has a close reason")
    if not reason or not reason.strip():
        raise TransitionError("a status change needs a reason")
    for guard in GUARDS:
        guard(session, case, new_status, close_reason)
    old = case.status
    case.status = new_status
    case.close_reason = close_reason
    case.status_changed_at = utcnow()
    case.open_account_number = case.account_number if new_status in OPEN_STATUSES else None
    audit.record(
        session,
        actor,
        "case",
        case.id,
        "case.status_changed",
        case_id=case.id,
        reason=reason.strip(),
        **{"from": old, "to": new_status, "close_reason": close_reason},
    )
    if new_status in ENDED_STATUSES:
        for hook in ON_END:
            hook(session, case, actor)


def search_text_of(reference: str, account_number: str, *names: str | None) -> str:
    """A case's `search_text`: what the search box matches (reference, account number, the
    debtor's first, last and company names), lower case, one space apart."""
    return " ".join(part for part in (reference, account_number, *names) if part).lower()[:500]


@sa.event.listens_for(Case, "before_insert")
def _search_text(mapper, connection, case: Case) -> None:
    debtor = case.debtor
    if debtor is not None:
        names = (debtor.first_name, debtor.last_name, debtor.company_name)
    else:
        names = connection.execute(
            sa.select(Debtor.first_name, Debtor.last_name, Debtor.company_name).where(
                Debtor.id == case.debtor_id
            )
        ).one()
    case.search_text = search_text_of(case.reference, case.account_number, *names)
    if case.statement_month is None and (
        debtor.monthly_statements
        if debtor is not None
        else connection.scalar(
            sa.select(Debtor.monthly_statements).where(Debtor.id == case.debtor_id)
        )
    ):
        case.statement_month = STATEMENT_NONE_YET


# `Case.statement_month` of a case whose debtor asks for statements and has had none yet.
STATEMENT_NONE_YET = ""


@sa.event.listens_for(Debtor, "after_update")
def _statement_month(mapper, connection, debtor: Debtor) -> None:
    """A debtor who asks for monthly statements puts their cases in the hourly run's index (as
    not sent yet); one who stops takes them out."""
    if not sa.inspect(debtor).attrs.monthly_statements.history.has_changes():
        return
    cases = Case.__table__
    if debtor.monthly_statements:
        connection.execute(
            sa.update(cases)
            .where(cases.c.debtor_id == debtor.id, cases.c.statement_month.is_(None))
            .values(statement_month=STATEMENT_NONE_YET)
        )
    else:
        connection.execute(
            sa.update(cases).where(cases.c.debtor_id == debtor.id).values(statement_month=None)
        )


def case_by_reference(session: Session, reference: str) -> Case | None:
    return session.scalar(sa.select(Case).where(Case.reference == reference.strip().upper()))


def open_case(
    session: Session,
    *,
    client: Client,
    debtor: Debtor,
    reference: str,
    account_number: str,
    referred_on: dt.date,
    due_date: dt.date,
    itemization_date: dt.date | None = None,
    actor: audit.Actor,
    **details,
) -> Case:
    """Open a case in `new` for an accepted referral (its ledger placements come separately)."""
    case = Case(
        reference=reference,
        client_id=client.id,
        debtor=debtor,
        account_number=account_number,
        open_account_number=account_number,
        status="new",
        referred_on=referred_on,
        due_date=due_date,
        itemization_date=itemization_date or due_date,
        days_past_due_at_referral=(referred_on - due_date).days,
        **details,
    )
    session.add(case)
    session.flush()
    audit.record(
        session,
        actor,
        "case",
        case.id,
        "case.opened",
        case_id=case.id,
        reference=reference,
        client=client.code,
        account_number=account_number,
    )
    return case


REFERENCE = re.compile(r"RC-[0-9]{4}-[0-9]{5,}", re.IGNORECASE)
# What could be a whole account number: one word of letters, digits and . / # - with a digit
# in it (a name, a phrase or a lone digit never is).
ACCOUNT = re.compile(r"(?=[^0-9]*[0-9])[A-Za-z0-9./#-]{4,64}")


def search(
    session: Session, query: sa.Select, text: str, status: str = "", client_id: int | None = None
) -> sa.Select:
    """Narrow a case query (joined to its debtor) to a search box's text and a status; the
    cases of `client_id` when given (the query must be narrowed to them too), else of all."""
    text = text.strip()[:100]
    if REFERENCE.fullmatch(text):
        # A whole reference is that case (by the unique index): its "rc-2611-" trigrams are in
        # every case's search_text, so the trigram index would read the whole book for it.
        query = query.where(Case.reference == text.upper())
    elif text and whole_account_number(session, text, client_id):
        # Its cases, by `ix_cases_account`: what the substring match below finds, unless the
        # number also stands inside a longer one (docs/benchmarks.md, "The account-number
        # search"): ten digits share their trigrams with thousands of other accounts.
        query = query.where(Case.account_number == text)
    elif text:
        # One column (reference, account number, names) and its trigram index; the debtor's
        # name reads as "first last", so "pat lee" finds Pat Lee.
        query = query.where(Case.search_text.like(f"%{text.lower()}%"))
    if status in STATUSES:
        query = query.where(Case.status == status)
    return query


def whole_account_number(session: Session, text: str, client_id: int | None = None) -> bool:
    """Whether `text` is a whole account number (of the client's cases, or of any): some case
    has exactly it, and no case has a longer one that starts with it (then it is part of a
    number, and the substring search finds both). One statement, two reads of
    `ix_cases_account`. A text that is not one word with a digit is never one (no read)."""
    if not ACCOUNT.fullmatch(text):
        return False
    mine = [Case.client_id == client_id] if client_id is not None else []
    exact = sa.exists().where(Case.account_number == text, *mine)
    # No % or _ in `text` (ACCOUNT): a plain prefix.
    longer = sa.exists().where(
        Case.account_number.like(f"{text}%"), Case.account_number != text, *mine
    )
    return bool(session.scalar(sa.select(sa.and_(exact, ~longer))))
