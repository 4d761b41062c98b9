"""Agency staff and client users, their API tokens, and the sign-in limit."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from cases import audit, sessions
from cases.clients import Client
from cases.model import Base, Timestamped, utcnow

ROLES = ("admin", "supervisor", "collector", "client")
STAFF_ROLES = ("admin", "supervisor", "collector")
MIN_PASSWORD_LENGTH = 10


class User(Timestamped, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200), default="")
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    role: Mapped[str] = mapped_column(sa.String(20))
    client_id: Mapped[int | None] = mapped_column(sa.ForeignKey("clients.id"), index=True)
    active: Mapped[bool] = mapped_column(default=True)
    last_sign_in_at: Mapped[dt.datetime | None]

    client: Mapped[Client | None] = relationship()

    __table_args__ = (
        sa.CheckConstraint(
            "(role = 'client') = (client_id IS NOT NULL)", name="client_user_has_client"
        ),
    )

    # Flask-Login's user protocol, kept here so the web layer needs no wrapper.
    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def __repr__(self) -> str:
        return f"<User {self.email} {self.role}>"


class ApiToken(Timestamped, Base):
    """A bearer token; only its SHA-256 is stored, the token itself is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    prefix: Mapped[str] = mapped_column(sa.String(12))
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]

    user: Mapped[User] = relationship()


class SignInAttempt(Base):
    """A failed sign-in, kept to lock a key (an email, a case reference, an address)."""

    __tablename__ = "sign_in_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(300), index=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class UserError(ValueError):
    """A user's details were refused; the message says why."""


def normalise_email(email: str) -> str:
    try:
        return validate_email(
            email.strip(), check_deliverability=False, test_environment=True
        ).normalized.lower()
    except EmailNotValidError as exc:
        raise UserError(f"not a valid email address: {exc}") from None


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")


def create_user(
    session: Session,
    email: str,
    password: str,
    role: str,
    *,
    actor: audit.Actor,
    client: Client | None = None,
    name: str = "",
) -> User:
    email = normalise_email(email)
    if role not in ROLES:
        raise UserError(f"role must be one of: {', '.join(ROLES)}")
    if role == "client" and client is None:
        raise UserError("a client user needs a client")
    if role != "client" and client is not None:
        raise UserError("only client users belong to a client")
    check_password_strength(password)
    if session.scalar(sa.select(User.id).where(User.email == email)) is not None:
        raise UserError(f"a user with email {email} already exists")
    user = User(
        email=email,
        name=name.strip(),
        password_hash=generate_password_hash(password),
        role=role,
        client=client,
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor,
        "user",
        user.id,
        "user.created",
        email=email,
        role=role,
        client=client.code if client else None,
    )
    return user


def update_user(
    session: Session,
    user: User,
    *,
    actor: audit.Actor,
    role: str,
    client: Client | None,
    active: bool,
    name: str,
    password: str | None = None,
) -> User:
    if role not in ROLES:
        raise UserError(f"role must be one of: {', '.join(ROLES)}")
    if (role == "client") != (client is not None):
        raise UserError("a client user needs a client, and only client users have one")
    if actor.user_id == user.id and (not active or role != user.role):
        raise UserError("you cannot deactivate yourself or change your own role")
    changes = {}
    for key, value in (
        ("role", role),
        ("client_id", client.id if client else None),
        ("active", active),
        ("name", name.strip()),
    ):
        if getattr(user, key) != value:
            changes[key] = [getattr(user, key), value]
            setattr(user, key, value)
    if password:
        check_password_strength(password)
        user.password_hash = generate_password_hash(password)
        changes["password"] = "changed"
    if changes.keys() & {"role", "client_id", "active", "password"}:
        # What the user may reach, or how they prove who they are, changed: every session of
        # theirs ends (SPEC §11), wherever its cookie is.
        changes["sessions_ended"] = sessions.end_all_for_user(session, user.id)
    if changes:
        audit.record(session, actor, "user", user.id, "user.updated", changes=changes)
    return user


def user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(sa.select(User).where(User.email == email.strip().lower()))


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, user: User, *, actor: audit.Actor) -> str:
    token = "rc_" + secrets.token_urlsafe(32)
    session.add(ApiToken(user=user, token_hash=_hash_token(token), prefix=token[:10]))
    audit.record(session, actor, "user", user.id, "token.issued", prefix=token[:10])
    return token


def user_for_token(session: Session, token: str) -> User | None:
    row = session.scalar(
        sa.select(ApiToken).where(
            ApiToken.token_hash == _hash_token(token), ApiToken.revoked_at.is_(None)
        )
    )
    if row is None or not row.user.active:
        return None
    row.last_used_at = utcnow()
    return row.user


# The sign-in limit (SPEC §8, §11): five failures within 15 minutes lock a key for 15 minutes.
MAX_FAILURES = 5
LOCK_WINDOW = dt.timedelta(minutes=15)


def locked_keys(session: Session, keys: list[str], now: dt.datetime | None = None) -> list[str]:
    now = now or utcnow()
    rows = session.execute(
        sa.select(SignInAttempt.key, sa.func.count())
        .where(SignInAttempt.key.in_(keys), SignInAttempt.at > now - LOCK_WINDOW)
        .group_by(SignInAttempt.key)
    )
    return [key for key, count in rows if count >= MAX_FAILURES]


def record_failure(session: Session, keys: list[str], now: dt.datetime | None = None) -> None:
    now = now or utcnow()
    session.add_all(SignInAttempt(key=key, at=now) for key in keys)


def clear_failures(session: Session, keys: list[str]) -> None:
    session.execute(sa.delete(SignInAttempt).where(SignInAttempt.key.in_(keys)))
