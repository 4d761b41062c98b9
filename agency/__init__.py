"""Recourse's staff UI (/agency), and `create_app`, which puts the app together: the shell
(settings, extensions, security, errors, jobs, CLI, one unit of work per request) and the rooms
(the staff UI, the client area, the JSON API, the Stripe webhook, the debtor portal)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

# The staff pages register their routes on the staff blueprint.
from agency import (  # noqa: F401
    case_contact,
    case_papers,
    case_plans,
    caseload,
    casework,
    client_documents,
    early_out_terms,
    money_desk,
    notice_pages,
    queue_flow,
    report_pages,
    settlements,
    statement_pages,
    user_access,
)
from agency.auth import bp as auth_bp
from agency.second_step import bp as second_factor_bp
from agency.staff import bp as staff_bp
from api import bp as api_bp
from api.stripe_webhook import bp as stripe_bp
from client_area import bp as client_bp
from correspondence import i18n
from portal import bp as portal_bp
from portal import pages
from shell import app as shell


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The app; `config` overrides settings from the environment."""
    app = shell.make_app(__name__, config)
    for blueprint in (auth_bp, second_factor_bp, staff_bp, client_bp, api_bp, portal_bp, stripe_bp):
        app.register_blueprint(blueprint)
    i18n.init_app(app)
    pages.init_app(app)
    return shell.finish(app, create_app)
