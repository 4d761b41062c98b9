"""The app shell: settings, extensions, database, security, errors, the job runner, the payment
gateway, /healthz and the template filters; then, once the rooms are registered, the command
line, one unit of work per view and the check that every job has a handler.

`agency.create_app` (the contract) calls `make_app`, registers the rooms' blueprints, then
calls `finish`."""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

import click
import sqlalchemy as sa
from flask import Flask, current_app, jsonify
from werkzeug.middleware.proxy_fix import ProxyFix

from cases import report_totals
from cases.case import STATUSES_BY_STAGE

# Imported for what they register: every model (schema) and every job handler.
from correspondence import (  # noqa: F401
    autopay_mail,
    mail,
    notice_run,
    receipts,
    reminder_run,
    settlement_letters,
    statement_mail,
    texts,
)
from payments.gateway import StripeGateway
from shell import (  # noqa: F401
    cli,
    database,
    error_pages,
    input_guard,
    job_runner,
    referral_store,
    schema,
    security,
    settings,
    sign_in_guard,
    signed_in,
)
from shell.extensions import csrf, db, login_manager, migrate
from shell.stripe_buckets import request_budget
from shell.unit_of_work import wrap_views

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def make_app(import_name: str, config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(
        import_name,
        instance_relative_config=True,
        template_folder=os.path.join(ROOT, "templates"),
        static_folder=os.path.join(ROOT, "static"),
    )
    app.config.update(settings.load(app.instance_path, os.environ, config or {}))
    if app.config["CONFIG_PROBLEMS"] and not _config_check_requested():
        raise settings.ConfigError(app.config["CONFIG_PROBLEMS"])
    _warn_of_development_under_gunicorn(app)
    os.makedirs(app.instance_path, exist_ok=True)
    _trust_proxies(app)

    database.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(ROOT, "migrations"))
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.session_protection = "strong"
    signed_in.init_app(app)
    security.init_app(app)
    input_guard.init_app(app)
    job_runner.init_app(app)
    sign_in_guard.init_app(app)
    _init_gateway(app)
    error_pages.init_app(app)
    app.add_template_filter(ZoneInfo, "tz")
    app.add_template_filter(dt.date.fromisoformat, "todate")
    app.add_template_global(STATUSES_BY_STAGE, "case_statuses")

    @app.template_filter("agency_time")
    def agency_time(moment: dt.datetime) -> str:
        zone = ZoneInfo(app.config["AGENCY_TIMEZONE"])
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")

    @app.template_filter("agency_date")
    def agency_date(moment: dt.datetime) -> str:
        """The day a UTC time stamp fell on in the agency's zone (not the UTC day)."""
        return moment.astimezone(ZoneInfo(app.config["AGENCY_TIMEZONE"])).date().isoformat()

    app.add_url_rule("/healthz", "healthz", healthz)
    # The promises' made-on day in the reports' totals. A zone that does not parse (None here)
    # is left to `config check`, which names it; the app never serves with it.
    if app.config.get("AGENCY_TIMEZONE"):
        report_totals.use_zone(ZoneInfo(app.config["AGENCY_TIMEZONE"]))
    return app


def finish(app: Flask, create_app: Callable[..., Flask]) -> Flask:
    """After the rooms are in: the CLI, a unit of work per view, and a refusal to start while a
    job the code may queue has no handler."""
    cli.init_app(app)
    wrap_views(app)
    job_runner.check_handlers()
    app.extensions["recourse.create_app"] = create_app  # for autopay's worker processes
    return app


def _config_check_requested() -> bool:
    """`flask --app wsgi config check` builds the app it reports on even when the settings
    would stop it: that command is how an operator sees every problem at once."""
    return click.get_current_context(silent=True) is not None and sys.argv[-2:] == [
        "config",
        "check",
    ]


def _warn_of_development_under_gunicorn(app: Flask) -> None:
    """gunicorn means a real server: say at every start that this one runs on the demo's
    defaults (gunicorn's arbiter sets SERVER_SOFTWARE for its workers)."""
    under_gunicorn = os.environ.get("SERVER_SOFTWARE", "").startswith("gunicorn/")
    if under_gunicorn and not settings.production(app.config):
        app.logger.warning(
            "Recourse is served by gunicorn in DEVELOPMENT mode: demo agency details on letters, "
            "development defaults. Set RECOURSE_ENV=production (see docs/deploy.md)."
        )


def _trust_proxies(app: Flask) -> None:
    """Behind TRUSTED_PROXIES reverse proxies, the client's address, scheme and host come from
    their X-Forwarded-* headers (Werkzeug's ProxyFix); with none, those headers are ignored."""
    hops = app.config["TRUSTED_PROXIES"]
    if hops:
        app.wsgi_app = ProxyFix(
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops, x_prefix=hops
        )


def healthz():
    checks: dict[str, str] = {}
    status = 200
    try:
        db.session.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - a health check reports, it does not raise
        checks["database"] = f"error: {type(exc).__name__}"
        status = 503
    runner = current_app.extensions["recourse.jobs"]
    if isinstance(runner, job_runner.RQRunner):
        try:
            runner.connection.ping()
            checks["redis"] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks["redis"] = f"error: {type(exc).__name__}"
            status = 503
    return (
        jsonify(
            status="ok" if status == 200 else "error",
            mode=current_app.config["RECOURSE_ENV"],
            checks=checks,
        ),
        status,
    )


def _init_gateway(app: Flask) -> None:
    """The payment provider: Stripe (or a local fake Stripe through STRIPE_API_BASE)."""
    key = app.config["STRIPE_SECRET_KEY"]
    app.extensions["recourse.gateway"] = (
        StripeGateway(
            key,
            app.config["STRIPE_WEBHOOK_SECRET"],
            api_base=app.config["STRIPE_API_BASE"] or None,
            timeout_seconds=app.config["STRIPE_TIMEOUT_SECONDS"],
            budget=request_budget(app.config),
        )
        if key
        else None
    )
