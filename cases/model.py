"""The declarative base every model shares, and the column types the domain relies on."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, registry

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_stamp() -> int:
    """A fresh version stamp (cases/stamps.py): random, so that no two versions of a row share
    one, even across a restored database or rolled-back test transactions."""
    return secrets.randbits(62)


def utcnow() -> dt.datetime:
    """The current time, timezone-aware in UTC (time-machine freezes it in tests)."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(sa.types.TypeDecorator):
    """A timezone-aware UTC time stamp on every database, SQLite included.

    SQLite has no time zones: values are stored as naive UTC and made aware on the way out.
    Naive values are refused so that a local time can never be stored by mistake.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: pass a timezone-aware value")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    registry = registry(
        metadata=sa.MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={
            dt.datetime: UTCDateTime,
            dict[str, Any]: sa.JSON,
            dict[str, str]: sa.JSON,
            list[dict]: sa.JSON,
        },
    )


class Timestamped:
    """Adds `created_at`, set once when the row is inserted."""

    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
