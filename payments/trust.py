"""The trust view: per client, money collected, fees earned, remitted and still to remit."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from cases.case import Case
from cases.clients import Client
from cases.ledger import LedgerEntry, cents_sum


@dataclass
class TrustLine:
    client: Client
    collected_by_agency: int = 0  # payments to the agency less their reversals
    collected_by_client: int = 0  # direct payments less their reversals
    fees: int = 0  # earned on both, less fees given back
    remitted: int = 0  # paid out to the client (statements record remittances)

    @property
    def to_remit(self) -> int:
        """What the agency holds for the client: its collections less all fees, less what was
        already remitted. Negative: the client owes the agency (fees on direct payments)."""
        return self.collected_by_agency - self.fees - self.remitted


def trust_lines(session: Session) -> list[TrustLine]:
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
    return list(lines.values())
