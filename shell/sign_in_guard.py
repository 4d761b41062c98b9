"""The web side of the sign-in limit (cases/sign_in_limits.py): the client's address, the
counters (Redis when REDIS_URL is set, the database otherwise), and the 429 a refusal gets.

The address is `request.remote_addr`: the connecting peer, or, with TRUSTED_PROXIES = N, the
address N proxies vouch for in X-Forwarded-For (Werkzeug's ProxyFix, applied in create_app).
A header alone is never believed."""

from __future__ import annotations

import logging

from flask import Flask, current_app, request
from redis import Redis
from redis.exceptions import RedisError

from cases import sign_in_limits
from cases.sign_in_limits import Attempt, Counters, DatabaseCounters, RedisCounters
from shell.extensions import db

EXTENSION = "recourse.sign_in_redis"
log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    url = app.config["REDIS_URL"]
    app.extensions[EXTENSION] = Redis.from_url(url) if url else None


def client_address() -> str:
    return request.remote_addr or "unknown"


def counters() -> Counters:
    redis = current_app.extensions[EXTENSION]
    return RedisCounters(redis, db.session) if redis is not None else DatabaseCounters(db.session)


def reserve(scope: str, kind: str, subject: str) -> Attempt:
    """Take a place for this attempt before anything is checked (see `attempt.refusal`)."""
    key = sign_in_limits.subject_key(scope, kind, subject)
    try:
        return sign_in_limits.reserve(db.session, counters(), key, client_address())
    except RedisError as exc:
        # Sign-in does not fail with Redis: the database counts until Redis is back.
        log.warning("Redis is away (%s): sign-in limits counted in the database", exc)
        return sign_in_limits.reserve(
            db.session, DatabaseCounters(db.session), key, client_address()
        )


def succeeded(attempt: Attempt) -> None:
    try:
        sign_in_limits.succeeded(db.session, attempt)
    except RedisError as exc:  # the place stays taken in Redis; it ages out with the window
        log.warning("Redis is away (%s): a sign-in's place was not given back", exc)


def failed(attempt: Attempt) -> None:
    sign_in_limits.failed(db.session, attempt)


def refused(body: str, attempt: Attempt) -> tuple[str, int, dict[str, str]]:
    """A refused attempt's page: 429 and when to try again."""
    assert attempt.refusal is not None
    return body, 429, {"Retry-After": str(attempt.refusal.retry_after)}
