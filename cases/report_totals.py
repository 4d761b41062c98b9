"""The reports' running totals: five small tables that hold, at every commit, the sums the
reports read, so that no report page scans the ledger (docs/reports.md, issue 21).

- `report_money`: per client, placement month (of the case's referral) and month (of the
  entry's `received_at`): placements, and money in (payments, direct payments, reversals; a
  reversal counted with the kind of what it reverses, `agency` or `direct`), amounts and fees;
- `report_cases`: per client and placement month, the cases referred;
- `report_assignee`: per assignee (0 for none), client and month, the money in on their cases;
- `report_aging`: per client and due date, the open cases, those with a ledger entry, and
  their balance;
- `report_promises`: per promise, its made-on day in the agency's zone and what has been paid
  towards it (refreshed, from its case's ledger, when its case's money moves or it changes);
- `report_contacts`: per user (0 for none) and month (of the contact's `occurred_at` in the
  agency's zone), the contacts recorded (added to with each contact a flush writes).

They are kept in the same unit of work as the rows they sum: a flush that adds ledger entries
or cases, or changes a case's status, assignee, referral day, due date or client, updates them
(`watch`, called once by `cases.ledger`); the bulk paths that bypass the ORM (the referral
import's COPY, bulk reassignment) call `attach` / `detach` with the cases they touched, and the
posting functions, which insert an entry without a flush, keep its totals in the same
statement on PostgreSQL (`with_new_entry`) and call `entries_added` on SQLite. A changed case is
detached with its old values before the flush and attached with its new ones
after it: whatever changes, the totals stay exact. `rebuild` recomputes them from scratch (the
migration, `flask reports rebuild` after a load that bypasses the app)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from cases.case import OPEN_STATUSES, Case
from cases.contacts import Contact
from cases.model import Base

MONEY_KINDS = ("payment", "direct_payment", "reversal")  # = payments.statements.MONEY_KINDS
WATCHED = ("status", "assigned_to_id", "referred_on", "due_date", "client_id")
CHUNK = 5000  # case ids per statement on the bulk paths


class ReportMoney(Base):
    __tablename__ = "report_money"

    client_id: Mapped[int] = mapped_column(primary_key=True)
    placed_month: Mapped[int] = mapped_column(primary_key=True)  # year * 100 + month
    month: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(10), primary_key=True)  # placement/agency/direct
    amount_cents: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    fee_cents: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class ReportCases(Base):
    __tablename__ = "report_cases"

    client_id: Mapped[int] = mapped_column(primary_key=True)
    placed_month: Mapped[int] = mapped_column(primary_key=True)
    cases: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class ReportAssignee(Base):
    __tablename__ = "report_assignee"

    assignee_id: Mapped[int] = mapped_column(primary_key=True)  # 0: no one
    client_id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[int] = mapped_column(primary_key=True)
    amount_cents: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class ReportAging(Base):
    __tablename__ = "report_aging"

    client_id: Mapped[int] = mapped_column(primary_key=True)
    due_date: Mapped[dt.date] = mapped_column(primary_key=True)
    cases: Mapped[int] = mapped_column(sa.BigInteger, default=0)  # open cases
    entered: Mapped[int] = mapped_column(sa.BigInteger, default=0)  # ... with a ledger entry
    balance_cents: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class ReportPromise(Base):
    """A promise's made-on day (the agency's calendar) and what has been paid towards it: the
    payments and direct payments on its case, never reversed, dated from that day to its due
    date."""

    __tablename__ = "report_promises"

    promise_id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(index=True)
    made_on: Mapped[dt.date]
    due_on: Mapped[dt.date]
    paid_cents: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class ReportContacts(Base):
    """Contacts recorded, per user who recorded them (0: the system) and month of the contact
    in the agency's calendar: the collectors report counts these, not the contacts."""

    __tablename__ = "report_contacts"

    user_id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[int] = mapped_column(primary_key=True)  # year * 100 + month
    contacts: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class _Zone:
    """The agency's time zone, for a promise's made-on day (set by the app at start)."""

    zone: ZoneInfo = ZoneInfo("America/New_York")


def use_zone(zone: ZoneInfo) -> None:
    _Zone.zone = zone


PROMISES = sa.table(
    "promises_to_pay",
    sa.column("id", sa.Integer),
    sa.column("case_id", sa.Integer),
    sa.column("due_on", sa.Date),
    sa.column("created_at", sa.DateTime),
)


def month_key(column) -> sa.ColumnElement[int]:
    """year * 100 + month of a date column, in SQL, on both databases."""
    return sa.cast(sa.extract("year", column), sa.Integer) * 100 + sa.cast(
        sa.extract("month", column), sa.Integer
    )


def month_of(day: dt.date) -> int:
    return day.year * 100 + day.month


def _sum(column, sign: int) -> sa.ColumnElement[int]:
    return sa.cast(sa.func.coalesce(sa.func.sum(column), 0) * sign, sa.BigInteger)


def _upsert(session: Session, table: sa.Table, keys: list[str], select: sa.Select) -> None:
    """INSERT ... SELECT, adding to the rows already there (ON CONFLICT DO UPDATE)."""
    connection = session.connection()
    connection.execute(_upsert_statement(connection.dialect.name, table, keys, select))


def _upsert_statement(dialect: str, table: sa.Table, keys: list[str], select: sa.Select):
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    names = [c.name for c in select.selected_columns]
    statement = insert(table).from_select(names, select)
    return statement.on_conflict_do_update(
        index_elements=keys,
        set_={n: table.c[n] + statement.excluded[n] for n in names if n not in keys},
    )


class _Ledger:
    """The ledger's table, given by `cases.ledger` (which imports this module)."""

    table: sa.Table | None = None
    model: type | None = None
    promises_paid: sa.Update | None = None  # built once, by _promises_paid_of_cases


def _entries(cases_where, entries_where, sign: int) -> list[tuple[sa.Table, list[str], sa.Select]]:
    """The statements that add (sign 1) or take away (-1) the money of the entries selected."""
    entry = _Ledger.table.alias("e")
    original = _Ledger.table.alias("o")
    cases = Case.__table__
    money_kind = sa.case(
        (entry.c.kind == "placement", "placement"),
        (sa.func.coalesce(original.c.kind, entry.c.kind) == "direct_payment", "direct"),
        else_="agency",
    )
    joined = entry.join(cases, cases.c.id == entry.c.case_id).outerjoin(
        original, original.c.id == entry.c.reverses_id
    )
    scope = [w for w in (cases_where(cases), entries_where(entry)) if w is not None]
    month, placed = month_key(entry.c.received_at), month_key(cases.c.referred_on)
    money = (
        sa.select(
            cases.c.client_id,
            placed.label("placed_month"),
            month.label("month"),
            money_kind.label("kind"),
            _sum(entry.c.amount_cents, sign).label("amount_cents"),
            _sum(entry.c.fee_cents, sign).label("fee_cents"),
        )
        .select_from(joined)
        .where(*scope, entry.c.kind.in_(("placement", *MONEY_KINDS)))
        .group_by(cases.c.client_id, placed, month, money_kind)
        .order_by(cases.c.client_id, placed, month, money_kind)
    )
    assignee = sa.func.coalesce(cases.c.assigned_to_id, 0)
    by_assignee = (
        sa.select(
            assignee.label("assignee_id"),
            cases.c.client_id,
            month.label("month"),
            _sum(entry.c.amount_cents, sign).label("amount_cents"),
        )
        .select_from(entry.join(cases, cases.c.id == entry.c.case_id))
        .where(*scope, entry.c.kind.in_(MONEY_KINDS))
        .group_by(assignee, cases.c.client_id, month)
        .order_by(assignee, cases.c.client_id, month)
    )
    return [
        (ReportMoney.__table__, ["client_id", "placed_month", "month", "kind"], money),
        (ReportAssignee.__table__, ["assignee_id", "client_id", "month"], by_assignee),
    ]


def _cases(cases_where, sign: int) -> list[tuple[sa.Table, list[str], sa.Select]]:
    """The statements that add (or take away) whole cases: their count, all their money and,
    when open, their balance."""
    cases = Case.__table__
    entry = _Ledger.table.alias("e")
    where = cases_where(cases)
    scope = [] if where is None else [where]
    placed = month_key(cases.c.referred_on)
    counted = (
        sa.select(
            cases.c.client_id,
            placed.label("placed_month"),
            sa.cast(sa.func.count() * sign, sa.BigInteger).label("cases"),
        )
        .where(*scope)
        .group_by(cases.c.client_id, placed)
        .order_by(cases.c.client_id, placed)
    )
    balances = (
        sa.select(
            cases.c.client_id,
            cases.c.due_date,
            sa.cast(sa.func.count(sa.distinct(cases.c.id)) * sign, sa.BigInteger).label("cases"),
            sa.cast(sa.func.count(sa.distinct(entry.c.case_id)) * sign, sa.BigInteger).label(
                "entered"
            ),
            _sum(entry.c.amount_cents, sign).label("balance_cents"),
        )
        .select_from(cases.outerjoin(entry, entry.c.case_id == cases.c.id))
        .where(*scope, cases.c.status.in_(OPEN_STATUSES))
        .group_by(cases.c.client_id, cases.c.due_date)
        .order_by(cases.c.client_id, cases.c.due_date)
    )
    return [
        (ReportCases.__table__, ["client_id", "placed_month"], counted),
        (ReportAging.__table__, ["client_id", "due_date"], balances),
        *_entries(cases_where, lambda e: None, sign),
    ]


def _run(session: Session, statements) -> None:
    for table, keys, select in statements:
        _upsert(session, table, keys, select)


def _chunks(case_ids: Iterable[int]) -> Iterable[list[int]]:
    ids = sorted(set(case_ids))
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def _by_cases(session: Session, case_ids: Iterable[int], sign: int) -> None:
    ids = sorted(set(case_ids))
    if ids and ids[-1] - ids[0] + 1 == len(ids):  # a run of ids (the referral import's)
        first, last = ids[0], ids[-1]
        _run(session, _cases(lambda c: c.c.id.between(first, last), sign))
        return
    for chunk in _chunks(ids):
        _run(session, _cases(lambda c, chunk=chunk: c.c.id.in_(chunk), sign))


def attach(session: Session, case_ids: Iterable[int]) -> None:
    """Add these cases, as they are now in the database, and all their entries."""
    _by_cases(session, case_ids, 1)


def attach_run(session: Session, first: int, last: int) -> None:
    """Add the cases with ids `first` to `last`, every one of them the caller's own (a bulk
    insert's ids, taken by it alone), and all their entries."""
    _run(session, _cases(lambda c: c.c.id.between(first, last), 1))


def detach(session: Session, case_ids: Iterable[int]) -> None:
    """Take these cases away, as they are now in the database, with all their entries."""
    _by_cases(session, case_ids, -1)


def add_entries(session: Session, entry_ids: list[int]) -> None:
    """Add new ledger entries of cases that did not change otherwise."""
    connection = session.connection()
    statements = _added_statements(connection.dialect.name)
    for start in range(0, len(entry_ids), CHUNK):
        chunk = {"entry_ids": entry_ids[start : start + CHUNK]}
        for statement in statements:
            connection.execute(statement, chunk)


# The statements of `add_entries`, built once a database kind (an entry's posting runs them:
# building them cost more CPU than running them).
_ADDED: dict[str, list] = {}


def _added_statements(dialect: str) -> list:
    if dialect not in _ADDED:
        chunk = sa.bindparam("entry_ids", expanding=True)
        statements = _entries(lambda c: None, lambda e: e.c.id.in_(chunk), 1)
        # The open cases' balances, and the cases that now have their first entry.
        entry, earlier = _Ledger.table.alias("e"), _Ledger.table.alias("earlier")
        cases = Case.__table__
        first = ~sa.exists().where(earlier.c.case_id == entry.c.case_id, earlier.c.id.not_in(chunk))
        balances = (
            sa.select(
                cases.c.client_id,
                cases.c.due_date,
                sa.cast(sa.literal(0), sa.BigInteger).label("cases"),
                sa.cast(
                    sa.func.count(sa.distinct(sa.case((first, entry.c.case_id)))), sa.BigInteger
                ).label("entered"),
                _sum(entry.c.amount_cents, 1).label("balance_cents"),
            )
            .select_from(entry.join(cases, cases.c.id == entry.c.case_id))
            .where(entry.c.id.in_(chunk), cases.c.status.in_(OPEN_STATUSES))
            .group_by(cases.c.client_id, cases.c.due_date)
            .order_by(cases.c.client_id, cases.c.due_date)
        )
        statements.append((ReportAging.__table__, ["client_id", "due_date"], balances))
        _ADDED[dialect] = [_upsert_statement(dialect, *statement) for statement in statements]
    return _ADDED[dialect]


def _words(*words: str) -> list:
    """Constant strings written into the SQL, not bound: a statement built once and run often
    stays short enough for the driver to keep its parsed form (psycopg: 4,096 bytes)."""
    return [sa.literal_column(f"'{word}'") for word in words]


def _month_pg(column) -> sa.ColumnElement[int]:
    """`month_key` in PostgreSQL's shorter spelling."""
    return sa.cast(sa.func.to_char(column, sa.literal_column("'YYYYMM'")), sa.Integer)


def with_new_entry(entry) -> list:
    """On PostgreSQL: the data-modifying parts (each a CTE) of one statement that inserts a
    ledger entry and keeps its totals, `entry` being the CTE of that entry (the insert's
    RETURNING: one row, or none when nothing was inserted): the three totals' upserts and what
    was paid towards its case's promises. Every part sees the database as it was before the
    statement, so the entry itself is read from `entry`, never from the ledger's table."""
    cases, original = Case.__table__, _Ledger.table.alias("o")
    money_kinds, paying = _words(*MONEY_KINDS), _words("payment", "direct_payment")
    month, placed = _month_pg(entry.c.received_at), _month_pg(cases.c.referred_on)
    joined = entry.join(cases, cases.c.id == entry.c.case_id)
    money = (
        sa.select(
            cases.c.client_id,
            placed,
            month,
            sa.case(
                (entry.c.kind == _words("placement")[0], _words("placement")[0]),
                (
                    sa.func.coalesce(original.c.kind, entry.c.kind) == _words("direct_payment")[0],
                    _words("direct")[0],
                ),
                else_=_words("agency")[0],
            ),
            entry.c.amount_cents,
            entry.c.fee_cents,
        )
        .select_from(joined.outerjoin(original, original.c.id == entry.c.reverses_id))
        .where(entry.c.kind.in_([*_words("placement"), *money_kinds]))
    )
    by_assignee = (
        sa.select(
            sa.func.coalesce(cases.c.assigned_to_id, sa.literal_column("0")),
            cases.c.client_id,
            month,
            entry.c.amount_cents,
        )
        .select_from(joined)
        .where(entry.c.kind.in_(money_kinds))
    )
    earlier = _Ledger.table.alias("f")
    first = ~sa.exists().where(earlier.c.case_id == entry.c.case_id)  # the case's first entry
    aging = (
        sa.select(
            cases.c.client_id,
            cases.c.due_date,
            sa.literal_column("0"),
            sa.case((first, sa.literal_column("1")), else_=sa.literal_column("0")),
            entry.c.amount_cents,
        )
        .select_from(joined)
        .where(cases.c.status.in_(_words(*OPEN_STATUSES)))
    )
    parts = []
    for table, keys, select in (
        (ReportMoney.__table__, ["client_id", "placed_month", "month", "kind"], money),
        (ReportAssignee.__table__, ["assignee_id", "client_id", "month"], by_assignee),
        (ReportAging.__table__, ["client_id", "due_date"], aging),
    ):
        names = [c.name for c in table.columns]
        insert = postgresql_insert(table).from_select(names, select)
        upsert = insert.on_conflict_do_update(
            index_elements=keys,
            set_={n: table.c[n] + insert.excluded[n] for n in names if n not in keys},
        )
        parts.append(upsert.cte(f"{table.name}_"))
    # What was paid towards the promises of its case: the payments in the ledger not reversed
    # there nor by the entry, and the entry if a payment (never reversed yet).
    promises = ReportPromise.__table__
    old, reversal = _Ledger.table.alias("p"), _Ledger.table.alias("r")

    def paid(rows, *reversed_):
        return (
            sa.select(sa.func.coalesce(sa.func.sum(-rows.c.amount_cents), sa.literal_column("0")))
            .where(
                rows.c.case_id == promises.c.case_id,
                rows.c.kind.in_(paying),
                rows.c.received_at.between(promises.c.made_on, promises.c.due_on),
                *reversed_,
            )
            .scalar_subquery()
        )

    paid_cents = paid(
        old,
        ~sa.exists().where(reversal.c.reverses_id == old.c.id),
        old.c.id
        != sa.func.coalesce(
            sa.select(entry.c.reverses_id).scalar_subquery(), sa.literal_column("0")
        ),
    ) + paid(entry)
    parts.append(  # (the same sums again if the entry moved no money: no need to ask which)
        sa.update(promises)
        .where(promises.c.case_id.in_(sa.select(entry.c.case_id)))
        .values(paid_cents=paid_cents)
        .cte("report_promises_")
    )
    return parts


def entries_added(session: Session, entries: list) -> None:
    """Add ledger entries written without a flush (the posting functions' one-statement
    insert), with what was paid towards their cases' promises."""
    add_entries(session, [entry.id for entry in entries])
    _paid_towards_promises(session, {e.case_id for e in entries if e.kind in MONEY_KINDS})


def _paid_towards_promises(session: Session, case_ids: Iterable[int]) -> None:
    """Sum again what was paid towards the promises of these cases (their money moved)."""
    connection = session.connection()
    for chunk in _chunks(case_ids):
        connection.execute(_promises_paid_of_cases(), {"case_ids": chunk})


def _promises_paid_statement(where) -> sa.Update:
    """Set paid_cents of the report_promises rows selected, from their cases' ledgers."""
    table = ReportPromise.__table__
    entry, reversal = _Ledger.table.alias("e"), _Ledger.table.alias("rev")
    paid = (
        sa.select(sa.func.coalesce(sa.func.sum(-entry.c.amount_cents), 0))
        .where(
            entry.c.case_id == table.c.case_id,
            entry.c.kind.in_(("payment", "direct_payment")),
            entry.c.received_at >= table.c.made_on,
            entry.c.received_at <= table.c.due_on,
            ~sa.exists().where(reversal.c.reverses_id == entry.c.id),
        )
        .scalar_subquery()
    )
    return sa.update(table).where(where(table)).values(paid_cents=paid)


def _promises_paid(session: Session, where) -> None:
    session.connection().execute(_promises_paid_statement(where))


def _promises_paid_of_cases() -> sa.Update:
    if _Ledger.promises_paid is None:
        cases = sa.bindparam("case_ids", expanding=True)
        _Ledger.promises_paid = _promises_paid_statement(lambda t: t.c.case_id.in_(cases))
    return _Ledger.promises_paid


def refresh_promises(session: Session, case_ids: Iterable[int] | None) -> None:
    """Recompute the promises of these cases (all of them with None)."""
    table = ReportPromise.__table__
    connection = session.connection()
    for chunk in [None] if case_ids is None else _chunks(case_ids):
        scope = [] if chunk is None else [PROMISES.c.case_id.in_(chunk)]
        rows = connection.execute(
            sa.select(PROMISES.c.id, PROMISES.c.case_id, PROMISES.c.due_on, PROMISES.c.created_at)
            .where(*scope)
            .order_by(PROMISES.c.id)
        ).all()
        if chunk is not None:
            connection.execute(sa.delete(table).where(table.c.case_id.in_(chunk)))
        if not rows:
            continue
        zone = _Zone.zone
        values = [
            {
                "promise_id": promise_id,
                "case_id": case_id,
                "made_on": _aware(created_at).astimezone(zone).date(),
                "due_on": due_on,
                "paid_cents": 0,
            }
            for promise_id, case_id, due_on, created_at in rows
        ]
        for start in range(0, len(values), CHUNK):
            connection.execute(sa.insert(table), values[start : start + CHUNK])
        _promises_paid(
            session,
            (lambda t: sa.true()) if chunk is None else (lambda t, c=chunk: t.c.case_id.in_(c)),
        )


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def contact_month(occurred_at: dt.datetime) -> int:
    """The month key of a contact: its month in the agency's calendar."""
    return month_of(_aware(occurred_at).astimezone(_Zone.zone).date())


def add_contacts(session: Session, counts: Counter) -> None:
    """Add `counts` ((user id or 0, month key) -> contacts, negative to take away)."""
    rows = [
        {"user_id": user_id, "month": month, "contacts": n}
        for (user_id, month), n in sorted(counts.items())
        if n
    ]
    if not rows:
        return
    table = ReportContacts.__table__
    connection = session.connection()
    insert = postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert
    statement = insert(table).values(rows)
    statement = statement.on_conflict_do_update(
        index_elements=["user_id", "month"],
        set_={"contacts": table.c.contacts + statement.excluded.contacts},
    )
    connection.execute(statement)


def _count_contacts(session: Session) -> None:
    """Every contact counted again: in SQL on PostgreSQL (its time zones), read through on
    SQLite (which has none)."""
    contacts = Contact.__table__
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        local = sa.func.timezone(_Zone.zone.key, contacts.c.occurred_at)
        user = sa.func.coalesce(contacts.c.user_id, 0)
        month = month_key(local)
        session.execute(
            sa.insert(ReportContacts).from_select(
                ["user_id", "month", "contacts"],
                sa.select(user, month, sa.func.count()).group_by(user, month),
            )
        )
        return
    counts: Counter = Counter()
    rows = session.execute(
        sa.select(Contact.user_id, Contact.occurred_at).execution_options(yield_per=CHUNK)
    )
    for user_id, occurred_at in rows:
        counts[(user_id or 0, contact_month(occurred_at))] += 1
    add_contacts(session, counts)


def _contacts_flushed(session: Session) -> None:
    """The contacts this flush added, removed or moved (to another user or month)."""
    counts: Counter = Counter()
    for contact in session.new:
        if isinstance(contact, Contact):
            counts[(contact.user_id or 0, contact_month(contact.occurred_at))] += 1
    for contact in session.deleted:
        if isinstance(contact, Contact):
            state = sa.inspect(contact).attrs
            user = (state.user_id.history.deleted or [contact.user_id])[0]
            at = (state.occurred_at.history.deleted or [contact.occurred_at])[0]
            counts[(user or 0, contact_month(at))] -= 1
    for contact in session.dirty:
        if not isinstance(contact, Contact):
            continue
        state = sa.inspect(contact).attrs
        if not (state.user_id.history.has_changes() or state.occurred_at.history.has_changes()):
            continue
        user = (state.user_id.history.deleted or [contact.user_id])[0]
        at = (state.occurred_at.history.deleted or [contact.occurred_at])[0]
        counts[(user or 0, contact_month(at))] -= 1
        counts[(contact.user_id or 0, contact_month(contact.occurred_at))] += 1
    add_contacts(session, counts)


TABLES = (ReportMoney, ReportCases, ReportAssignee, ReportAging, ReportPromise, ReportContacts)


def rebuild(session: Session) -> None:
    """Recompute every total from the ledger, the cases and the contacts (a whole scan: after
    a load that bypassed the app, or to check)."""
    for model in TABLES:
        session.execute(sa.delete(model))
    _run(session, _cases(lambda c: None, 1))
    refresh_promises(session, None)
    _count_contacts(session)


# --- kept in the unit of work -----------------------------------------------------------------


def _changed(instance: Case) -> bool:
    state = sa.inspect(instance)
    return any(state.attrs[name].history.has_changes() for name in WATCHED)


def _before_flush(session: Session, flush_context, instances) -> None:
    moved = {
        case.id
        for case in session.dirty
        if isinstance(case, Case) and case.id is not None and _changed(case)
    }
    moved |= {case.id for case in session.deleted if isinstance(case, Case)}
    if moved:
        detach(session, moved)
    session.info["report_totals.moved"] = moved


def _after_flush(session: Session, flush_context) -> None:
    moved = session.info.pop("report_totals.moved", set())
    gone = {case.id for case in session.deleted if isinstance(case, Case)}
    new_cases = {case.id for case in session.new if isinstance(case, Case)}
    touched = (moved - gone) | new_cases
    entries = sorted(
        e.id
        for e in session.new
        if isinstance(e, _Ledger.model) and e.case_id not in touched and e.case_id not in gone
    )
    if touched:
        attach(session, touched)
    if entries:
        add_entries(session, entries)
    # Promises: the cases with a promise new or changed are read again; where only money moved,
    # what was paid towards the promises already kept is summed again (one UPDATE, no read).
    promised: set[int] = set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        if getattr(obj, "__tablename__", None) == "promises_to_pay":
            promised.add(obj.case_id)
            history = sa.inspect(obj).attrs.case_id.history
            promised.update(c for c in history.deleted or () if c is not None)
    if promised:
        refresh_promises(session, promised)
    paid = {
        e.case_id for e in session.new if isinstance(e, _Ledger.model) and e.kind in MONEY_KINDS
    } - promised
    _paid_towards_promises(session, paid)
    _contacts_flushed(session)


def watch(ledger_model) -> None:
    """Keep the totals with every flush of every session (called once, by `cases.ledger`)."""
    _Ledger.table = ledger_model.__table__
    _Ledger.model = ledger_model
    event.listen(Session, "before_flush", _before_flush)
    event.listen(Session, "after_flush", _after_flush)
