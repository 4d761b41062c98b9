"""Settings: defaults, overridden by the environment, overridden by create_app's mapping."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ENV_KEYS = (
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "STRIPE_SECRET_KEY",
    "STRIPE_PUBLISHABLE_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "STRIPE_API_BASE",
    "STRIPE_JS_URL",
    "STRIPE_TIMEOUT_SECONDS",
    "MAIL_SERVER",
    "MAIL_PORT",
    "MAIL_DEFAULT_SENDER",
    "AGENCY_NAME",
    "AGENCY_TIMEZONE",
    "SESSION_COOKIE_SECURE",
    "DOCUMENT_STORE",
    "SMS_API_URL",
    "SMS_API_KEY",
    "AUTOPAY_WORKERS",
)
MAX_AUTOPAY_WORKERS = 6
MAX_STRIPE_TIMEOUT_SECONDS = 80  # Stripe's own client waits 80 s


def database_uri(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs given in their plain form."""
    for plain in ("postgres://", "postgresql://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    return url


def _autopay_workers(value: Any) -> int:
    try:
        workers = int(value)
    except (TypeError, ValueError):
        workers = 0
    if not 1 <= workers <= MAX_AUTOPAY_WORKERS:
        raise ValueError(
            f"AUTOPAY_WORKERS must be a whole number from 1 to {MAX_AUTOPAY_WORKERS}, not {value!r}"
        )
    return workers


def _stripe_timeout(value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = 0.0
    if not 0 < seconds <= MAX_STRIPE_TIMEOUT_SECONDS:
        raise ValueError(
            f"STRIPE_TIMEOUT_SECONDS must be a number of seconds above 0, at most "
            f"{MAX_STRIPE_TIMEOUT_SECONDS}, not {value!r}"
        )
    return seconds


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def instance_secret_key(instance: Path) -> str:
    """Without SECRET_KEY: one random key kept in instance/secret_key (mode 0600), made once and
    then read by every process of this machine, so all web workers sign sessions alike and a
    restart signs no one out. Several machines must share a SECRET_KEY instead."""
    path = instance / "secret_key"
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        draft = instance / f".secret_key.{secrets.token_hex(8)}"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
        try:
            os.link(draft, path)  # atomic, and refused if another process made it first
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


def load(instance_path: str, environ: Mapping[str, str], overrides: Mapping[str, Any]) -> dict:
    settings: dict[str, Any] = {
        "DATABASE_URL": f"sqlite:///{Path(instance_path) / 'recourse.sqlite3'}",
        "REDIS_URL": "",
        "SECRET_KEY": None,
        "STRIPE_SECRET_KEY": "",
        "STRIPE_PUBLISHABLE_KEY": "",
        "STRIPE_WEBHOOK_SECRET": "",
        "STRIPE_API_BASE": "",
        "STRIPE_JS_URL": "",
        # How long a call to Stripe may take before the debtor is told Stripe is away.
        "STRIPE_TIMEOUT_SECONDS": 30,
        "MAIL_SERVER": "",
        "MAIL_PORT": 25,
        "MAIL_DEFAULT_SENDER": "Recourse <no-reply@recourse.example>",
        "AGENCY_NAME": "Recourse Collections",
        "AGENCY_TIMEZONE": "America/New_York",
        "SESSION_COOKIE_SECURE": True,
        "DOCUMENT_STORE": str(Path(instance_path) / "documents"),
        # A text-message provider that takes {"to", "body"} as JSON and answers {"id"}.
        "SMS_API_URL": "",
        "SMS_API_KEY": "",
        # Worker processes of the daily autopay job (`plans charge-due --workers`).
        "AUTOPAY_WORKERS": 1,
    }
    settings.update({k: environ[k] for k in ENV_KEYS if environ.get(k) not in (None, "")})
    settings.update(overrides)

    if not settings["SECRET_KEY"]:
        settings["SECRET_KEY"] = instance_secret_key(Path(instance_path))
    if not settings["STRIPE_JS_URL"]:
        # A local fake Stripe (localstripe) serves its own Stripe.js beside its API.
        base = settings["STRIPE_API_BASE"].rstrip("/")
        settings["STRIPE_JS_URL"] = (
            f"{base}/js.stripe.com/v3/" if base else "https://js.stripe.com/v3/"
        )
    settings["SQLALCHEMY_DATABASE_URI"] = database_uri(settings["DATABASE_URL"])
    settings["MAIL_PORT"] = int(settings["MAIL_PORT"])
    settings["STRIPE_TIMEOUT_SECONDS"] = _stripe_timeout(settings["STRIPE_TIMEOUT_SECONDS"])
    settings["AUTOPAY_WORKERS"] = _autopay_workers(settings["AUTOPAY_WORKERS"])
    settings["SESSION_COOKIE_SECURE"] = _bool(settings["SESSION_COOKIE_SECURE"])
    settings.setdefault("SESSION_COOKIE_HTTPONLY", True)
    settings.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    settings.setdefault("REMEMBER_COOKIE_SECURE", settings["SESSION_COOKIE_SECURE"])
    settings.setdefault("REMEMBER_COOKIE_HTTPONLY", True)
    settings.setdefault("WTF_CSRF_TIME_LIMIT", None)
    # 20 MB files (the referral limit) plus room for the multipart envelope.
    settings.setdefault("MAX_CONTENT_LENGTH", 21 * 1024 * 1024)
    return settings
