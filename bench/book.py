"""A book of business written by COPY: each table's columns, and the values no benchmark varies,
in one place. A schema change (a new column without a server default, a renamed one) is mended
here, not in every benchmark that fills a book (bench.queue, bench.reports, bench.nightly,
bench.statements; bench.national through bench.queue).

Each table's function takes rows of the columns that benchmarks vary, in the order its docstring
gives, followed by the values of its `extra` columns; keyword arguments are columns with one
value in every row (they replace the function's own constant for that column):

    book.cases(conn, rows, now=now, extra=("assigned_to_id", "close_reason"))
"""

from __future__ import annotations

from contextlib import contextmanager

from bench.common import copy


@contextmanager
def connection(engine):
    """The psycopg connection under one of `engine`'s pooled ones, to COPY with; back to the pool
    after."""
    raw = engine.raw_connection()
    try:
        yield raw.driver_connection
    finally:
        raw.close()


def finish(conn, tables, *, vacuum: bool = True) -> None:
    """After the COPYs: each table's id sequence past its largest id, committed, and the
    planner's statistics (ANALYZE). With `vacuum`, the visibility map too: a live database's
    autovacuum keeps it, a table just filled by COPY has none, and without it no index-only scan
    can skip the heap. The connection is left out of autocommit, fit to serve the app.

    A fill of promises or plans sets their cases' `chase_from` here (cases.chase: the same
    statement the app runs), so no benchmark's book can leave it out."""
    if {"promises_to_pay", "payment_plans"} & set(tables):
        conn.execute(chase_from_statement())
    set_sequences(conn, tables)
    conn.commit()
    conn.autocommit = True
    conn.execute("VACUUM (ANALYZE)" if vacuum else "ANALYZE")
    conn.autocommit = False


DEBTOR = ("id", "first_name", "last_name", "match_key")
CASE = (
    "id",
    "reference",
    "client_id",
    "debtor_id",
    "account_number",
    "open_account_number",
    "status",
    "referred_on",
    "due_date",
    "itemization_date",
    "days_past_due_at_referral",
)
ENTRY = (
    "id",
    "case_id",
    "kind",
    "component",
    "amount_cents",
    "fee_bps",
    "fee_cents",
    "external_id",
    "received_at",
)


def numbered_debtor(i: int) -> tuple:
    """Debtor i of a book whose names do not matter: Pat Name<i>, in 10001."""
    return (i, "Pat", f"Name{i}", f"consumer|pat name{i}|10001")


def debtors(conn, rows, /, *, now, extra=(), **same) -> None:
    """Consumers writing in English, nothing known of their situation: (id, first_name,
    last_name, match_key, *extra)."""
    constants = {
        "kind": "consumer",
        "company_name": "",
        "language": "en",
        "situation": "unknown",
        "inconvenient_times": "[]",
        "created_at": now,
    }
    copy(conn, "debtors", [*DEBTOR, *extra], rows, **constants | same)


def addresses(conn, debtor_ids, place_of, /) -> None:
    """An address for each debtor, with the debtor's id (`<id> Main St`): `place_of(id)` gives
    its (city, state, postal_code)."""
    copy(
        conn,
        "debtor_addresses",
        ["id", "debtor_id", "line1", "city", "state", "postal_code"],
        ((i, i, f"{i} Main St", *place_of(i)) for i in debtor_ids),
        line2="",
    )


def cases(conn, rows, /, *, now, extra=(), **same) -> None:
    """Cases out of legal, their status and row written `now`: (id, reference, client_id,
    debtor_id, account_number, open_account_number, status, referred_on, due_date,
    itemization_date, days_past_due_at_referral, *extra)."""
    constants = {"in_legal": False, "status_changed_at": now, "created_at": now}
    copy(conn, "cases", [*CASE, *extra], rows, **constants | same)


def entries(conn, rows, /, *, now, extra=(), **same) -> None:
    """Ledger entries: (id, case_id, kind, component, amount_cents, fee_bps, fee_cents,
    external_id, received_at, *extra)."""
    copy(conn, "ledger_entries", [*ENTRY, *extra], rows, **{"created_at": now} | same)


def calls(conn, rows, /, *, now, extra=(), **same) -> None:
    """Outbound calls nobody answered: (id, case_id, occurred_at, *extra)."""
    constants = {
        "channel": "call",
        "direction": "outbound",
        "outcome": "no_answer",
        "violations": "[]",
        "created_at": now,
    }
    copy(conn, "contacts", ["id", "case_id", "occurred_at", *extra], rows, **constants | same)


def promises(conn, rows, /, *, extra=(), **same) -> None:
    """Open promises of $50 (give `created_at` in `same` or `extra`): (id, case_id, due_on,
    *extra)."""
    constants = {"amount_cents": 5_000, "status": "open"}
    copy(conn, "promises_to_pay", ["id", "case_id", "due_on", *extra], rows, **constants | same)


def chase_from_statement() -> str:
    """The UPDATE that sets `chase_from` of every case with a promise or plan to chase, as
    PostgreSQL SQL (the app's own statement, cases.chase.refresh_statement)."""
    from sqlalchemy.dialects import postgresql

    import cases.plans  # noqa: F401 (gives cases.chase its models)
    from cases import chase

    statement = chase.refresh_statement(None)
    dialect = postgresql.dialect()
    return str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def set_sequences(conn, tables) -> None:
    """Each table's id sequence after its largest id (COPY wrote the ids itself), so that the
    app's own inserts follow."""
    for table in tables:
        # The table names are our own constants, not input.
        setval = f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
        conn.execute(setval + f"(SELECT coalesce(max(id), 1) FROM {table}))")  # noqa: S608
