"""Clients: the creditor businesses that refer accounts, and their collection terms."""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from cases import audit
from cases.model import Base, Timestamped, new_stamp

CODE_RE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{1,19}$")


class Client(Timestamped, Base):
    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(20), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    min_age_days: Mapped[int] = mapped_column(default=90)
    # Settlement floor as a share of the balance, in basis points (7000 = 70%).
    min_settlement_bps: Mapped[int] = mapped_column(default=7000)
    max_plan_months: Mapped[int] = mapped_column(default=12)
    # The client's own referral-file header names mapped to ours (remembered per client).
    header_mapping: Mapped[dict[str, str]] = mapped_column(default=dict)
    active: Mapped[bool] = mapped_column(default=True)
    # Changes with the client's name, terms and discount bands (cases/stamps.py).
    stamp: Mapped[int] = mapped_column(sa.BigInteger, default=new_stamp, server_default="0")

    def __repr__(self) -> str:
        return f"<Client {self.code}>"


class ClientError(ValueError):
    """A client's settings were refused; the message says why."""


def validate_terms(*, min_age_days: int, min_settlement_bps: int, max_plan_months: int) -> None:
    if not 0 <= min_age_days <= 3650:
        raise ClientError("minimum age must be between 0 and 3650 days")
    if not 1 <= min_settlement_bps <= 10000:
        raise ClientError("settlement floor must be between 0.01% and 100%")
    if not 1 <= max_plan_months <= 120:
        raise ClientError("maximum plan length must be between 1 and 120 months")


def create_client(
    session: Session,
    code: str,
    name: str,
    *,
    actor: audit.Actor,
    min_age_days: int = 90,
    min_settlement_bps: int = 7000,
    max_plan_months: int = 12,
) -> Client:
    code = code.strip().upper()
    name = name.strip()
    if not CODE_RE.match(code):
        raise ClientError(
            "code must be 2-20 letters, digits, '-' or '_', starting with a letter or digit"
        )
    if not name:
        raise ClientError("name is required")
    validate_terms(
        min_age_days=min_age_days,
        min_settlement_bps=min_settlement_bps,
        max_plan_months=max_plan_months,
    )
    if session.scalar(sa.select(Client.id).where(Client.code == code)) is not None:
        raise ClientError(f"a client with code {code} already exists")
    client = Client(
        code=code,
        name=name,
        min_age_days=min_age_days,
        min_settlement_bps=min_settlement_bps,
        max_plan_months=max_plan_months,
    )
    session.add(client)
    session.flush()
    audit.record(session, actor, "client", client.id, "client.created", code=code, name=name)
    return client


def update_client(session: Session, client: Client, *, actor: audit.Actor, **changes) -> Client:
    merged = {
        "min_age_days": client.min_age_days,
        "min_settlement_bps": client.min_settlement_bps,
        "max_plan_months": client.max_plan_months,
    }
    merged.update({k: v for k, v in changes.items() if k in merged})
    validate_terms(**merged)
    if "name" in changes and not str(changes["name"]).strip():
        raise ClientError("name is required")
    before = {}
    for key, value in changes.items():
        if getattr(client, key) != value:
            before[key] = [getattr(client, key), value]
            setattr(client, key, value)
    if before:
        audit.record(session, actor, "client", client.id, "client.updated", changes=before)
    return client


def client_by_code(session: Session, code: str) -> Client | None:
    return session.scalar(sa.select(Client).where(Client.code == code.strip().upper()))
