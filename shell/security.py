"""Access rules for every view (role and tenancy) and the security headers on every response."""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlsplit

from flask import Flask, abort, redirect, request, url_for
from flask_login import current_user

STAFF = ("admin", "supervisor", "collector")


def require_roles(*roles: str):
    """Blueprint guard: signed out → the sign-in page; signed in with another role → 403."""

    def guard():
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        if current_user.role not in roles:
            abort(403)
        return None

    return guard


def roles_required(*roles: str):
    """View decorator for pages narrower than their blueprint (e.g. admin-only)."""

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            denied = require_roles(*roles)()
            if denied is not None:
                return denied
            return view(*args, **kwargs)

        return wrapper

    return decorate


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def content_security_policy(stripe_js_url: str) -> str:
    stripe = _origin(stripe_js_url)
    external = f" {stripe}" if stripe else ""
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self'{external}",
            f"frame-src 'self'{external}",
            f"connect-src 'self'{external}",
            "img-src 'self' data:",
            "style-src 'self'",
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def init_app(app: Flask) -> None:
    csp = content_security_policy(app.config["STRIPE_JS_URL"])

    @app.after_request
    def security_headers(response):
        headers = response.headers
        headers.setdefault("Content-Security-Policy", csp)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if app.config["SESSION_COOKIE_SECURE"]:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        if request.endpoint and not request.endpoint.startswith("static"):
            headers.setdefault("Cache-Control", "no-store")
        return response
