"""Sign-in sessions kept on the server (SPEC §11), for staff and client users and for debtors
in the portal.

Signing in makes a record here and puts a random token in the signed session cookie; only the
token's SHA-256 is stored. A request is signed in only while its token's record exists, so
deleting the record ends the session wherever its cookie has been copied. Signing out deletes
that session's record; a password change, a deactivation or a role change deletes all of that
user's. How long a session may live is the web side's (shell/signed_in.py); records of sessions
past it are removed at each sign-in."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from cases.model import Base, utcnow


class SignInSession(Base):
    __tablename__ = "sign_in_sessions"

    token_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"), index=True)
    debtor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("debtors.id"), index=True)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)

    __table_args__ = (
        sa.CheckConstraint("(user_id IS NULL) <> (debtor_id IS NULL)", name="one_holder"),
    )


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(
    session: Session,
    *,
    lifetime: dt.timedelta,
    user_id: int | None = None,
    debtor_id: int | None = None,
) -> str:
    """A new session for a user or a debtor; returns its token (for the cookie only). Records of
    any sessions older than `lifetime`, the longest a session lives, go."""
    if (user_id is None) == (debtor_id is None):
        raise ValueError("a session belongs to one user or one debtor")
    now = utcnow()
    session.execute(sa.delete(SignInSession).where(SignInSession.started_at < now - lifetime))
    token = secrets.token_urlsafe(32)
    session.add(
        SignInSession(
            token_hash=token_hash(token), user_id=user_id, debtor_id=debtor_id, started_at=now
        )
    )
    return token


def end(session: Session, token: str) -> None:
    """Ends the session with this token, wherever its cookie is."""
    session.execute(sa.delete(SignInSession).where(SignInSession.token_hash == token_hash(token)))


def end_all_for_user(session: Session, user_id: int) -> int:
    """Ends every session of this user; how many there were."""
    result = session.execute(sa.delete(SignInSession).where(SignInSession.user_id == user_id))
    return result.rowcount
