"""The Recourse web app: create_app, settings, sign-in, the staff and client UI, the JSON API."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy import event

from agency import jobs, schema, security, settings  # noqa: F401 (schema: all models)
from agency.extensions import csrf, db, login_manager, migrate


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(
        __name__,
        instance_relative_config=True,
        template_folder="../templates",
        static_folder="static",
    )
    app.config.update(settings.load(app.instance_path, os.environ, config or {}))
    os.makedirs(app.instance_path, exist_ok=True)

    _init_database(app)
    migrate.init_app(
        app,
        db,
        directory=os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "migrations")),
    )
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.session_protection = "strong"
    security.init_app(app)
    jobs.init_app(app)
    _init_gateway(app)
    _register_blueprints(app)
    from portal import i18n, pages

    i18n.init_app(app)
    pages.init_app(app)
    app.add_template_filter(ZoneInfo, "tz")
    app.add_template_filter(dt.date.fromisoformat, "todate")

    @app.template_filter("agency_time")
    def agency_time(moment: dt.datetime) -> str:
        zone = ZoneInfo(app.config["AGENCY_TIMEZONE"])
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")

    _register_errors(app)

    from agency import cli

    cli.init_app(app)

    @app.get("/healthz")
    def healthz():
        checks: dict[str, str] = {}
        status = 200
        try:
            db.session.execute(sa.text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001 - a health check reports, it does not raise
            checks["database"] = f"error: {type(exc).__name__}"
            status = 503
        runner = app.extensions["recourse.jobs"]
        if isinstance(runner, jobs.RQRunner):
            try:
                runner.connection.ping()
                checks["redis"] = "ok"
            except Exception as exc:  # noqa: BLE001
                checks["redis"] = f"error: {type(exc).__name__}"
                status = 503
        return jsonify(status="ok" if status == 200 else "error", checks=checks), status

    return app


def _init_gateway(app: Flask) -> None:
    """The payment provider: Stripe (or a local fake Stripe through STRIPE_API_BASE)."""
    from payments.gateway import StripeGateway

    key = app.config["STRIPE_SECRET_KEY"]
    app.extensions["recourse.gateway"] = (
        StripeGateway(
            key, app.config["STRIPE_WEBHOOK_SECRET"], api_base=app.config["STRIPE_API_BASE"] or None
        )
        if key
        else None
    )


def _init_database(app: Flask) -> None:
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


def _register_blueprints(app: Flask) -> None:
    # Their routes register on the staff and client-area blueprints.
    from agency import caseload, casework, money_desk, reports, settlements, statements  # noqa: F401
    from agency.api import bp as api_bp
    from agency.auth import bp as auth_bp
    from agency.client_area import bp as client_bp
    from agency.staff import bp as staff_bp
    from agency.stripe_webhook import bp as stripe_bp
    from portal import bp as portal_bp

    app.register_blueprint(auth_bp)
    app.register_blueprint(staff_bp)
    app.register_blueprint(client_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(portal_bp)
    app.register_blueprint(stripe_bp)


def _register_errors(app: Flask) -> None:
    messages = {
        400: ("Bad request", "The request could not be understood."),
        403: ("Not allowed", "You do not have access to this page."),
        404: ("Not found", "There is nothing at this address."),
        405: ("Not allowed", "That method is not allowed here."),
        413: ("Too large", "Files can be at most 20 MB. Split the file and upload each part."),
        429: ("Too many attempts", "Please wait a few minutes and try again."),
        500: ("Something went wrong", "The error was logged. Please try again."),
    }

    def handle(error):
        code = getattr(error, "code", 500) or 500
        title, text = messages.get(code, (str(code), ""))
        if request.path.startswith("/api/") or request.path.startswith("/stripe/"):
            from agency.api.errors import error_response

            return error_response(code, title.lower().replace(" ", "_"), text)
        return render_template("errors/error.html", code=code, title=title, text=text), code

    for code in messages:
        app.register_error_handler(code, handle)

    @app.errorhandler(CSRFError)
    def csrf_failed(error):
        text = (
            "The form has expired or was not sent from this site. "
            "Please go back, reload the page and try again."
        )
        return render_template("errors/error.html", code=400, title="Form expired", text=text), 400
