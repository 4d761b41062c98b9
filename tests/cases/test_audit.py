"""The audit trail's writers write one row shape: `record` (an ORM object), and through the
table `insert_rows` of `row`s, or of `values` made a row by `about` (what `insert_from` binds
inside a posting's one statement)."""

from __future__ import annotations

import sqlalchemy as sa

from bench.common import statements_run
from cases import audit
from cases.audit import AuditEvent
from shell.extensions import db


def shape(event: AuditEvent) -> tuple:
    return (
        event.actor_user_id,
        event.actor_label,
        event.entity_type,
        event.entity_id,
        event.case_id,
        event.action,
        event.reason,
        event.detail,
    )


def test_every_writer_writes_the_row_record_writes(db_session, make_client, make_case):
    case = make_case(make_client())
    actor = audit.Actor(None, "stripe")
    said = {"amount_cents": 1_250, "external_id": "pi_1"}
    recorded = audit.record(
        db_session, actor, "ledger_entry", 7, "payment.posted", case_id=case.id, **said
    )
    db_session.flush()
    rows = [
        audit.row(actor, "ledger_entry", 7, "payment.posted", case_id=case.id, **said),
        audit.about(audit.values(actor, "payment.posted", **said), "ledger_entry", 7, case.id),
    ]
    assert rows[0].keys() == rows[1].keys()
    with statements_run(db.engine) as seen:
        audit.insert_rows(db_session, rows)
    assert len(seen) == 1  # both rows in one INSERT
    written = db_session.scalars(
        sa.select(AuditEvent).where(AuditEvent.case_id == case.id).order_by(AuditEvent.id)
    ).all()
    written = [e for e in written if e.action == "payment.posted"]
    assert len(written) == 3
    assert [shape(e) for e in written] == [shape(recorded)] * 3
    assert shape(recorded) == (
        None,
        "stripe",
        "ledger_entry",
        "7",
        case.id,
        "payment.posted",
        None,
        said,
    )
    assert all(e.at is not None for e in written)


def test_a_reason_and_no_case_are_kept_as_record_keeps_them(db_session):
    audit.insert_rows(
        db_session,
        [audit.row(audit.SYSTEM, "installment", 3, "installment.failed", reason="declined")],
    )
    event = db_session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "installment.failed")
    ).one()
    assert (event.case_id, event.reason, event.detail, event.entity_id) == (
        None,
        "declined",
        {},
        "3",
    )


def test_no_rows_write_nothing(db_session):
    with statements_run(db.engine) as seen:
        audit.insert_rows(db_session, [])
    assert seen == []
