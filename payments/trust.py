"""The trust view: per client, money collected, fees earned, remitted and still to remit."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from cases.case import Case
from cases.clients import Client
from cases.ledger import LedgerEntry, cents_sum
from payments.remittance import LateRemittance, Remittance, late_remittances
from payments.statements import Statement


@dataclass
class TrustLine:
    client: Client
    collected_by_agency: int = 0  # payments to the agency less their reversals
    collected_by_client: int = 0  # direct payments less their reversals
    fees: int = 0  # earned on both, less fees given back
    remitted: int = 0  # settled on statements (paid to the client, less received from it)
    late: list[LateRemittance] = field(default_factory=list)  # > 30 days after month end

    @property
    def to_remit(self) -> int:
        """What the agency holds for the client: its collections less all fees, less what was
        already remitted. Negative: the client owes the agency (fees on direct payments)."""
        return self.collected_by_agency - self.fees - self.remitted


def trust_lines(session: Session, today: dt.date | None = None) -> list[TrustLine]:
    """Per client; with `today`, also the statements settled late or still overdue."""
    original = aliased(LedgerEntry)
    kind = sa.func.coalesce(original.kind, LedgerEntry.kind)
    rows = session.execute(
        sa.select(
            Case.client_id,
            kind,
            cents_sum(LedgerEntry.amount_cents),
            cents_sum(LedgerEntry.fee_cents),
        )
        .join(Case, Case.id == LedgerEntry.case_id)
        .outerjoin(original, original.id == LedgerEntry.reverses_id)
        .where(LedgerEntry.kind.in_(("payment", "direct_payment", "reversal")))
        .group_by(Case.client_id, kind)
    ).all()
    lines = {c.id: TrustLine(c) for c in session.scalars(sa.select(Client).order_by(Client.code))}
    for client_id, money_kind, amount, fee in rows:
        line = lines[client_id]
        if money_kind == "payment":
            line.collected_by_agency += -amount
        else:
            line.collected_by_client += -amount
        line.fees += fee
    remitted = session.execute(
        sa.select(Statement.client_id, cents_sum(Remittance.amount_cents))
        .join(Statement, Statement.id == Remittance.statement_id)
        .group_by(Statement.client_id)
    ).all()
    for client_id, amount in remitted:
        lines[client_id].remitted = amount
    if today is not None:
        for client_id, late in late_remittances(session, today).items():
            lines[client_id].late = late
    return list(lines.values())
