"""The database: the engine options per backend, and SQLite's pragmas."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask
from sqlalchemy import event

from shell.extensions import db


def init_app(app: Flask) -> None:
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("sqlite"):
        app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"connect_args": {"timeout": 30}})
    else:
        # JIT compiling costs tens of ms per query and pays off only for long analytics.
        app.config.setdefault(
            "SQLALCHEMY_ENGINE_OPTIONS",
            {"pool_pre_ping": True, "connect_args": {"options": "-c jit=off"}},
        )
    db.init_app(app)
    if uri.startswith("sqlite"):
        with app.app_context():
            _sqlite_pragmas(db.engine)


def _sqlite_pragmas(engine: sa.Engine) -> None:
    """Foreign keys on, transactions SQLAlchemy controls (so SAVEPOINTs work), one writer at
    a time."""

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn):
        # IMMEDIATE takes the write lock up front: two writers queue (busy_timeout) instead
        # of deadlocking on a read-then-write upgrade, which SQLite answers with an error.
        conn.exec_driver_sql("BEGIN IMMEDIATE")
