"""Referral batches: the files clients hand over, checked, previewed and imported as cases."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.dialects.postgresql import ARRAY, REGCLASS
from sqlalchemy.orm import Mapped, Session, deferred, mapped_column, relationship

from cases import audit, report_totals
from cases.case import STATEMENT_NONE_YET, Case, next_references, search_text_of
from cases.clients import Client
from cases.debtors import Address, Debtor, Email, Phone, match_key
from cases.documents import Document
from cases.jobs import declare, enqueue
from cases.ledger import LedgerEntry
from cases.model import Base, Timestamped, new_stamp, utcnow
from cases.referral_file import (
    ReferralRow,
    Rejection,
    Source,
    column_positions,
    parse,
    parse_counted,
    raw_rows,
)

IMPORT = declare("referrals.import", queue="imports")

BATCH_STATUSES = (
    "mapping",
    "previewed",
    "queued",
    "importing",
    "imported",
    "failed",
    "cancelled",
)
CHUNK_ROWS = 1000


class ReferralBatch(Timestamped, Base):
    __tablename__ = "referral_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(sa.ForeignKey("clients.id"), index=True)
    uploaded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    source: Mapped[str] = mapped_column(sa.String(10), default="upload")  # upload, cli, api
    filename: Mapped[str] = mapped_column(sa.String(255), default="")
    file_sha256: Mapped[str] = mapped_column(sa.String(64), index=True)
    # The file itself, so a worker on another machine can import it and rejects can be replayed:
    # kept in the document store (streamed there as it arrived). Batches from before that kept
    # it in `content`, which nothing writes any more (a small file checked in memory still does).
    # use_alter: documents point to cases, cases to their batch, and the batch to its document.
    document_id: Mapped[int | None] = mapped_column(sa.ForeignKey("documents.id", use_alter=True))
    content: Mapped[bytes | None] = deferred(mapped_column(sa.LargeBinary))
    mapping: Mapped[dict[str, str]] = mapped_column(default=dict)
    as_of: Mapped[dt.date]
    status: Mapped[str] = mapped_column(sa.String(10), default="previewed")
    total_rows: Mapped[int] = mapped_column(default=0)
    processed_rows: Mapped[int] = mapped_column(default=0)
    accepted_count: Mapped[int] = mapped_column(default=0)
    # [{"row", "column", "reason"}], in file order.
    rejected: Mapped[list[dict]] = mapped_column(default=list)
    # The accepted rows that gave no itemization_date: their due date is taken as the date of
    # the last statement (SPEC §2), and the preview says so.
    due_date_itemized_rows: Mapped[list[int]] = mapped_column(
        sa.JSON, default=list, server_default="[]"
    )
    error: Mapped[str | None] = mapped_column(sa.Text)
    # When the client attested that the file's early-out accounts are not in default under its
    # own terms (15 U.S.C. 1692a(6)(F)(iii)); a file with early_out rows needs it.
    early_out_attested_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]

    client: Mapped[Client] = relationship()
    document: Mapped[Document | None] = relationship()

    @property
    def rejected_count(self) -> int:
        return len(self.rejected)

    @property
    def due_date_itemized_ranges(self) -> str:
        """The rows of `due_date_itemized_rows` as ranges: "2–5, 9"."""
        ranges: list[list[int]] = []
        for row in self.due_date_itemized_rows or []:
            if ranges and row == ranges[-1][1] + 1:
                ranges[-1][1] = row
            else:
                ranges.append([row, row])
        return ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in ranges)

    @property
    def percent_done(self) -> int:
        if self.status == "imported":
            return 100
        return int(100 * self.processed_rows / self.total_rows) if self.total_rows else 0


PREVIEW_ROWS = 50  # the rows a preview shows as the client wrote them


@dataclass(frozen=True)
class PreviewRow:
    """One data row as the client wrote it, and what the check made of it."""

    row: int
    cells: list[str]
    accepted: bool
    reason: str = ""
    column: str = ""  # our column the reason is about ("" for the row as a whole)
    cell: int | None = None  # the index of that column's cell in the row


def preview_rows(
    batch: ReferralBatch, source: Source | None = None, limit: int = PREVIEW_ROWS
) -> tuple[list[str], list]:
    """The file's header and its first `limit` data rows (blank ones skipped, as the import
    skips them), each marked accepted or rejected with the cell its reason names."""
    header, rows = raw_rows(batch_source(batch, source), batch.filename)
    positions = column_positions(header, batch.mapping or {})
    reasons = {r["row"]: r for r in batch.rejected}
    shown = []
    for number, cells in rows:
        if not any(c.strip() for c in cells):
            continue
        problem = reasons.get(number)
        if problem is None:
            shown.append(PreviewRow(number, cells, True))
        else:
            column = problem["column"]
            shown.append(
                PreviewRow(number, cells, False, problem["reason"], column, positions.get(column))
            )
        if len(shown) >= limit:
            break
    rows.close()  # type: ignore[attr-defined]  # a generator: closes the file now
    width = max([len(header), *(len(r.cells) for r in shown)])
    pad = [""] * width
    for r in shown:
        r.cells[:] = (r.cells + pad)[:width]
    return (header + pad)[:width], shown


def batch_source(batch: ReferralBatch, source: Source | None = None) -> Source:
    """The batch's file: `source` (an opener of its stored document, given by the shell, which
    knows where the store is), else the bytes of a batch kept in `content`."""
    if source is not None:
        return source
    if batch.content is None:
        raise ValueError(f"referral batch {batch.id}: its file is in the document store")
    return batch.content


def _file_fields(data: Source, document: Document | None) -> dict:
    """The batch's columns for its file: the stored document, or (bytes only) the bytes."""
    if document is not None:
        return {"document_id": document.id, "file_sha256": document.sha256, "content": None}
    if not isinstance(data, bytes):
        raise ValueError("a file given by an opener must be a stored document")
    return {"file_sha256": hashlib.sha256(data).hexdigest(), "content": data}


@dataclass
class ImportResult:
    """SPEC §10's result: accepted count, rejected rows, references of the cases opened."""

    accepted: int = 0
    rejected: list[dict] = field(default_factory=list)
    cases: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"accepted": self.accepted, "rejected": self.rejected, "cases": self.cases}


Progress = Callable[[int, int], None]  # (rows done, rows in all)


def _rejection(r: Rejection) -> dict:
    return {"row": r.row, "column": r.column, "reason": r.reason}


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


_END = object()


def _read_ahead(items: Iterable, size: int = CHUNK_ROWS, depth: int = 2) -> Iterator[list]:
    """Chunks of `items`, made by a thread of their own up to `depth` chunks ahead of the caller.

    The rows of a file are checked (pure Python) while the caller waits on the database for the
    chunk before (the driver lets other threads run meanwhile): on 2 cores the checks and the
    database's work overlap. An exception in the thread is raised here, at its place in the
    file; stopping early (the caller raising, or closing this generator) stops the thread.
    """
    handoff: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def hand(item: object) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for chunk in _chunks(items, size):
                if not hand(chunk):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            hand(exc)
            return
        hand(_END)

    thread = threading.Thread(target=produce, name="referral-rows", daemon=True)
    thread.start()
    try:
        while (item := handoff.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def _among(session: Session, column: sa.ColumnElement, values: Iterable[str]) -> sa.ColumnElement:
    """`column IN values`; on PostgreSQL as `= ANY(array)`, one parameter instead of a thousand
    (psycopg and SQLAlchemy spent more time on the statement's text than the server on it)."""
    if session.get_bind().dialect.name == "postgresql":
        return column == sa.any_(sa.bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(values)


def _open_account_numbers(session: Session, client: Client, numbers: list[str]) -> dict:
    """{account number: reference} of the client's open cases among these numbers."""
    if session.get_bind().dialect.name != "postgresql":
        query = sa.select(Case.open_account_number, Case.reference).where(
            Case.client_id == client.id, Case.open_account_number.in_(numbers)
        )
        return dict(session.execute(query).all())
    # One probe of the unique index per number (a subquery with LIMIT is never flattened into
    # a join). Asked as one `= ANY(...)`, PostgreSQL, with no statistics yet for the cases the
    # import has inserted in its transaction, read all of the client's cases by client_id and
    # filtered them: a lookup that grew with every chunk (200 ms a chunk at 250,000 rows).
    number = (
        sa.func.unnest(sa.bindparam("numbers", list(numbers), type_=ARRAY(sa.String)))
        .table_valued("value")
        .render_derived()
    )
    reference = (
        sa.select(Case.reference)
        .where(Case.client_id == client.id, Case.open_account_number == number.c.value)
        .limit(1)
        .lateral()
    )
    query = sa.select(number.c.value, reference.c.reference).join(reference, sa.true())
    # psycopg 3 prepares a statement from its 5th run; plan this one for its values.
    with _planned(session, plan_cache_mode="force_custom_plan"):
        return dict(session.execute(query).all())


@contextlib.contextmanager
def _planned(session: Session, **settings: str) -> Iterator[None]:
    """PostgreSQL planner settings for the statements inside only (elsewhere nothing)."""
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    # One round trip each way (several statements in one, as the driver allows without
    # parameters); the names and values are ours, never the file's.
    session.execute(sa.text("; ".join(f"SET LOCAL {n} = {v}" for n, v in settings.items())))
    try:
        yield
    finally:
        session.execute(sa.text("; ".join(f"SET LOCAL {n} = DEFAULT" for n in settings)))


def _checked(
    session: Session, client: Client, rows: Iterable[ReferralRow | Rejection]
) -> Iterator[list[ReferralRow | Rejection]]:
    """Chunks of parse results, with rows that match an open case of the client rejected."""
    for chunk in _read_ahead(rows):
        numbers = [r.account_number for r in chunk if isinstance(r, ReferralRow)]
        open_cases = _open_account_numbers(session, client, numbers) if numbers else {}
        yield [
            Rejection(
                r.row,
                "account_number",
                f"account_number {r.account_number} is already open as case "
                f"{open_cases[r.account_number]}",
            )
            if isinstance(r, ReferralRow) and r.account_number in open_cases
            else r
            for r in chunk
        ]


def check_file(
    session: Session,
    client: Client,
    data: Source,
    filename: str,
    *,
    as_of: dt.date,
    mapping: dict[str, str],
    early_out_attested: bool = False,
) -> tuple[int, int, list[dict], list[int]]:
    """(rows, accepted, rejections, accepted rows itemised from their due date) for a file;
    raises FileRefused for a bad file."""
    results = parse(
        data,
        filename,
        as_of=as_of,
        min_age_days=client.min_age_days,
        mapping=mapping,
        early_out_attested=early_out_attested,
    )
    accepted = total = 0
    rejected: list[dict] = []
    due_date_itemized: list[int] = []
    for chunk in _checked(session, client, results):
        for result in chunk:
            total += 1
            if isinstance(result, Rejection):
                rejected.append(_rejection(result))
            else:
                accepted += 1
                if not result.itemization_date_given:
                    due_date_itemized.append(result.row)
    return total, accepted, rejected, due_date_itemized


def preview(
    session: Session,
    client: Client,
    data: Source,
    filename: str,
    *,
    as_of: dt.date,
    actor: audit.Actor,
    source: str = "upload",
    mapping: dict[str, str] | None = None,
    early_out_attested: bool = False,
    document: Document | None = None,
) -> ReferralBatch:
    """Check a file and record what importing it would do; nothing is imported yet.

    `document` is the file as kept in the document store (`data` opens it); without it, `data`
    must be bytes, kept in the batch. Raises FileRefused when the file as a whole cannot be used
    (and records nothing).
    """
    mapping = mapping if mapping is not None else client.header_mapping
    total, accepted, rejected, due_date_itemized = check_file(
        session,
        client,
        data,
        filename,
        as_of=as_of,
        mapping=mapping,
        early_out_attested=early_out_attested,
    )
    batch = ReferralBatch(
        client_id=client.id,
        uploaded_by_id=actor.user_id,
        source=source,
        filename=filename[:255],
        **_file_fields(data, document),
        mapping=mapping or {},
        as_of=as_of,
        status="previewed",
        total_rows=total,
        accepted_count=accepted,
        rejected=rejected,
        due_date_itemized_rows=due_date_itemized,
        early_out_attested_at=utcnow() if early_out_attested else None,
    )
    session.add(batch)
    session.flush()
    audit.record(
        session,
        actor,
        "referral_batch",
        batch.id,
        "referral.previewed",
        client=client.code,
        filename=filename,
        rows=total,
        accepted=accepted,
        rejected=len(rejected),
    )
    return batch


def hold_for_mapping(
    session: Session,
    client: Client,
    data: Source,
    filename: str,
    *,
    as_of: dt.date,
    actor: audit.Actor,
    early_out_attested: bool = False,
    document: Document | None = None,
) -> ReferralBatch:
    """Keep a readable file whose columns need mapping to ours before it can be checked."""
    batch = ReferralBatch(
        client_id=client.id,
        uploaded_by_id=actor.user_id,
        source="upload",
        filename=filename[:255],
        **_file_fields(data, document),
        mapping={},
        as_of=as_of,
        status="mapping",
        early_out_attested_at=utcnow() if early_out_attested else None,
    )
    session.add(batch)
    session.flush()
    return batch


def apply_mapping(
    session: Session,
    batch: ReferralBatch,
    mapping: dict[str, str],
    *,
    actor: audit.Actor,
    source: Source | None = None,
) -> None:
    """Check a held file with a column mapping, and remember the mapping for the client.

    Raises FileRefused (changing nothing) when the mapping still leaves the file unusable.
    """
    client = batch.client
    mapping = {theirs: ours for theirs, ours in mapping.items() if ours}
    total, accepted, rejected, due_date_itemized = check_file(
        session,
        client,
        batch_source(batch, source),
        batch.filename,
        as_of=batch.as_of,
        mapping=mapping,
        early_out_attested=batch.early_out_attested_at is not None,
    )
    batch.mapping = mapping
    batch.status = "previewed"
    batch.total_rows, batch.accepted_count, batch.rejected = total, accepted, rejected
    batch.due_date_itemized_rows = due_date_itemized
    if client.header_mapping != mapping:
        client.header_mapping = mapping
        audit.record(
            session, actor, "client", client.id, "client.header_mapping_saved", mapping=mapping
        )
    audit.record(
        session,
        actor,
        "referral_batch",
        batch.id,
        "referral.previewed",
        rows=total,
        accepted=accepted,
        rejected=len(rejected),
    )


def cancel(session: Session, batch: ReferralBatch, *, actor: audit.Actor) -> None:
    if batch.status not in ("previewed", "mapping"):
        raise ValueError(f"this file is already {batch.status}")
    batch.status = "cancelled"
    audit.record(session, actor, "referral_batch", batch.id, "referral.cancelled")


def confirm(session: Session, batch: ReferralBatch, *, actor: audit.Actor) -> None:
    """Queue a previewed batch for import (it runs after the commit, in the background)."""
    if batch.status != "previewed":
        raise ValueError(f"this file is already {batch.status}")
    batch.status = "queued"
    audit.record(session, actor, "referral_batch", batch.id, "referral.confirmed")
    enqueue(session, IMPORT, batch.id)


def import_confirmed(
    session: Session, batch_id: int, source: Callable[[ReferralBatch], Source | None]
) -> None:
    """The background job's work (its handler is shell.referral_store's, which knows where the
    document store is): import a confirmed batch, reporting progress as it goes. `source` gives
    the batch's file (None: the batch's own `content`)."""
    batch = session.get(ReferralBatch, batch_id)
    if batch is None or batch.status not in ("queued", "importing"):
        return  # already done (a retried or duplicated job imports nothing twice)
    run_import(
        session,
        batch,
        actor=audit.Actor(batch.uploaded_by_id, "import"),
        progress=separate_progress(session, batch.id),
        source=source(batch),
        keep_references=False,
    )


def separate_progress(session: Session, batch_id: int) -> Progress | None:
    """Progress written on its own connection, so the page sees it while the import's single
    transaction is still open. SQLite allows one writer at a time, so there it is not shown."""
    bind = session.get_bind()
    engine = bind.engine if isinstance(bind, sa.Connection) else bind
    if engine.dialect.name == "sqlite":
        return None

    def report(done: int, total: int) -> None:
        with engine.begin() as connection:
            connection.execute(
                sa.update(ReferralBatch)
                .where(ReferralBatch.id == batch_id)
                .values(processed_rows=done, status="importing")
            )

    return report


def run_import(
    session: Session,
    batch: ReferralBatch,
    *,
    actor: audit.Actor,
    progress: Progress | None = None,
    source: Source | None = None,
    keep_references: bool = True,
) -> ImportResult:
    """Import a batch in the caller's transaction: every accepted row opens a case in `new`.

    Rows are re-checked against open cases now (another batch may have opened some since the
    preview); the batch's counts are those of this import. The file is read as a stream, a
    chunk of rows at a time. `keep_references=False` (the background job, whose result nobody
    reads) leaves the result's `cases` empty rather than holding a reference per row.
    """
    client = batch.client
    results = parse(
        batch_source(batch, source),
        batch.filename,
        as_of=batch.as_of,
        min_age_days=client.min_age_days,
        mapping=batch.mapping,
        early_out_attested=batch.early_out_attested_at is not None,
    )
    return _import_rows(session, batch, results, actor, progress, keep_references)


def _import_rows(
    session: Session,
    batch: ReferralBatch,
    results: Iterable[ReferralRow | Rejection],
    actor: audit.Actor,
    progress: Progress | None,
    keep_references: bool,
) -> ImportResult:
    client = batch.client
    outcome = ImportResult()
    done = 0
    opened = _Runs()
    for chunk in _checked(session, client, results):
        rows = [r for r in chunk if isinstance(r, ReferralRow)]
        outcome.rejected.extend(_rejection(r) for r in chunk if isinstance(r, Rejection))
        references = _open_cases(session, client, batch, rows, actor, opened)
        outcome.accepted += len(references)
        if keep_references:
            outcome.cases.extend(references)
        done += len(chunk)
        if progress:
            progress(done, batch.total_rows or done)
    for first, last in opened.runs:
        report_totals.attach_run(session, first, last)
    batch.total_rows = done
    batch.processed_rows = done
    batch.accepted_count = outcome.accepted
    batch.rejected = outcome.rejected
    batch.status = "imported"
    batch.finished_at = utcnow()
    audit.record(
        session,
        actor,
        "referral_batch",
        batch.id,
        "referral.imported",
        client=client.code,
        accepted=outcome.accepted,
        rejected=len(outcome.rejected),
    )
    return outcome


def import_file(
    session: Session,
    client: Client,
    data: Source,
    filename: str,
    *,
    as_of: dt.date,
    actor: audit.Actor,
    source: str,
    dry_run: bool = False,
    progress: Progress | None = None,
    early_out_attested: bool = False,
    document: Document | None = None,
    keep_references: bool = True,
) -> ImportResult:
    """Check and import in one pass (the CLI and the API). Raises FileRefused for a bad file.

    `document` is the file as kept in the document store (`data` opens it); without it, `data`
    must be bytes, kept in the batch. A dry run records the batch as a preview that was never
    confirmed.
    """
    if dry_run:
        batch = preview(
            session,
            client,
            data,
            filename,
            as_of=as_of,
            actor=actor,
            source=source,
            early_out_attested=early_out_attested,
            document=document,
        )
        batch.status = "cancelled"
        return ImportResult(accepted=batch.accepted_count, rejected=batch.rejected)
    mapping = client.header_mapping or {}
    # Refuses a bad file before anything is recorded; a CSV's syntax pass counts its lines.
    lines, results = parse_counted(
        data,
        filename,
        as_of=as_of,
        min_age_days=client.min_age_days,
        mapping=mapping,
        early_out_attested=early_out_attested,
    )
    if lines is None:  # a workbook: counting its rows is cheap next to checking them
        _, rows = raw_rows(data, filename)
        lines = sum(1 for _ in rows)
    batch = ReferralBatch(
        client_id=client.id,
        uploaded_by_id=actor.user_id,
        source=source,
        filename=filename[:255],
        **_file_fields(data, document),
        mapping=mapping,
        as_of=as_of,
        status="importing",
        total_rows=lines,  # sizes the progress bar
        early_out_attested_at=utcnow() if early_out_attested else None,
    )
    session.add(batch)
    session.flush()
    return _import_rows(session, batch, results, actor, progress, keep_references)


# --- opening cases in bulk ---------------------------------------------------------------------


def _debtor_name(row: ReferralRow) -> str:
    if row.debtor_type == "commercial":
        return row.company_name
    return f"{row.first_name} {row.last_name}"


def _same_debtors(session: Session, keys: list[str], rows: list[ReferralRow]) -> list[int | None]:
    """For each row, the first debtor on file (lowest id) with its match key and a phone or
    email in common (either of the row's two against any of the debtor's), or None."""
    points = [[p for p in (row.phone, row.email) if p] for row in rows]
    if session.get_bind().dialect.name != "postgresql":
        known = _known_debtors(session, set(keys))
        return [
            next((d for d, theirs in known.get(key, []) if theirs.intersection(mine)), None)
            for key, mine in zip(keys, points, strict=True)
        ]
    # Matched in the database: it sends back a row per match, not every debtor under the
    # chunk's keys with all their phones and emails to be compared here (by the end of a
    # million-row import some 17 debtors a key: 50,000 rows a chunk to read and turn into sets).
    array = ARRAY(sa.String)
    given = (
        sa.func.unnest(
            sa.bindparam("keys", keys, type_=array),
            sa.bindparam("firsts", [mine[0] if mine else None for mine in points], type_=array),
            sa.bindparam(
                "seconds", [mine[1] if len(mine) > 1 else None for mine in points], type_=array
            ),
        )
        .table_valued("key", "first", "second", with_ordinality="position")
        .render_derived()
    )
    mine = (given.c.first, given.c.second)
    query = (
        sa.select(given.c.position, Debtor.id)
        .join(Debtor, Debtor.match_key == given.c.key)
        .where(
            sa.or_(
                sa.exists().where(Phone.debtor_id == Debtor.id, Phone.number.in_(mine)),
                sa.exists().where(Email.debtor_id == Debtor.id, Email.address.in_(mine)),
            )
        )
    )
    same: list[int | None] = [None] * len(rows)
    # Each row's key looked up in the index (a nested loop): without statistics for the
    # debtors the import has inserted, PostgreSQL otherwise hashes the chunk and reads every
    # debtor (180 ms a chunk at 50,000 debtors, growing).
    with _planned(
        session,
        enable_seqscan="off",
        enable_hashjoin="off",
        enable_mergejoin="off",
        plan_cache_mode="force_custom_plan",
        max_parallel_workers_per_gather="0",
    ):
        for position, debtor_id in session.execute(query):
            earlier = same[position - 1]
            same[position - 1] = debtor_id if earlier is None else min(earlier, debtor_id)
    return same


def _known_debtors(session: Session, keys: set[str]) -> dict[str, list[tuple[int, set[str]]]]:
    """Debtors already on file under these match keys, with their phones and emails."""
    if not keys:
        return {}
    # Three lookups by an indexed column each (debtors by match key, then their phones and
    # emails by debtor id), planned for their values, without parallel workers. One query
    # joining the three left the planner, with no statistics for the rows a big import has
    # just inserted in its transaction, choosing plans that grew with every chunk: 15 s a
    # chunk at 200,000 debtors (docs/benchmarks.md, "Referral import of a million rows").
    with _planned(
        session,
        enable_seqscan="off",
        plan_cache_mode="force_custom_plan",
        max_parallel_workers_per_gather="0",
    ):
        debtors = session.execute(
            sa.select(Debtor.match_key, Debtor.id)
            .where(_among(session, Debtor.match_key, keys))
            .order_by(Debtor.id)
        ).all()
        points: dict[int, set[str]] = {debtor_id: set() for _, debtor_id in debtors}
        ids = list(points)
        for start in range(0, len(ids), _LOOKUP_IDS):
            some = ids[start : start + _LOOKUP_IDS]
            for column, owner in (
                (Phone.number, Phone.debtor_id),
                (Email.address, Email.debtor_id),
            ):
                found = sa.select(owner, column).where(_among(session, owner, some))
                for debtor_id, point in session.execute(found):
                    if point:
                        points[debtor_id].add(point)
    known: dict[str, list[tuple[int, set[str]]]] = {}
    for key, debtor_id in debtors:
        known.setdefault(key, []).append((debtor_id, points[debtor_id]))
    return known


_LOOKUP_IDS = 5000  # ids per lookup: SQLite binds each one (at most 32,766 a statement)


class _Runs:
    """The ids of the cases an import opened, as runs of consecutive ids, so that the reports'
    totals take them once at the end: a few statements for the whole file, not four a chunk.
    A chunk whose ids are not one run (another import took ids between) is added at once."""

    def __init__(self) -> None:
        self.runs: list[list[int]] = []

    def add(self, session: Session, case_ids: list[int]) -> None:
        if not case_ids:
            return
        first, last = case_ids[0], case_ids[-1]
        if last - first + 1 != len(case_ids):
            report_totals.attach(session, case_ids)
        elif self.runs and self.runs[-1][1] + 1 == first:
            self.runs[-1][1] = last
        else:
            self.runs.append([first, last])


def _open_cases(
    session: Session,
    client: Client,
    batch: ReferralBatch,
    rows: list[ReferralRow],
    actor: audit.Actor,
    opened: _Runs,
) -> list[str]:
    """Open one case per row with bulk inserts (this is the hot path of a 100k-row file)."""
    if not rows:
        return []
    keys = [match_key(r.debtor_type, _debtor_name(r), r.postal_code) for r in rows]
    same = _same_debtors(session, keys, rows)
    debtor_ids: list[int | None] = []
    new_debtors: list[dict] = []
    new_rows: list[ReferralRow] = []
    in_batch: dict[tuple[str, str], int] = {}  # (match key, contact point) -> new-debtor index
    pending: list[tuple[int, int]] = []  # (row index, new-debtor index)
    for index, (key, row, match) in enumerate(zip(keys, rows, same, strict=True)):
        points = {p for p in (row.phone, row.email) if p}
        # The same debtor: same normalised name and ZIP, and a phone or email in common.
        if match is None:
            earlier = next((in_batch[(key, p)] for p in points if (key, p) in in_batch), None)
            if earlier is None:
                earlier = len(new_debtors)
                new_debtors.append(
                    {
                        "kind": row.debtor_type,
                        "first_name": row.first_name,
                        "last_name": row.last_name,
                        "company_name": row.company_name,
                        "match_key": key,
                        "language": "en",
                        "situation": "unknown",
                        "inconvenient_times": [],
                        "monthly_statements": False,
                        "created_at": utcnow(),
                    }
                )
                new_rows.append(row)
            for point in points:
                in_batch.setdefault((key, point), earlier)
            pending.append((index, earlier))
        debtor_ids.append(match)

    new_ids = _new_ids(session, Debtor, len(new_debtors))
    debtors = zip(new_ids, new_debtors, strict=True)
    _insert_rows(session, Debtor, [{"id": debtor_id} | debtor for debtor_id, debtor in debtors])
    for index, new_index in pending:
        debtor_ids[index] = new_ids[new_index]
    _insert_contact_points(session, list(zip(new_ids, new_rows, strict=True)))

    # A debtor already known who asked for monthly statements gets them on the new case too
    # (what Case's before_insert hook does on the ORM's path).
    matched = sorted(set(debtor_ids) - set(new_ids))
    wants_statements: set[int] = set()
    for start in range(0, len(matched), _LOOKUP_IDS):
        wants_statements.update(
            session.scalars(
                sa.select(Debtor.id).where(
                    Debtor.id.in_(matched[start : start + _LOOKUP_IDS]), Debtor.monthly_statements
                )
            )
        )
    references = next_references(session, batch.as_of, len(rows))
    case_ids = _new_ids(session, Case, len(rows))
    now = utcnow()
    cases = zip(case_ids, references, debtor_ids, rows, strict=True)
    _insert_rows(
        session,
        Case,
        [
            {
                "id": case_id,
                "reference": reference,
                "client_id": client.id,
                "debtor_id": debtor_id,
                "batch_id": batch.id,
                "batch_row": row.row,
                "account_number": row.account_number,
                "open_account_number": row.account_number,
                "status": "new",
                "program": row.program,
                "early_out_placed_on": batch.as_of if row.program == "early_out" else None,
                "early_out_converts": True,
                "referred_on": batch.as_of,
                "due_date": row.due_date,
                "itemization_date": row.itemization_date,
                "itemization_date_type": row.itemization_date_type,
                "amount_on_itemization_date_cents": row.amount_on_itemization_date,
                "interest_since_itemization_cents": row.interest_since_itemization_cents,
                "fees_since_itemization_cents": row.fees_since_itemization_cents,
                "payments_since_itemization_cents": row.payments_since_itemization_cents,
                "credits_since_itemization_cents": row.credits_since_itemization_cents,
                "days_past_due_at_referral": (batch.as_of - row.due_date).days,
                "last_payment_date": row.last_payment_date,
                "invoice_number": row.invoice_number,
                "service_description": row.service_description,
                "debt_kind": row.debt_kind,
                "original_creditor_name": row.original_creditor_name,
                "original_creditor_address": row.original_creditor_address,
                "in_legal": False,
                "status_changed_at": now,
                "created_at": now,
                "stamp": new_stamp(),
                "search_text": search_text_of(
                    reference, row.account_number, row.first_name, row.last_name, row.company_name
                ),
                "statement_month": STATEMENT_NONE_YET if debtor_id in wants_statements else None,
            }
            for case_id, reference, debtor_id, row in cases
        ],
    )
    placements = [
        {
            "case_id": case_id,
            "kind": "placement",
            "component": component,
            "amount_cents": amount,
            "fee_bps": 0,
            "fee_cents": 0,
            "external_id": f"placement:{reference}:{component}",
            "received_at": row.itemization_date,
            "created_at": now,
        }
        for case_id, reference, row in zip(case_ids, references, rows, strict=True)
        for component, amount in (
            ("principal", row.principal_cents),
            ("interest", row.interest_cents),
            ("fees", row.fees_cents),
        )
        if amount
    ]
    _insert_rows(session, LedgerEntry, placements)
    opened.add(session, case_ids)  # the reports' totals (the ORM's flush is bypassed)
    events = [
        {
            "at": now,
            "actor_user_id": actor.user_id,
            "actor_label": actor.label,
            "entity_type": "case",
            "entity_id": str(case_id),
            "case_id": case_id,
            "action": "case.opened",
            "reason": None,
            "detail": {
                "reference": reference,
                "batch": batch.id,
                "row": row.row,
                "account_number": row.account_number,
            },
        }
        for case_id, reference, row in zip(case_ids, references, rows, strict=True)
    ]
    _insert_rows(session, audit.AuditEvent, events)
    return references


def _insert_contact_points(session: Session, debtors: list[tuple[int, ReferralRow]]) -> None:
    addresses = [
        {
            "debtor_id": debtor_id,
            "line1": row.address_line1,
            "line2": row.address_line2,
            "city": row.city,
            "state": row.state,
            "postal_code": row.postal_code,
        }
        for debtor_id, row in debtors
    ]
    _insert_rows(session, Address, addresses)
    phones = [
        {"debtor_id": debtor_id, "number": row.phone, "type": "other", "text_consent": False}
        for debtor_id, row in debtors
        if row.phone
    ]
    _insert_rows(session, Phone, phones)
    emails = [
        {"debtor_id": debtor_id, "address": row.email, "consent": True}
        for debtor_id, row in debtors
        if row.email
    ]
    _insert_rows(session, Email, emails)


# No INSERT needs RETURNING: the rows that others point to (debtors, cases) go in with ids taken
# beforehand, the rest take theirs from the database. COPY on PostgreSQL (the fastest way in),
# a plain executemany elsewhere. See docs/benchmarks.md, "Referral import".


def _new_ids(session: Session, model: type[Base], count: int) -> list[int]:
    """`count` ids for new rows of the model's table, in ascending order."""
    if not count:
        return []
    table = model.__table__
    if session.get_bind().dialect.name == "postgresql":
        # The sequence's name resolved once (an InitPlan), not once per id.
        sequence = sa.select(sa.func.pg_get_serial_sequence(table.name, "id")).scalar_subquery()
        taken = sa.func.array_agg(sa.func.nextval(sa.cast(sequence, REGCLASS)))
        return sorted(
            session.scalar(sa.select(taken).select_from(sa.func.generate_series(1, count)))
        )
    # SQLite: the transaction holds the write lock from its start (BEGIN IMMEDIATE, see
    # agency._sqlite_pragmas), so no one else takes ids meanwhile; max + 1 is SQLite's own rule.
    last = session.scalar(sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0)))
    return list(range(last + 1, last + 1 + count))


def _insert_rows(session: Session, model: type[Base], rows: list[dict]) -> None:
    """Insert rows that all have the same keys, ids included."""
    if not rows:
        return
    table = model.__table__
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name != "postgresql":
        connection.execute(sa.insert(table), rows)
        return
    columns = [table.c[name] for name in rows[0]]
    # COPY skips what an INSERT statement would have done on the client: the columns' Python
    # defaults (so every row must name those) and their bind processing (applied here).
    unset = [c.name for c in table.c if c.default is not None and c.name not in rows[0]]
    if unset:
        raise ValueError(f"rows for {table.name} leave out {', '.join(unset)}")
    binds = [
        (column.name, column.type.dialect_impl(dialect).bind_processor(dialect))
        for column in columns
    ]
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(sql.Identifier(c.name) for c in columns)
    )
    cursor = connection.connection.driver_connection.cursor()
    with cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row([bind(row[name]) if bind else row[name] for name, bind in binds])
