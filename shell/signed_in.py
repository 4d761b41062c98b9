"""Who is signed in, and for how long (SPEC §8, §11): the cookie's side of cases/sessions.py.

The signed session cookie carries, for each kind of session (staff: agency staff and client
users; portal: a debtor), the token of the session's record on the server, when the session
started and when it was last used. A request is signed in only while:

- the session was used within its idle limit (`STAFF_IDLE_MINUTES`, 30, for staff and client
  users; `PORTAL_IDLE_MINUTES`, 15, for debtors);
- it started within its lifetime (`SESSION_LIFETIME_HOURS`, 12);
- its record still exists on the server: signing out deletes it, and a password change, a
  deactivation or a role change deletes every record of that user (cases/users.py).

The times come from the cookie, which nobody can alter without the secret key, so they cost no
database read. When it was last used is written again at most once a minute (`RENEW_AFTER`):
each write re-signs the cookie and sends it back, so not on every request. The idle limit is
then kept to within that minute, never exceeded: the session ends up to a minute before the
limit after its last use, never after. The record is checked in the query that loads who is signed in: the user here,
the debtor or the portal pages' stamps query (portal/), so it costs no extra round trip.

Staff sessions begin and end with Flask-Login's own signals: every `login_user` makes a record
and every `logout_user` deletes it, whichever page signs in."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from flask import Flask, current_app, session
from flask_login import user_logged_in, user_logged_out

from cases import sessions as records
from cases.model import utcnow
from cases.users import User
from shell.extensions import db

RENEW_AFTER = dt.timedelta(minutes=1)  # not on every request: each renewal re-signs the cookie


@dataclass(frozen=True)
class Kind:
    name: str
    idle_setting: str  # minutes idle after which the session ends

    @property
    def keys(self) -> tuple[str, str, str]:
        """The cookie's keys: the token, when it started, when it was last used."""
        return f"{self.name}_session", f"{self.name}_started_at", f"{self.name}_seen_at"


STAFF = Kind("staff", "STAFF_IDLE_MINUTES")
PORTAL = Kind("portal", "PORTAL_IDLE_MINUTES")


def lifetime() -> dt.timedelta:
    """The longest any session lives, however active."""
    return dt.timedelta(hours=current_app.config["SESSION_LIFETIME_HOURS"])


def start(kind: Kind, *, user_id: int | None = None, debtor_id: int | None = None) -> None:
    """A new session: its record on the server, its token and times in the cookie (the one
    the cookie held before ends)."""
    end(kind)
    token = records.start(db.session, lifetime=lifetime(), user_id=user_id, debtor_id=debtor_id)
    now = utcnow().timestamp()
    token_key, started_key, seen_key = kind.keys
    session[token_key] = token
    session[started_key] = session[seen_key] = now


def end(kind: Kind) -> None:
    """Ends this request's session: out of the cookie, and its record off the server, so that
    a copy of the cookie is worthless too."""
    token = drop(kind)
    if token is not None:
        records.end(db.session, token)


def drop(kind: Kind) -> str | None:
    """Takes the session out of the cookie; its token, if there was one."""
    token_key, started_key, seen_key = kind.keys
    session.pop(started_key, None)
    session.pop(seen_key, None)
    return session.pop(token_key, None)


def current_token(kind: Kind) -> str | None:
    """This request's session token if the session has not been idle or alive too long (from
    the cookie alone); else the session is taken out of the cookie and None."""
    token_key, started_key, seen_key = kind.keys
    token, started, seen = session.get(token_key), session.get(started_key), session.get(seen_key)
    if token is None or started is None or seen is None:
        return None
    now = utcnow().timestamp()
    idle = 60 * current_app.config[kind.idle_setting]
    if now - seen > idle or now - started > lifetime().total_seconds():
        drop(kind)
        return None
    if now - seen > RENEW_AFTER.total_seconds():
        session[seen_key] = now
    return token


def current_hash(kind: Kind) -> str | None:
    """The stored form of this request's live token (see `current_token`), for queries."""
    token = current_token(kind)
    return None if token is None else records.token_hash(token)


def user(user_id: str) -> User | None:
    """The staff or client user of this request's session: active, and with the session's
    record still on the server (one query)."""
    hashed = current_hash(STAFF)
    if hashed is None or not user_id.isdigit():
        return None
    return db.session.scalar(
        sa.select(User)
        .join(records.SignInSession, records.SignInSession.user_id == User.id)
        .where(User.id == int(user_id), User.active, records.SignInSession.token_hash == hashed)
    )


def _signed_in(app: Flask, user: User) -> None:
    start(STAFF, user_id=user.id)


def _signed_out(app: Flask, user: User | None) -> None:
    end(STAFF)


def init_app(app: Flask) -> None:
    user_logged_in.connect(_signed_in, app)
    user_logged_out.connect(_signed_out, app)
