"""The signed-in balance pages (accounts and case), rendered once per version of what they show
and served from a cache until that changes.

A page's key holds the version stamps of the cases and clients it shows (cases/stamps.py:
changed in the same transaction as any change the page shows, and read before the page's
data, so a cached page is never older than its key), the signed-in debtor, the address, the
language and the day (offers and discounts depend on it), and a digest of the templates and
translations. What belongs to the session is never cached: the CSRF tokens are put in on each
request, and a page that carries a flashed message is rendered afresh. Entries live in a small
in-process LRU and, when REDIS_URL is set, in Redis too (for an hour at most), shared by every
process: a key names one version of one page, so a copy kept in the process is never stale,
and a view this process served before makes no round trip to Redis."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from flask import Flask, current_app, g, render_template, request, session
from flask_wtf.csrf import generate_csrf

from cases.case import Case
from cases.clients import Client
from cases.sessions import SignInSession
from correspondence import i18n
from shell.extensions import db
from shell.timezone import agency_today

log = logging.getLogger(__name__)
EXTENSION = "recourse.portal_pages"
STAMPS_ENGINE = EXTENSION + ".stamps_engine"
STAMPS_SQL = EXTENSION + ".stamps_sql"
CSRF_TOKENS = EXTENSION + ".csrf_tokens"


class LocalPages:
    """Rendered pages in this process, the least recently used dropped first."""

    def __init__(self, size: int = 1024):
        self.size = size
        self._entries: OrderedDict[str, list[str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> list[str] | None:
        with self._lock:
            parts = self._entries.get(key)
            if parts is not None:
                self._entries.move_to_end(key)
            return parts

    def set(self, key: str, parts: list[str]) -> None:
        with self._lock:
            self._entries[key] = parts
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


class RedisPages:
    """Rendered pages shared by every process; an unreachable Redis only means a miss."""

    TTL_SECONDS = 3600

    def __init__(self, url: str):
        from redis import Redis

        self.redis = Redis.from_url(url)

    def get(self, key: str) -> list[str] | None:
        try:
            raw = self.redis.get(key)
        except Exception:  # noqa: BLE001 - the page is rendered instead
            log.warning("portal page cache: Redis unreachable", exc_info=True)
            return None
        return None if raw is None else json.loads(raw)

    def set(self, key: str, parts: list[str]) -> None:
        try:
            self.redis.set(key, json.dumps(parts), ex=self.TTL_SECONDS)
        except Exception:  # noqa: BLE001
            log.warning("portal page cache: Redis unreachable", exc_info=True)


class TieredPages:
    """This process's LRU in front of Redis: a page found in Redis is kept here too. A key
    holds the stamps of what the page shows, so an entry never goes stale, it is only no
    longer asked for; the LRU drops it."""

    def __init__(self, local: LocalPages, shared: RedisPages):
        self.local, self.shared = local, shared

    def get(self, key: str) -> list[str] | None:
        parts = self.local.get(key)
        if parts is None:
            parts = self.shared.get(key)
            if parts is not None:
                self.local.set(key, parts)
        return parts

    def set(self, key: str, parts: list[str]) -> None:
        self.local.set(key, parts)
        self.shared.set(key, parts)


def _digest(app: Flask) -> str:
    """Of the templates and translations: a deploy that changes them starts a new cache."""
    digest = hashlib.blake2b(digest_size=8)
    folders = [Path(app.root_path, app.template_folder), i18n.TRANSLATIONS]
    for path in sorted(p for folder in folders for p in folder.rglob("*") if p.is_file()):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def init_app(app: Flask) -> None:
    url = app.config.get("REDIS_URL")
    app.extensions[EXTENSION] = TieredPages(LocalPages(), RedisPages(url)) if url else LocalPages()
    app.extensions[EXTENSION + ".digest"] = _digest(app)
    app.extensions[CSRF_TOKENS] = SignedTokens()
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("postgresql"):
        # The stamps are read on a pool of their own: in autocommit (no BEGIN and ROLLBACK) and
        # without the app pool's pre-ping (a round trip on every checkout, half of a cached
        # view's). A connection the server dropped is handled in `_read_stamps` instead.
        options = {**app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}), "pool_pre_ping": False}
        engine = sa.create_engine(uri, isolation_level="AUTOCOMMIT", **options)
        app.extensions[STAMPS_ENGINE] = engine
        # Compiled once: `_read_stamps` hands the SQL to the driver as it is.
        app.extensions[STAMPS_SQL] = {
            statement: str(statement.compile(dialect=engine.dialect))
            for statement in (DEBTOR_STAMPS, CASE_STAMPS)
        }


_cases, _clients, _sessions = Case.__table__.c, Client.__table__.c, SignInSession.__table__.c
# Built once (Core, not ORM: this runs on every view of the pages). The join with the session's
# record is the server's check that the session has not ended (shell/signed_in.py).
DEBTOR_STAMPS = (
    sa.select(_cases.id, _cases.stamp, _clients.stamp)
    .join_from(Case.__table__, Client.__table__, _clients.id == _cases.client_id)
    .join(
        SignInSession.__table__,
        sa.and_(
            _sessions.token_hash == sa.bindparam("session"),
            _sessions.debtor_id == _cases.debtor_id,
        ),
    )
    .where(_cases.debtor_id == sa.bindparam("debtor_id"))
    .order_by(_cases.id)
)
CASE_STAMPS = DEBTOR_STAMPS.where(_cases.reference == sa.bindparam("reference"))


def stamps(reference: str | None = None) -> list[tuple[int, int, int]]:
    """(case id, case stamp, client stamp) of the signed-in debtor's cases, or of the one with
    this reference if it is theirs, while the session lasts: one query that is the session,
    tenancy and freshness check. Nothing if the session ended on the server."""
    params = {"debtor_id": g.debtor_id, "session": g.get("portal_session")}
    if reference is None:
        statement = DEBTOR_STAMPS
    else:
        statement = CASE_STAMPS
        params["reference"] = reference.strip().upper()
    engine = current_app.extensions.get(STAMPS_ENGINE)
    if engine is None or not _outside_a_transaction():
        # SQLite, or a session bound to a connection of its own (the tests'), or one that
        # already reads in a transaction.
        return [tuple(row) for row in db.session.execute(statement, params)]
    # On PostgreSQL, outside a transaction: one SELECT sees what it would see at READ
    # COMMITTED. The connection goes back to its pool at once, so a page rendered after this
    # reads in a transaction of its own, as every other request does.
    return _read_stamps(engine, current_app.extensions[STAMPS_SQL][statement], params)


def _outside_a_transaction() -> bool:
    """Whether this request's session would read on the app's own engine and has no transaction
    begun: asked without making a session if the request has none yet (a cached view then
    makes none at all, and its unit of work has nothing to commit)."""
    scoped = db.session
    if not scoped.registry.has():
        return scoped.session_factory.kw.get("bind") is None  # the app's: it picks the engine
    orm = scoped()
    return isinstance(orm.get_bind(), sa.Engine) and not orm.in_transaction()


def dispose(app: Flask) -> None:
    """Close the stamps pool's connections (as `db.engine.dispose()` does the app's)."""
    engine = app.extensions.get(STAMPS_ENGINE)
    if engine is not None:
        engine.dispose()


def _read_stamps(engine: sa.Engine, sql: str, params: dict) -> list[tuple]:
    """The stamps query on the stamps pool, through the driver's own cursor: SQLAlchemy's
    statement execution costs more than the query itself on a view served from the cache (the
    SQL is compiled once, in `init_app`; the pool still hands out and takes back the
    connection). The driver's errors are raised as SQLAlchemy's, as every other query's are
    (shell/error_pages.py answers a lost database with 503). A connection the server dropped
    (a restart, a failover) fails its statement; the pool's connections are then discarded, as
    SQLAlchemy does, and this read, which changes nothing, is tried once more on a new one."""
    dbapi_error = engine.dialect.loaded_dbapi.Error

    def read() -> list[tuple]:
        connection = engine.raw_connection()
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()
        except dbapi_error as exc:
            dropped = engine.dialect.is_disconnect(exc, connection.dbapi_connection, None)
            if dropped:
                connection.invalidate(exc)
                engine.dispose()
            raise sa.exc.DBAPIError.instance(
                sql,
                params,
                exc,
                dbapi_error,
                connection_invalidated=dropped,
                dialect=engine.dialect,
            ) from exc
        finally:
            connection.close()  # back to the pool (or gone, if invalidated)

    try:
        return read()
    except sa.exc.DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        log.warning("portal stamps: the database dropped a connection; reading again")
        return read()


class SignedTokens:
    """This process's signed form of each session's CSRF token. Flask-WTF signs the session's
    token again for every page (an HMAC key derivation and a signature, a tenth of a cached
    view); a signed token never expires here (`WTF_CSRF_TIME_LIMIT` is off), so the one this
    app signed before for the same session token is as good, and good for that session only.
    With a time limit set, one is reused for a minute at most (it then expires up to a minute
    early). Least recently used dropped first."""

    REUSE_SECONDS = 60

    def __init__(self, size: int = 4096):
        self.size = size
        self._signed: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def token(self) -> str:
        app = current_app._get_current_object()
        field = app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
        now = time.time()
        raw = session.get(field)
        if isinstance(raw, str) and field not in g:
            with self._lock:
                found = self._signed.get(raw)
                if found is not None and (
                    app.config.get("WTF_CSRF_TIME_LIMIT") is None
                    or 0 <= now - found[1] < self.REUSE_SECONDS
                ):
                    self._signed.move_to_end(raw)
                    return found[0]
        signed = generate_csrf()  # signed now (or earlier in this request)
        with self._lock:
            self._signed[session[field]] = (signed, now)
            self._signed.move_to_end(session[field])
            while len(self._signed) > self.size:
                self._signed.popitem(last=False)
        return signed


def cached(shown: list[tuple[int, int, int]], template: str, context: Callable[[], dict]) -> str:
    """`template` rendered with `context()`, or the copy rendered before for the same stamps
    (`shown`), address, language and day; with this session's CSRF token put in."""
    if "_flashes" in session:  # this response carries a message of its own
        return render_template(template, **context())
    app = current_app._get_current_object()
    key = "|".join(
        [
            app.extensions[EXTENSION + ".digest"],
            str(g.debtor_id),
            request.path,
            i18n.portal_locale(),
            agency_today().isoformat(),
            json.dumps(shown),
        ]
    )
    key = "recourse:portal-page:" + hashlib.blake2b(key.encode(), digest_size=20).hexdigest()
    store = app.extensions[EXTENSION]
    parts = store.get(key)
    if parts is None:
        slot = secrets.token_hex(16)  # stands for the token while rendering
        parts = render_template(template, **context(), csrf_token=lambda: slot).split(slot)
        store.set(key, parts)
    return app.extensions[CSRF_TOKENS].token().join(parts)
