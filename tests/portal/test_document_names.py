"""The portal shows a debtor's documents whatever their names (RFC 6266 / 5987 headers)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from cases import audit
from cases.audit import AuditEvent
from cases.case import change_status
from cases.documents import Document
from shell.document_store import store

ACTOR = audit.Actor(None, "test")
PDF = b"%PDF-1.4 notice"


@pytest.mark.parametrize(
    ("name", "fallback", "encoded"),
    [
        ("factura–enero.pdf", "factura_enero.pdf", "factura%E2%80%93enero.pdf"),
        ("报告.pdf", "document.pdf", "%E6%8A%A5%E5%91%8A.pdf"),
        ('a"b.pdf', "a_b.pdf", "a%22b.pdf"),
        ("line\r\nbreak.pdf", "line__break.pdf", "line%0D%0Abreak.pdf"),
        ("back\\slash%20.pdf", "back_slash_20.pdf", "back%5Cslash%2520.pdf"),
        ("aviso-de-validación.pdf", "aviso-de-validacion.pdf", "aviso-de-validaci%C3%B3n.pdf"),
    ],
)
def test_a_notice_with_any_name_is_shown(
    db_session, signed_in, make_client, make_case, name, fallback, encoded
):
    case = make_case(make_client())
    change_status(db_session, case, "active", actor=ACTOR, reason="notice sent")
    case.validation_period_ends_on = dt.date(2026, 12, 10)
    notice = store(
        PDF,
        filename=name,
        content_type="application/pdf",
        kind="validation_notice",
        case_id=case.id,
        debtor_id=case.debtor_id,
    )
    assert notice.storage_key.endswith(".pdf")
    client = signed_in(case)
    before = (
        db_session.scalar(sa.select(sa.func.count(Document.id))),
        db_session.scalar(sa.select(sa.func.count(AuditEvent.id))),
    )
    response = client.get(f"/portal/cases/{case.reference}/validation-notice/{notice.id}")
    assert response.status_code == 200
    assert response.data == PDF and response.mimetype == "application/pdf"
    disposition = response.headers["Content-Disposition"]
    disposition.encode("ascii")
    assert disposition == f"inline; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
    after = (
        db_session.scalar(sa.select(sa.func.count(Document.id))),
        db_session.scalar(sa.select(sa.func.count(AuditEvent.id))),
    )
    assert after == before
