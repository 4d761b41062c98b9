"""Settings: one table (`SETTINGS`) of every setting the product reads, with its default, how
it is parsed, whether it is a secret and whether production requires it. Values come from the
defaults, overridden by the environment, overridden by create_app's mapping.

`RECOURSE_ENV=production` changes two things: the development defaults of the settings that
production requires are not used (no demo agency on a real letter, no key made up on one
machine), and `problems` names each missing or unsafe setting, which stops the app at start
(`shell.app`) and fails `flask --app wsgi config check`.

To add a setting, add a row to `SETTINGS` and to the README's table (a test compares them)."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from payments.stripe_budget import SEARCH_MAX_RPS, default_max_rps
from shell.setting_parsers import (
    ENVIRONMENTS,  # noqa: F401 (named by config check)
    boolean,
    environment,
    fernet_key,
    must_be_https,
    not_demo,
    stripe_timeout,
    text,
    time_zone,
    web_address,
    whole_number,
)

MAX_AUTOPAY_WORKERS = 6
# The demo agency's letterhead: real letters never carry it (production requires its own).
DEMO_ADDRESS = "100 Main Street, Suite 200, Springfield, IL 62701"
DEMO_PHONE = "(800) 555-0199"
DEMO_NOTE = "DEMO — not a real agency"
DEV_APP_URL = "http://127.0.0.1:5000"


def database_uri(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs given in their plain form."""
    for plain in ("postgres://", "postgresql://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    return url


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any  # a value, or a function of the settings read so far (see `load`)
    doc: str
    parse: Callable[[Any], Any] = text
    secret: bool = False
    required_in_production: bool = False  # production ignores the default and needs a value
    production_check: Callable[[Any], str | None] | None = None  # an unsafe value's problem


def _instance(name: str) -> Callable[[dict], str]:
    return lambda s: str(Path(s["INSTANCE_PATH"]) / name)


def _stripe_js(s: dict) -> str:
    # A local fake Stripe (localstripe) serves its own Stripe.js beside its API.
    base = s["STRIPE_API_BASE"].rstrip("/")
    return f"{base}/js.stripe.com/v3/" if base else "https://js.stripe.com/v3/"


def _app_url(s: dict) -> str:
    portal = urlsplit(s["PORTAL_URL"] or "")
    if portal.scheme and portal.netloc:
        return urlunsplit((portal.scheme, portal.netloc, "", "", ""))
    return None if s["RECOURSE_ENV"] == "production" else DEV_APP_URL


def _stripe_api_base_in_production(value: Any) -> str | None:
    if value:
        return f"STRIPE_API_BASE must be unset in production (it sends payments to {value!r}, not Stripe)"
    return None


def _secure_cookies_in_production(value: Any) -> str | None:
    if not value:
        return "SESSION_COOKIE_SECURE must be true in production (serve the app over HTTPS)"
    return None


def _mfa_in_production(value: Any) -> str | None:
    if not value:
        return "MFA_REQUIRED must be true in production (16 CFR 314.4(c)(5))"
    return None


def _derived_mfa_key(secret_key: str) -> str:
    """Without MFA_ENCRYPTION_KEY, the key of the TOTP secrets is derived from SECRET_KEY (a
    new SECRET_KEY then makes enrolled secrets unreadable: set MFA_ENCRYPTION_KEY to keep them)."""
    digest = hashlib.sha256(b"recourse-mfa:" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "RECOURSE_ENV",
        "development",
        "`production` refuses to start without the settings marked *production*",
        environment,
    ),
    Setting(
        "DATABASE_URL",
        lambda s: f"sqlite:///{Path(s['INSTANCE_PATH']) / 'recourse.sqlite3'}",
        "e.g. `postgresql://user:pass@host:5432/recourse` (psycopg 3); default a SQLite file under `instance/`",
        secret=True,  # masked: only its password
    ),
    Setting(
        "REDIS_URL",
        "",
        "e.g. `redis://127.0.0.1:6379/0`; then run a worker. Unset: jobs run in-process",
        secret=True,
    ),
    Setting(
        "SECRET_KEY",
        None,  # development: a random key kept in instance/secret_key (see `load`)
        "signs sessions; the same on every machine. Development default: a random key kept in "
        "`instance/secret_key` (0600), shared by the machine's processes",
        secret=True,
        required_in_production=True,
    ),
    Setting("STRIPE_SECRET_KEY", "", "your Stripe account's secret key", secret=True),
    Setting("STRIPE_PUBLISHABLE_KEY", "", "your Stripe account's publishable key"),
    Setting("STRIPE_WEBHOOK_SECRET", "", "the signing secret of the webhook endpoint", secret=True),
    Setting(
        "STRIPE_API_BASE",
        "",
        "a local fake Stripe (localstripe) in development and tests; must be unset in production",
        production_check=_stripe_api_base_in_production,
    ),
    Setting(
        "STRIPE_DESCRIPTOR_PREFIX",
        "",
        "your Stripe account's shortened descriptor (the prefix, 2 to 10 characters), so the "
        "client's name on early-out card statements uses the room left of 22; unset: room for "
        "the longest prefix",
    ),
    Setting("STRIPE_JS_URL", _stripe_js, "Stripe.js; default Stripe's, or the fake Stripe's"),
    Setting(
        "STRIPE_TIMEOUT_SECONDS",
        30,
        "how long a call to Stripe may take (above 0, at most 80 s) before the debtor or "
        "`plans charge-due` is told Stripe is away",
        stripe_timeout,
    ),
    Setting(
        "STRIPE_MAX_RPS",
        lambda s: default_max_rps(s["STRIPE_SECRET_KEY"]),
        "requests a second to Stripe, shared by every process (with REDIS_URL; without, by "
        "this one): default 80 with a live key, 20 with a test key (Stripe allows 100 and 25)",
        whole_number(1, 1000),
    ),
    Setting(
        "STRIPE_SEARCH_MAX_RPS",
        SEARCH_MAX_RPS,
        "Stripe Search API requests a second, within STRIPE_MAX_RPS (Stripe allows about 20)",
        whole_number(1, 1000),
    ),
    Setting("MAIL_SERVER", "", "an SMTP server; unset: no mail is sent"),
    Setting("MAIL_PORT", 25, "the SMTP server's port", whole_number(1, 65535)),
    Setting(
        "MAIL_DEFAULT_SENDER",
        "Recourse <no-reply@recourse.example>",
        "the From of every email",
    ),
    Setting(
        "SMS_API_URL",
        "",
        "a text-message provider: `POST {to, body}` as JSON with `Authorization: Bearer <key>`, "
        "answering `{id}` (`cases/sms.py`); unset: no texts",
    ),
    Setting("SMS_API_KEY", "", "the text-message provider's key", secret=True),
    Setting(
        "AGENCY_NAME",
        "Recourse Collections",
        "the agency's legal name, on every letter, email and text",
        required_in_production=True,
    ),
    Setting(
        "AGENCY_ADDRESS",
        DEMO_ADDRESS,
        "the agency's mailing address, on every letter (where disputes are mailed)",
        required_in_production=True,
        production_check=not_demo("AGENCY_ADDRESS", DEMO_ADDRESS),
    ),
    Setting(
        "AGENCY_PHONE",
        DEMO_PHONE,
        "the agency's telephone number, on every letter",
        required_in_production=True,
        production_check=not_demo("AGENCY_PHONE", DEMO_PHONE),
    ),
    Setting(
        "AGENCY_HOURS",
        "Monday–Friday 8:00 a.m.–8:00 p.m. Eastern",
        "the hours the agency answers the phone, on letters",
    ),
    Setting(
        "AGENCY_TIMEZONE",
        "America/New_York",
        "the agency's time zone: its today, and the statement month",
        time_zone,
    ),
    Setting(
        "PORTAL_URL",
        f"{DEV_APP_URL}/portal/login",
        "the debtor portal's public address, printed on letters (where disputes are accepted "
        "electronically), emails and texts, e.g. `https://pay.agency.example/portal/login`",
        web_address,
        required_in_production=True,
        production_check=must_be_https("PORTAL_URL"),
    ),
    Setting(
        "APP_URL",
        _app_url,
        "the public address of the staff and client pages, in emails to client users; default "
        "the scheme and host of `PORTAL_URL` (development: `http://127.0.0.1:5000`)",
        web_address,
        production_check=must_be_https("APP_URL"),
    ),
    Setting(
        "TRUSTED_PROXIES",
        0,
        "how many reverse proxies (nginx, a load balancer) stand in front of the app; their "
        "`X-Forwarded-*` headers are believed, no one else's (0–5)",
        whole_number(0, 5),
    ),
    Setting(
        "SESSION_COOKIE_SECURE",
        True,
        "cookies only over HTTPS; `make run` sets it to `false` (plain HTTP); production requires it",
        boolean,
        production_check=_secure_cookies_in_production,
    ),
    Setting(
        "DOCUMENT_STORE",
        _instance("documents"),
        "where uploaded documents and generated PDFs are kept; default `instance/documents`",
    ),
    Setting(
        "AUTOPAY_WORKERS",
        1,
        f"worker processes of the daily autopay job, 1–{MAX_AUTOPAY_WORKERS} "
        "(as `plans charge-due --workers`)",
        whole_number(1, MAX_AUTOPAY_WORKERS),
    ),
    Setting(
        "STAFF_IDLE_MINUTES",
        30,
        "a staff or client user's session ends after this many minutes idle",
        whole_number(1),
    ),
    Setting(
        "PORTAL_IDLE_MINUTES",
        15,
        "a debtor's portal session ends after this many minutes idle",
        whole_number(1),
    ),
    Setting(
        "SESSION_LIFETIME_HOURS",
        12,
        "every session ends this many hours after sign-in, however active",
        whole_number(1),
    ),
    Setting(
        "MFA_REQUIRED",
        True,
        "staff and client users sign in with a TOTP code after the password (docs/security.md); "
        "`make run` and the tests set it to `false`; production requires it",
        boolean,
        production_check=_mfa_in_production,
    ),
    Setting(
        "MFA_ENCRYPTION_KEY",
        None,
        "the Fernet key that encrypts the TOTP secrets at rest; default derived from `SECRET_KEY`",
        fernet_key,
        secret=True,
    ),
)
BY_NAME = {setting.name: setting for setting in SETTINGS}
ENV_KEYS = tuple(BY_NAME)


class ConfigError(ValueError):
    """The settings stop the app: each problem on its own line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(
            "Recourse refuses to start; fix these settings:\n"
            + "\n".join(f"  - {p}" for p in problems)
        )


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


def _given(name: str, environ: Mapping[str, str], overrides: Mapping[str, Any]) -> Any:
    """The mapping's value, else the environment's; None when neither gives one (an empty
    variable is as good as none)."""
    value = overrides[name] if name in overrides else environ.get(name)
    return None if value is None or value == "" else value


def load(instance_path: str, environ: Mapping[str, str], overrides: Mapping[str, Any]) -> dict:
    """Every setting of the table, parsed, plus Flask's own; `CONFIG_PROBLEMS` lists what is
    wrong (a value that does not parse, anywhere; a missing or unsafe setting, in production)."""
    problems: list[str] = []
    values: dict[str, Any] = {"INSTANCE_PATH": instance_path}
    mode = _given("RECOURSE_ENV", environ, overrides) or "development"
    production = str(mode).strip().lower() == "production"  # anything else: a problem below
    for setting in SETTINGS:
        raw = _given(setting.name, environ, overrides)
        if raw is None:
            if production and setting.required_in_production:
                values[setting.name] = None
                problems.append(f"{setting.name} is missing (required in production)")
                continue
            raw = setting.default(values) if callable(setting.default) else setting.default
        try:
            values[setting.name] = raw if raw is None else setting.parse(raw)
        except ValueError as exc:
            values[setting.name] = None
            problems.append(f"{setting.name} {exc}")
            continue
        if production and setting.production_check:
            problem = setting.production_check(values[setting.name])
            if problem:
                problems.append(problem)
    del values["INSTANCE_PATH"]
    if not values["SECRET_KEY"] and not production:
        values["SECRET_KEY"] = instance_secret_key(Path(instance_path))
    if not values["MFA_ENCRYPTION_KEY"] and values["SECRET_KEY"]:
        values["MFA_ENCRYPTION_KEY"] = _derived_mfa_key(values["SECRET_KEY"])

    settings = {**values, **{k: v for k, v in overrides.items() if k not in BY_NAME}}
    settings["CONFIG_PROBLEMS"] = problems
    settings["SQLALCHEMY_DATABASE_URI"] = database_uri(settings["DATABASE_URL"] or "")
    settings.setdefault("SESSION_COOKIE_HTTPONLY", True)
    settings.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    settings.setdefault("REMEMBER_COOKIE_SECURE", settings["SESSION_COOKIE_SECURE"])
    settings.setdefault("REMEMBER_COOKIE_HTTPONLY", True)
    settings.setdefault("WTF_CSRF_TIME_LIMIT", None)
    # A request body: 10 MB documents (shell.document_store.MAX_UPLOAD_BYTES) plus room for the
    # multipart envelope; the referral uploads alone take 200 MB files
    # (cases.referral_file.MAX_FILE_BYTES: a million rows is ~150 MB), see shell.input_guard.
    # Werkzeug spools a large upload to disk.
    settings.setdefault("MAX_CONTENT_LENGTH", 11 * 1024 * 1024)
    settings.setdefault("REFERRAL_MAX_CONTENT_LENGTH", 201 * 1024 * 1024)
    return settings


def production(config: Mapping[str, Any]) -> bool:
    return config.get("RECOURSE_ENV") == "production"


def masked(setting: Setting, value: Any) -> str:
    """A setting's value as `config check` prints it: secrets hidden, a URL's password too."""
    if value is None or value == "":
        return "(unset)"
    if setting.secret:
        parts = urlsplit(str(value))
        if parts.scheme and "://" in str(value):  # a URL: only its password is secret
            if parts.password:
                netloc = parts.netloc.replace(f":{parts.password}@", ":********@", 1)
                return urlunsplit(parts._replace(netloc=netloc))
            return str(value)
        return "******** (set)"
    return str(value)
