"""Agency staff and client users, and their API tokens."""

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
    # The second factor (cases/second_factor.py): the TOTP secret encrypted with
    # MFA_ENCRYPTION_KEY, when it was confirmed, and the time step of the last code accepted.
    totp_secret: Mapped[str | None] = mapped_column(sa.String(255))
    totp_enrolled_at: Mapped[dt.datetime | None]
    totp_last_step: Mapped[int | None] = mapped_column(sa.BigInteger)

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


TOKEN_SCOPES = ("read", "write")
TOKEN_LIFETIME = dt.timedelta(days=90)
MAX_TOKEN_LIFETIME = dt.timedelta(days=366)


class ApiToken(Timestamped, Base):
    """A bearer token; only its SHA-256 is stored, the token itself is shown once. It acts as
    its owner (`user`) with no second factor, so it is limited: a scope (`read` tokens only
    read; `write` tokens also post), an expiry, and revocation."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    prefix: Mapped[str] = mapped_column(sa.String(12))
    scope: Mapped[str] = mapped_column(sa.String(10))
    expires_at: Mapped[dt.datetime]
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]

    user: Mapped[User] = relationship()


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


class TokenRefused(Exception):
    """A bearer token that may not be used; `error` is the API's error code."""

    def __init__(self, error: str, message: str):
        super().__init__(message)
        self.error = error
        self.message = message


def issue_token(
    session: Session,
    user: User,
    *,
    actor: audit.Actor,
    scope: str = "write",
    lifetime: dt.timedelta = TOKEN_LIFETIME,
) -> str:
    if scope not in TOKEN_SCOPES:
        raise UserError(f"scope must be one of: {', '.join(TOKEN_SCOPES)}")
    if not dt.timedelta(days=1) <= lifetime <= MAX_TOKEN_LIFETIME:
        raise UserError(f"a token lasts from 1 to {MAX_TOKEN_LIFETIME.days} days")
    if not user.active:
        raise UserError(f"{user.email} is not active")
    token = "rc_" + secrets.token_urlsafe(32)
    expires_at = utcnow() + lifetime
    session.add(
        ApiToken(
            user=user,
            token_hash=_hash_token(token),
            prefix=token[:10],
            scope=scope,
            expires_at=expires_at,
        )
    )
    audit.record(
        session,
        actor,
        "user",
        user.id,
        "token.issued",
        prefix=token[:10],
        scope=scope,
        expires_at=expires_at.isoformat(),
    )
    return token


def revoke_token(session: Session, token: ApiToken, *, actor: audit.Actor) -> None:
    if token.revoked_at is not None:
        raise UserError(f"token {token.prefix}… was revoked already")
    token.revoked_at = utcnow()
    audit.record(session, actor, "user", token.user_id, "token.revoked", prefix=token.prefix)


def check_token(session: Session, token: str) -> ApiToken:
    """The token's row, its use recorded; TokenRefused if unknown, revoked, expired or its
    owner is inactive."""
    row = session.scalar(sa.select(ApiToken).where(ApiToken.token_hash == _hash_token(token)))
    if row is None or not row.user.active:
        raise TokenRefused("unauthorized", "the API token is not valid")
    if row.revoked_at is not None:
        raise TokenRefused(
            "token_revoked", f"the API token was revoked on {row.revoked_at:%Y-%m-%d %H:%M} UTC"
        )
    if row.expires_at <= utcnow():
        raise TokenRefused(
            "token_expired", f"the API token expired on {row.expires_at:%Y-%m-%d %H:%M} UTC"
        )
    row.last_used_at = utcnow()
    return row


def user_for_token(session: Session, token: str) -> User | None:
    try:
        return check_token(session, token).user
    except TokenRefused:
        return None
