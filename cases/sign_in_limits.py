"""The sign-in limit (SPEC §8, §11): whether an attempt may be tried now, the record of every
failure, the addresses each account signs in from, and the alert when one is attacked.

A sign-in names a *subject* (a user's email, a case reference) and comes from an *address*.
`reserve` takes a place for the attempt atomically, before the password or the details are
checked, so that attempts made at the same moment cannot all slip under the limit; then
`succeeded` gives the place back and `failed` keeps it as a failure.

- 5 failures on one subject from one address within 15 minutes refuse that subject from that
  address (until the oldest ages out); a success from there starts it afresh.
- 20 failures from one address within 15 minutes, across subjects, refuse that address.
- Failures on one subject from every address slow it down: from the 5th, each attempt waits a
  delay that doubles with each failure (2 s, 4 s, 8 s, … at most 15 minutes), and failures from
  3 or more addresses raise a sign-in alert for supervisors. The delay never applies to the
  subject's own addresses, those it signed in from successfully within the last 90 days, so
  an attack from elsewhere never locks the owner out.

The counters live in Redis (`RedisCounters`) when there is one, otherwise in the database
(`DatabaseCounters`): shared by every process and machine either way. Failures are always
recorded in the database too (`SignInAttempt`): that is their audit."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import secrets
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from cases.model import Base, Timestamped, utcnow

WINDOW = dt.timedelta(minutes=15)
PER_SUBJECT_AND_ADDRESS = 5
PER_ADDRESS = 20
SLOW_AFTER = 5
MAX_DELAY = 15 * 60  # seconds
ALERT_ADDRESSES = 3
OWN_ADDRESS_FOR = dt.timedelta(days=90)


class SignInAttempt(Base):
    """A failed sign-in: which subject (a case reference, an email), from where, when."""

    __tablename__ = "sign_in_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(300), index=True)
    address: Mapped[str] = mapped_column(sa.String(64), default="", server_default="")
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)

    __table_args__ = (sa.Index("ix_sign_in_attempts_address_at", "address", "at"),)


class SignInAddress(Base):
    """An address a subject signed in from successfully: its owner's own address."""

    __tablename__ = "sign_in_addresses"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(300))
    address: Mapped[str] = mapped_column(sa.String(64))
    last_success_at: Mapped[dt.datetime]

    __table_args__ = (sa.UniqueConstraint("key", "address"),)


class SignInAlert(Timestamped, Base):
    """A subject failing sign-in from several addresses, for a supervisor to look at."""

    __tablename__ = "sign_in_alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(300), index=True)
    failures: Mapped[int]
    addresses: Mapped[int]
    last_failure_at: Mapped[dt.datetime]
    resolved_at: Mapped[dt.datetime | None]
    resolved_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    resolution: Mapped[str | None] = mapped_column(sa.Text)

    @property
    def subject(self) -> str:
        return self.key.split(":", 2)[-1]

    @property
    def scope(self) -> str:
        """Which sign-in: the one named first in the key."""
        return self.key.split(":", 1)[0]


@dataclass(frozen=True)
class Refusal:
    """Why an attempt may not be tried now: `subject` (this subject from this address),
    `address` (this address, whatever it tries) or `slowed` (the subject is under attack and
    this is not one of its own addresses); and in how many seconds to try again."""

    reason: str
    retry_after: int


@dataclass
class Attempt:
    key: str
    scope: str
    address: str
    at: dt.datetime
    counters: Counters
    token: Any = None
    refusal: Refusal | None = None


class Counters(Protocol):
    def take(self, attempt: Attempt, own_address: bool) -> Refusal | None: ...
    def give_back(self, attempt: Attempt) -> None: ...
    def keep(self, attempt: Attempt) -> None: ...


def _ceil_seconds(delta: dt.timedelta | float) -> int:
    seconds = delta.total_seconds() if isinstance(delta, dt.timedelta) else delta
    return max(1, math.ceil(seconds))


def delay(failures: int) -> int:
    """Seconds a subject with this many recent failures waits between attempts (0: none)."""
    if failures < SLOW_AFTER:
        return 0
    return min(2 ** (failures - SLOW_AFTER + 1), MAX_DELAY)


def subject_key(scope: str, kind: str, subject: str) -> str:
    return f"{scope}:{kind}:{subject}"


class DatabaseCounters:
    """The failures table is the counter. The subject's and the address's locks (PostgreSQL
    advisory locks, held to the end of the transaction; SQLite has one writer at a time) make
    count-then-insert atomic."""

    def __init__(self, session: Session):
        self.session = session

    def _lock(self, names: list[str]) -> None:
        if self.session.get_bind().dialect.name != "postgresql":
            return
        for name in sorted(names):  # one order everywhere: no deadlock
            digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
            number = int.from_bytes(digest, signed=True)  # PostgreSQL's bigint
            self.session.execute(sa.select(sa.func.pg_advisory_xact_lock(number)))

    def _times(self, *where) -> list[dt.datetime]:
        return list(
            self.session.scalars(
                sa.select(SignInAttempt.at).where(*where).order_by(SignInAttempt.at)
            )
        )

    def take(self, attempt: Attempt, own_address: bool) -> Refusal | None:
        self._lock([attempt.key, f"{attempt.scope}:ip:{attempt.address}"])
        since = attempt.at - WINDOW
        last_success = self.session.scalar(
            sa.select(SignInAddress.last_success_at).where(
                SignInAddress.key == attempt.key, SignInAddress.address == attempt.address
            )
        )
        pair = self._times(
            SignInAttempt.key == attempt.key,
            SignInAttempt.address == attempt.address,
            SignInAttempt.at > max(since, last_success or since),
        )
        if len(pair) >= PER_SUBJECT_AND_ADDRESS:
            oldest = pair[len(pair) - PER_SUBJECT_AND_ADDRESS]
            return Refusal("subject", _ceil_seconds(oldest + WINDOW - attempt.at))
        address = self._times(
            SignInAttempt.address == attempt.address,
            SignInAttempt.key.startswith(f"{attempt.scope}:", autoescape=True),
            SignInAttempt.at > since,
        )
        if len(address) >= PER_ADDRESS:
            oldest = address[len(address) - PER_ADDRESS]
            return Refusal("address", _ceil_seconds(oldest + WINDOW - attempt.at))
        if not own_address:
            subject = self._times(SignInAttempt.key == attempt.key, SignInAttempt.at > since)
            wait = (
                subject[-1] + dt.timedelta(seconds=delay(len(subject))) - attempt.at
                if subject
                else None
            )
            if wait is not None and wait > dt.timedelta(0):
                return Refusal("slowed", _ceil_seconds(wait))
        row = SignInAttempt(key=attempt.key, address=attempt.address, at=attempt.at)
        self.session.add(row)
        self.session.flush()
        attempt.token = row.id
        return None

    def give_back(self, attempt: Attempt) -> None:
        self.session.execute(sa.delete(SignInAttempt).where(SignInAttempt.id == attempt.token))

    def keep(self, attempt: Attempt) -> None:
        """The reserved row is the failure's record already."""


# Atomic in Redis: drop what aged out, check the three limits, then take a place in each.
_RESERVE = """
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 1, 3 do redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window) end
local function over(key, limit, reason)
  local n = redis.call('ZCARD', key)
  if n < limit then return nil end
  local oldest = redis.call('ZRANGE', key, n - limit, n - limit, 'WITHSCORES')
  return {reason, tostring(tonumber(oldest[2]) + window - now)}
end
local refused = over(KEYS[1], tonumber(ARGV[3]), 'subject') or over(KEYS[2], tonumber(ARGV[4]), 'address')
if refused then return refused end
if ARGV[7] == '0' then
  local n, slow_after = redis.call('ZCARD', KEYS[3]), tonumber(ARGV[5])
  if n >= slow_after then
    local last = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
    local wait = tonumber(last[2]) + math.min(2 ^ (n - slow_after + 1), tonumber(ARGV[6])) - now
    if wait > 0 then return {'slowed', tostring(wait)} end
  end
end
for i = 1, 3 do
  redis.call('ZADD', KEYS[i], now, ARGV[8])
  redis.call('EXPIRE', KEYS[i], window + 60)
end
return {'ok', '0'}
"""


class RedisCounters:
    """Three sorted sets of attempt times (subject from address, address, subject), checked
    and added to in one Lua script. Only the failures' record goes to the database."""

    PREFIX = "signin:"

    def __init__(self, redis: Any, session: Session):
        self.redis = redis
        self.session = session
        self._reserve = redis.register_script(_RESERVE)

    def _keys(self, attempt: Attempt) -> list[str]:
        return [
            f"{self.PREFIX}pair:{attempt.key}|{attempt.address}",
            f"{self.PREFIX}address:{attempt.scope}:{attempt.address}",
            f"{self.PREFIX}subject:{attempt.key}",
        ]

    def take(self, attempt: Attempt, own_address: bool) -> Refusal | None:
        attempt.token = secrets.token_hex(8)
        reason, seconds = self._reserve(
            keys=self._keys(attempt),
            args=[
                attempt.at.timestamp(),
                WINDOW.total_seconds(),
                PER_SUBJECT_AND_ADDRESS,
                PER_ADDRESS,
                SLOW_AFTER,
                MAX_DELAY,
                1 if own_address else 0,
                attempt.token,
            ],
        )
        if reason.decode() == "ok":
            return None
        return Refusal(reason.decode(), _ceil_seconds(float(seconds)))

    def give_back(self, attempt: Attempt) -> None:
        pair, address, subject = self._keys(attempt)
        pipe = self.redis.pipeline()
        pipe.delete(pair)  # a success from this address starts it afresh
        pipe.zrem(address, attempt.token)
        pipe.zrem(subject, attempt.token)
        pipe.execute()

    def keep(self, attempt: Attempt) -> None:
        self.session.add(SignInAttempt(key=attempt.key, address=attempt.address, at=attempt.at))


def is_own_address(session: Session, key: str, address: str, now: dt.datetime) -> bool:
    return (
        session.scalar(
            sa.select(SignInAddress.id).where(
                SignInAddress.key == key,
                SignInAddress.address == address,
                SignInAddress.last_success_at > now - OWN_ADDRESS_FOR,
            )
        )
        is not None
    )


def reserve(
    session: Session, counters: Counters, key: str, address: str, now: dt.datetime | None = None
) -> Attempt:
    """Take a place for one attempt on `key` from `address`; `attempt.refusal` says if not."""
    scope = key.split(":", 1)[0]
    attempt = Attempt(key=key, scope=scope, address=address, at=now or utcnow(), counters=counters)
    attempt.refusal = counters.take(attempt, is_own_address(session, key, address, attempt.at))
    return attempt


def succeeded(session: Session, attempt: Attempt) -> None:
    """The attempt was right: its place is given back and its address becomes the subject's
    own."""
    values = {"key": attempt.key, "address": attempt.address, "last_success_at": attempt.at}
    dialect = session.get_bind().dialect.name
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(SignInAddress)
    session.execute(
        insert.values(**values).on_conflict_do_update(
            index_elements=["key", "address"], set_={"last_success_at": attempt.at}
        )
    )
    attempt.counters.give_back(attempt)


def failed(session: Session, attempt: Attempt) -> SignInAlert | None:
    """The attempt was wrong: it counts, it is recorded, and if the subject is now failing from
    several addresses its supervisors' alert is raised (or brought up to date)."""
    attempt.counters.keep(attempt)
    session.flush()
    since = attempt.at - WINDOW
    failures, addresses = session.execute(
        sa.select(sa.func.count(), sa.func.count(sa.distinct(SignInAttempt.address))).where(
            SignInAttempt.key == attempt.key, SignInAttempt.at > since
        )
    ).one()
    if addresses < ALERT_ADDRESSES:
        return None
    alert = session.scalar(
        sa.select(SignInAlert).where(
            SignInAlert.key == attempt.key, SignInAlert.resolved_at.is_(None)
        )
    )
    if alert is None:
        alert = SignInAlert(key=attempt.key)
        session.add(alert)
    alert.failures, alert.addresses, alert.last_failure_at = failures, addresses, attempt.at
    return alert
