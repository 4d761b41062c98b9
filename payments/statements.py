"""Monthly contingency-fee statements (SPEC §9): which movements each one lists, its totals,
its number, and issuing it once, immutably.

Every payment, direct payment and reversal is listed on exactly one statement (a unique
`statement_lines.ledger_entry_id`). A statement for month M takes the client's movements of M
and, as late adjustments, any earlier movement not yet on a statement (one recorded after its
own month was issued). Statements of a client are issued in month order, so "the first
statement not yet issued" is always the next one issued.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Mapped, Session, aliased, deferred, mapped_column, relationship

from cases import audit
from cases.case import Case
from cases.clients import Client
from cases.csvsafe import write_csv
from cases.debtors import Debtor
from cases.early_out import during_early_out, statement_section
from cases.jobs import declare, enqueue
from cases.ledger import LedgerEntry, cents_sum
from cases.model import Base, utcnow
from cases.report_totals import ReportMoney, month_of

MONEY_KINDS = ("payment", "direct_payment", "reversal")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class StatementError(ValueError):
    """A statement could not be issued; the message says why."""


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def start(self) -> dt.date:
        return dt.date(self.year, self.month, 1)

    @property
    def next_start(self) -> dt.date:
        return self.shift(1).start

    @property
    def end(self) -> dt.date:
        return self.next_start - dt.timedelta(days=1)

    @property
    def label(self) -> str:
        return self.start.strftime("%B %Y")

    def shift(self, months: int) -> Month:
        index = self.year * 12 + self.month - 1 + months
        return Month(index // 12, index % 12 + 1)

    @classmethod
    def of(cls, day: dt.date) -> Month:
        return cls(day.year, day.month)


def parse_month(text: str | None) -> Month:
    """'2026-10' -> Month(2026, 10); a clear StatementError for anything else."""
    found = _MONTH.match((text or "").strip())
    if not found or not 1 <= int(found.group(2)) <= 12 or int(found.group(1)) < 2000:
        raise StatementError(f"month must look like YYYY-MM, e.g. 2026-10 (got {text!r})")
    return Month(int(found.group(1)), int(found.group(2)))


def month_has_ended(month: Month, zone: ZoneInfo, now: dt.datetime) -> bool:
    return now >= dt.datetime.combine(month.next_start, dt.time(0), tzinfo=zone)


def last_ended_month(zone: ZoneInfo, now: dt.datetime) -> Month:
    return Month.of(now.astimezone(zone).date()).shift(-1)


# --- the records --------------------------------------------------------------------------


class Statement(Base):
    """One client's statement for one month, as issued: never changed afterwards."""

    __tablename__ = "statements"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(sa.ForeignKey("clients.id"), index=True)
    month: Mapped[str] = mapped_column(sa.String(7))  # YYYY-MM
    number: Mapped[str] = mapped_column(sa.String(40), unique=True)
    issued_at: Mapped[dt.datetime]
    issued_by: Mapped[str] = mapped_column(sa.String(80))
    collected_by_agency: Mapped[int] = mapped_column(sa.BigInteger)
    collected_by_client: Mapped[int] = mapped_column(sa.BigInteger)
    fees: Mapped[int] = mapped_column(sa.BigInteger)
    net_remittance: Mapped[int] = mapped_column(sa.BigInteger)
    # Collections of the 12 months ending with this one, as of issue: [{"month", "cents"}].
    history: Mapped[list[dict]] = mapped_column(default=list)
    # The early-out part (cases.early_out.statement_section), kept apart from the collection
    # figures above; None for a client with no early-out activity in the month.
    early_out: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    pdf: Mapped[bytes] = deferred(mapped_column(sa.LargeBinary, nullable=False))
    csv: Mapped[str] = deferred(mapped_column(sa.Text, nullable=False))
    pdf_sha256: Mapped[str] = mapped_column(sa.String(64))

    client: Mapped[Client] = relationship()
    lines: Mapped[list[StatementLine]] = relationship(
        order_by="StatementLine.id", cascade="all", back_populates="statement"
    )

    __table_args__ = (sa.UniqueConstraint("client_id", "month", name="uq_statements_client_month"),)

    @property
    def period(self) -> Month:
        return parse_month(self.month)

    def summary(self) -> dict:
        """The SPEC §10 item (without the file locations, which depend on where it is read)."""
        return {
            "client": self.client.code,
            "month": self.month,
            "number": self.number,
            "collected_by_agency": self.collected_by_agency,
            "collected_by_client": self.collected_by_client,
            "fees": self.fees,
            "net_remittance": self.net_remittance,
        }


class StatementLine(Base):
    """One money movement on a statement, copied as it was when the statement was issued."""

    __tablename__ = "statement_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    statement_id: Mapped[int] = mapped_column(sa.ForeignKey("statements.id"), index=True)
    # Unique: a movement is on exactly one statement.
    ledger_entry_id: Mapped[int] = mapped_column(sa.ForeignKey("ledger_entries.id"), unique=True)
    late: Mapped[bool]  # from a month before the statement's own
    case_reference: Mapped[str] = mapped_column(sa.String(16))
    debtor_name: Mapped[str] = mapped_column(sa.String(300))
    received_at: Mapped[dt.date]
    kind: Mapped[str] = mapped_column(sa.String(20))
    paid_to: Mapped[str] = mapped_column(sa.String(10))  # agency | client
    method: Mapped[str | None] = mapped_column(sa.String(10))
    amount_cents: Mapped[int] = mapped_column(sa.BigInteger)  # collected; a reversal is negative
    fee_bps: Mapped[int]
    fee_cents: Mapped[int] = mapped_column(sa.BigInteger)

    statement: Mapped[Statement] = relationship(back_populates="lines")


@event.listens_for(Statement, "before_update")
@event.listens_for(Statement, "before_delete")
@event.listens_for(StatementLine, "before_update")
@event.listens_for(StatementLine, "before_delete")
def _immutable(mapper, connection, target):
    raise RuntimeError("an issued statement never changes: corrections go on the next one")


@dataclass(slots=True)
class Movement:
    """A statement line before it is written: the same fields as StatementLine, as plain data
    (tens of thousands of ORM objects cost more than the PDF's database work)."""

    ledger_entry_id: int
    late: bool
    case_reference: str
    debtor_name: str
    received_at: dt.date
    kind: str
    paid_to: str
    method: str | None
    amount_cents: int
    fee_bps: int
    fee_cents: int


LINE_COLUMNS = (
    "statement_id",
    "ledger_entry_id",
    "late",
    "case_reference",
    "debtor_name",
    "received_at",
    "kind",
    "paid_to",
    "method",
    "amount_cents",
    "fee_bps",
    "fee_cents",
)


def _insert_lines(session: Session, statement_id: int, lines: list[Movement]) -> None:
    """Write a statement's lines in one go: COPY on PostgreSQL, one executemany elsewhere."""
    rows = [
        (
            statement_id,
            m.ledger_entry_id,
            m.late,
            m.case_reference,
            m.debtor_name,
            m.received_at,
            m.kind,
            m.paid_to,
            m.method,
            m.amount_cents,
            m.fee_bps,
            m.fee_cents,
        )
        for m in lines
    ]
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        connection.execute(
            sa.insert(StatementLine.__table__),
            [dict(zip(LINE_COLUMNS, r, strict=True)) for r in rows],
        )
        return
    cursor = connection.connection.driver_connection.cursor()
    statement = f"COPY statement_lines ({', '.join(LINE_COLUMNS)}) FROM STDIN"  # our constants
    with cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


# --- what templates are fed ---------------------------------------------------------------


@dataclass
class CaseGroup:
    reference: str
    debtor_name: str
    lines: list[StatementLine] = field(default_factory=list)

    @property
    def collected(self) -> int:
        return sum(line.amount_cents for line in self.lines)

    @property
    def fees(self) -> int:
        return sum(line.fee_cents for line in self.lines)


@dataclass
class StatementDoc:
    """A statement as plain data for the PDF template."""

    number: str
    client_code: str
    client_name: str
    month: str
    period_label: str
    period_start: dt.date
    period_end: dt.date
    issued_on: dt.date
    collected_by_agency: int
    collected_by_client: int
    fees: int
    net_remittance: int
    cases: list[CaseGroup]
    late: list[StatementLine]
    history: list[dict]
    remit_by: dt.date
    early_out: dict | None = None

    @property
    def line_count(self) -> int:
        return sum(len(g.lines) for g in self.cases) + len(self.late)


REMIT_WITHIN_DAYS = 30


def document(statement: Statement, zone: ZoneInfo, lines: list | None = None) -> StatementDoc:
    """The statement as the PDF and the CSV show it; `lines` (Movements) for one being issued,
    else its stored lines."""
    month = statement.period
    groups: dict[str, CaseGroup] = {}
    late = []
    for line in statement.lines if lines is None else lines:
        if line.late:
            late.append(line)
            continue
        group = groups.setdefault(
            line.case_reference, CaseGroup(line.case_reference, line.debtor_name)
        )
        group.lines.append(line)
    return StatementDoc(
        number=statement.number,
        client_code=statement.client.code,
        client_name=statement.client.name,
        month=statement.month,
        period_label=month.label,
        period_start=month.start,
        period_end=month.end,
        issued_on=statement.issued_at.astimezone(zone).date(),
        collected_by_agency=statement.collected_by_agency,
        collected_by_client=statement.collected_by_client,
        fees=statement.fees,
        net_remittance=statement.net_remittance,
        cases=list(groups.values()),
        late=late,
        history=statement.history,
        remit_by=month.end + dt.timedelta(days=REMIT_WITHIN_DAYS),
        early_out=statement.early_out,
    )


def dollars(cents: int) -> str:
    """A spreadsheet-safe amount: 1234.56, and (1234.56) for a negative one (accounting style,
    read as a number by spreadsheets; a leading minus would be neutralised as a formula)."""
    text = f"{abs(cents) // 100}.{abs(cents) % 100:02d}"
    return f"({text})" if cents < 0 else text


CSV_HEADER = (
    "statement",
    "section",
    "case_reference",
    "debtor",
    "date",
    "kind",
    "paid_to",
    "method",
    "amount",
    "fee_rate_percent",
    "fee",
)


def csv_text(doc: StatementDoc) -> str:
    def row(line: StatementLine, section: str) -> list:
        return [
            doc.number,
            section,
            line.case_reference,
            line.debtor_name,
            line.received_at.isoformat(),
            line.kind,
            line.paid_to,
            line.method or "",
            dollars(line.amount_cents),
            f"{line.fee_bps // 100}.{line.fee_bps % 100:02d}",
            dollars(line.fee_cents),
        ]

    rows = [row(line, "current") for group in doc.cases for line in group.lines]
    rows += [row(line, "late adjustment") for line in doc.late]
    rows += _early_out_rows(doc)
    return write_csv(rows, CSV_HEADER)


def _early_out_rows(doc: StatementDoc) -> list[list]:
    """The early-out section's rows (section `early-out`), after the collection rows."""
    if not doc.early_out:
        return []
    rows = [
        [
            doc.number,
            section,
            p["reference"],
            "",
            p["date"],
            p["kind"],
            "client" if p["kind"] == "direct_payment" else "agency",
            "",
            dollars(p["amount_cents"]),
            f"{p['fee_bps'] // 100}.{p['fee_bps'] % 100:02d}",
            dollars(p["fee_cents"]),
        ]
        for section, p in [("early-out", p) for p in doc.early_out["payments"]]
        + [("early-out late adjustment", p) for p in doc.early_out.get("late", [])]
    ]
    flat = doc.early_out["flat_fee_cents"]
    if flat:
        rows += [
            [doc.number, "early-out", ref, "", "", "placement", "", "", "0.00", "", dollars(flat)]
            for ref in doc.early_out["placed"]
        ]
    return rows


# --- issuing ------------------------------------------------------------------------------


@dataclass
class Issued:
    statement: Statement
    created: bool


def statement_for(session: Session, client_id: int, month: Month) -> Statement | None:
    return session.scalar(
        sa.select(Statement).where(Statement.client_id == client_id, Statement.month == str(month))
    )


def _unlisted_movements(session: Session, client_id: int, month: Month) -> list[Movement]:
    original = aliased(LedgerEntry)
    listed = aliased(StatementLine)
    rows = session.execute(
        sa.select(
            LedgerEntry.id,
            LedgerEntry.kind,
            LedgerEntry.amount_cents,
            LedgerEntry.fee_bps,
            LedgerEntry.fee_cents,
            LedgerEntry.received_at,
            LedgerEntry.method,
            original.kind,
            Case.reference,
            Debtor.kind,
            Debtor.first_name,
            Debtor.last_name,
            Debtor.company_name,
        )
        .join(Case, Case.id == LedgerEntry.case_id)
        .join(Debtor, Debtor.id == Case.debtor_id)
        .outerjoin(original, original.id == LedgerEntry.reverses_id)
        .outerjoin(listed, listed.ledger_entry_id == LedgerEntry.id)
        .where(
            Case.client_id == client_id,
            ~during_early_out(),
            LedgerEntry.kind.in_(MONEY_KINDS),
            LedgerEntry.received_at <= month.end,
            listed.id.is_(None),
        )
        .order_by(Case.reference, LedgerEntry.received_at, LedgerEntry.id)
    ).all()
    lines = []
    for (
        entry_id,
        kind,
        amount,
        bps,
        fee,
        received_at,
        method,
        original_kind,
        reference,
        debtor_kind,
        first,
        last,
        company,
    ) in rows:
        name = company if debtor_kind == "commercial" else f"{first} {last}".strip()
        lines.append(
            Movement(
                entry_id,
                received_at < month.start,
                reference,
                name,
                received_at,
                kind,
                "client" if (original_kind or kind) == "direct_payment" else "agency",
                method,
                -amount,
                bps,
                fee,
            )
        )
    return lines


def collections_history(session: Session, client_id: int, month: Month) -> list[dict]:
    """What was collected (by the agency and directly) in each of the 12 months to `month`,
    from the reports' running totals (cases.report_totals), not a year of the ledger."""
    first = month.shift(-11)
    rows = session.execute(
        sa.select(ReportMoney.month, cents_sum(ReportMoney.amount_cents))
        .where(
            ReportMoney.client_id == client_id,
            ReportMoney.kind != "placement",
            ReportMoney.month.between(month_of(first.start), month_of(month.start)),
        )
        .group_by(ReportMoney.month)
    ).all()
    totals = {str(first.shift(i)): 0 for i in range(12)}
    for number, amount in rows:
        totals[f"{number // 100:04d}-{number % 100:02d}"] -= amount
    return [{"month": m, "cents": cents} for m, cents in totals.items()]


def issue(
    session: Session,
    client: Client,
    month: Month,
    *,
    zone: ZoneInfo,
    now: dt.datetime,
    actor: audit.Actor,
    render_pdf: Callable[[StatementDoc], bytes],
) -> Issued:
    """Issue the client's statement for `month`, or return the one already issued, unchanged.

    Does not commit: the caller's unit of work does.
    """
    if not month_has_ended(month, zone, now):
        raise StatementError(
            f"{month} has not ended yet in {zone.key}: "
            f"its statements can be issued from {month.next_start.isoformat()}"
        )
    # One issuer per client at a time (PostgreSQL row lock; SQLite has one writer anyway).
    session.execute(sa.select(Client.id).where(Client.id == client.id).with_for_update())
    existing = statement_for(session, client.id, month)
    if existing is not None:
        return Issued(existing, created=False)
    later = session.scalar(
        sa.select(sa.func.max(Statement.month)).where(
            Statement.client_id == client.id, Statement.month > str(month)
        )
    )
    if later:
        raise StatementError(
            f"{client.code}'s statement for {later} is already issued; statements are issued in "
            f"month order, so movements of {month} not yet listed go on the next one"
        )
    lines = _unlisted_movements(session, client.id, month)
    agency = sum(line.amount_cents for line in lines if line.paid_to == "agency")
    fees = sum(line.fee_cents for line in lines)
    statement = Statement(
        client=client,
        month=str(month),
        number=f"ST-{client.code}-{month}",
        issued_at=now,
        issued_by=actor.label,
        collected_by_agency=agency,
        collected_by_client=sum(line.amount_cents for line in lines if line.paid_to == "client"),
        fees=fees,
        net_remittance=agency - fees,
        history=collections_history(session, client.id, month),
        early_out=_early_out_part(session, client.id, month),
    )
    doc = document(statement, zone, lines)
    statement.pdf = render_pdf(doc)
    statement.csv = csv_text(doc)
    statement.pdf_sha256 = _sha256(statement.pdf)
    session.add(statement)
    session.flush()
    _insert_lines(session, statement.id, lines)
    session.expire(statement, ["lines"])  # read back from the rows just written, when asked
    audit.record(
        session,
        actor,
        "statement",
        statement.id,
        "statement.issued",
        number=statement.number,
        lines=len(lines),
        collected_by_agency=statement.collected_by_agency,
        collected_by_client=statement.collected_by_client,
        fees=fees,
        net_remittance=statement.net_remittance,
    )
    return Issued(statement, created=True)


def _early_out_part(session: Session, client_id: int, month: Month) -> dict | None:
    """The statement's early-out section; an early-out movement an earlier statement did not
    list (recorded after that month's statement was issued) comes in as a late adjustment."""
    listed: set[int] = set()
    covered = []
    for earlier in session.scalars(
        sa.select(Statement).where(Statement.client_id == client_id, Statement.month < str(month))
    ):
        if not earlier.early_out:
            continue
        if "entry_ids" in earlier.early_out:
            listed.update(earlier.early_out["entry_ids"])
        else:  # issued before statements kept the list: it listed its month's movements
            covered.append((earlier.period.start, earlier.period.end))
    section = statement_section(
        session,
        client_id,
        month.start,
        month.end,
        listed=frozenset(listed),
        covered=tuple(covered),
    )
    return section if section["payments"] or section["late"] or section["placed"] else None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def clients_for_month(session: Session, month: Month, zone: ZoneInfo) -> list[Client]:
    """The clients a month's run covers: those with a statement for it already, those with
    movements not yet listed, and every other active client that existed by the month's end
    (a statement with nothing collected is still a statement)."""
    month_over = dt.datetime.combine(month.next_start, dt.time(0), tzinfo=zone)
    issued = set(
        session.scalars(sa.select(Statement.client_id).where(Statement.month == str(month)))
    )
    covered = []
    for client in session.scalars(sa.select(Client).order_by(Client.code)):
        if (
            client.id in issued
            or (client.active and client.created_at < month_over)
            or _has_unlisted(session, client.id, month)
        ):
            covered.append(client)
    return covered


def _has_unlisted(session: Session, client_id: int, month: Month) -> bool:
    listed = aliased(StatementLine)
    return (
        session.scalar(
            sa.select(LedgerEntry.id)
            .join(Case, Case.id == LedgerEntry.case_id)
            .outerjoin(listed, listed.ledger_entry_id == LedgerEntry.id)
            .where(
                Case.client_id == client_id,
                ~during_early_out(),
                LedgerEntry.kind.in_(MONEY_KINDS),
                LedgerEntry.received_at <= month.end,
                listed.id.is_(None),
            )
            .limit(1)
        )
        is not None
    )


# --- a month's run, started from the agency's pages ---------------------------------------------

ISSUE_FOR_RUN = declare("statements.issue_for_run")  # one client's statement of a run

RUN_ITEM_STATUSES = ("waiting", "issued", "unchanged", "failed")


class StatementRun(Base):
    """A month's statements asked for at once (from /agency/statements/runs): one item per
    client, each issued by its own job, so the page can show n of N as they finish."""

    __tablename__ = "statement_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[str] = mapped_column(sa.String(7))  # YYYY-MM
    started_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    started_by: Mapped[str] = mapped_column(sa.String(80))
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    items: Mapped[list[StatementRunItem]] = relationship(
        order_by="StatementRunItem.id", back_populates="run"
    )


class StatementRunItem(Base):
    """One client's statement in a run: `waiting` until its job ran, then `issued` (new),
    `unchanged` (it had been issued before: never issued twice) or `failed` (with why)."""

    __tablename__ = "statement_run_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("statement_runs.id"), index=True)
    client_id: Mapped[int] = mapped_column(sa.ForeignKey("clients.id"))
    status: Mapped[str] = mapped_column(sa.String(10), default="waiting")
    statement_id: Mapped[int | None] = mapped_column(sa.ForeignKey("statements.id"))
    error: Mapped[str | None] = mapped_column(sa.Text)
    finished_at: Mapped[dt.datetime | None]

    run: Mapped[StatementRun] = relationship(back_populates="items")
    client: Mapped[Client] = relationship()
    statement: Mapped[Statement | None] = relationship()

    __table_args__ = (
        sa.UniqueConstraint("run_id", "client_id", name="uq_statement_run_items_run_client"),
        sa.CheckConstraint("status IN ('waiting','issued','unchanged','failed')", name="status"),
    )


@dataclass
class RunProgress:
    """Where a run stands, counted from its items."""

    run_id: int
    month: str
    total: int = 0
    issued: int = 0
    unchanged: int = 0
    failed: int = 0

    @property
    def done(self) -> int:
        return self.issued + self.unchanged + self.failed

    @property
    def finished(self) -> bool:
        return self.done >= self.total

    @property
    def percent(self) -> int:
        return 100 if not self.total else self.done * 100 // self.total

    def as_json(self) -> dict:
        return {
            "run": self.run_id,
            "month": self.month,
            "total": self.total,
            "done": self.done,
            "issued": self.issued,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "percent": self.percent,
            "status": "finished" if self.finished else "running",
        }


def run_progress(session: Session, run: StatementRun) -> RunProgress:
    progress = RunProgress(run.id, run.month)
    for status, count in session.execute(
        sa.select(StatementRunItem.status, sa.func.count())
        .where(StatementRunItem.run_id == run.id)
        .group_by(StatementRunItem.status)
    ):
        progress.total += count
        if status != "waiting":
            setattr(progress, status, count)
    return progress


def start_run(
    session: Session,
    month: Month,
    *,
    client_codes: list[str] | None,
    zone: ZoneInfo,
    now: dt.datetime,
    actor: audit.Actor,
) -> StatementRun:
    """Record a run of `month`'s statements (every client the month covers, or those named)
    and queue one job per client, to run after the commit. Refused, with the reason, for a
    month not yet over, an unknown client, nothing to issue, or a run of the month still going.
    Running a month again issues nothing twice: its statements come back unchanged."""
    if not month_has_ended(month, zone, now):
        raise StatementError(
            f"{month} has not ended yet in {zone.key}: "
            f"its statements can be issued from {month.next_start.isoformat()}"
        )
    if client_codes:
        found = {
            c.code: c
            for c in session.scalars(sa.select(Client).where(Client.code.in_(client_codes)))
        }
        unknown = [code for code in client_codes if code not in found]
        if unknown:
            raise StatementError(f"no client with code {', '.join(unknown)}")
        clients = [found[code] for code in dict.fromkeys(client_codes)]
    else:
        clients = clients_for_month(session, month, zone)
    if not clients:
        raise StatementError(f"no client statements to issue for {month}")
    going = session.scalar(
        sa.select(StatementRun.id)
        .join(StatementRunItem, StatementRunItem.run_id == StatementRun.id)
        .where(StatementRun.month == str(month), StatementRunItem.status == "waiting")
        .limit(1)
    )
    if going is not None:
        raise StatementError(f"run {going} of {month} is still going: wait for it to finish")
    run = StatementRun(month=str(month), started_by_id=actor.user_id, started_by=actor.label)
    run.items = [StatementRunItem(client_id=client.id) for client in clients]
    session.add(run)
    session.flush()
    audit.record(
        session,
        actor,
        "statement_run",
        run.id,
        "statement_run.started",
        month=str(month),
        clients=[client.code for client in clients],
    )
    for item in run.items:
        enqueue(session, ISSUE_FOR_RUN, item.id)
    return run
