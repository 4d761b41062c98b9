"""Production mode (SPEC §10): `config check`, the refusal to start, /healthz's mode, and the
warning of a development app served by gunicorn."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from flask import request

from agency import create_app
from shell import settings

ROOT = Path(__file__).resolve().parents[2]
GOOD_PRODUCTION = {
    "RECOURSE_ENV": "production",
    "SECRET_KEY": "a-long-secret-key-for-the-tests-0123456789",
    "STRIPE_SECRET_KEY": "sk_live_never_printed_42",
    "AGENCY_NAME": "Lakeside Recovery LLC",
    "AGENCY_ADDRESS": "42 Harbor Road, Duluth, MN 55802",
    "AGENCY_PHONE": "(218) 555-0142",
    "PORTAL_URL": "https://pay.lakeside.example/portal/login",
}
BROKEN_PRODUCTION = {
    "RECOURSE_ENV": "production",
    "STRIPE_SECRET_KEY": "sk_live_never_printed_42",
    "STRIPE_API_BASE": "http://127.0.0.1:8420",
    "SESSION_COOKIE_SECURE": "false",
    "AGENCY_NAME": "Lakeside Recovery LLC",
}


def environment(tmp_path: Path, **values: str) -> dict[str, str]:
    """This process's environment without any setting of ours, then `values`."""
    env = {k: v for k, v in os.environ.items() if k not in settings.BY_NAME}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'config.sqlite3'}",
        PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )
    env.update(values)
    return env


def config_check(tmp_path: Path, **values: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "config", "check"],
        cwd=ROOT,
        env=environment(tmp_path, **values),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_config_check_names_every_problem_of_a_broken_production_configuration(tmp_path):
    done = config_check(
        tmp_path, **BROKEN_PRODUCTION, DATABASE_URL="postgresql://app:hunter2@db.internal/recourse"
    )
    assert done.returncode == 1, done.stderr
    out = done.stdout
    for problem in (
        "SECRET_KEY is missing (required in production)",
        "PORTAL_URL is missing (required in production)",
        "AGENCY_ADDRESS is missing (required in production)",
        "AGENCY_PHONE is missing (required in production)",
        "STRIPE_API_BASE must be unset in production",
        "SESSION_COOKIE_SECURE must be true in production",
    ):
        assert f"  - {problem}" in out
    assert "6 problem(s)" in out and "AGENCY_NAME is missing" not in out
    # The effective settings, secrets masked.
    assert "Recourse settings (production mode)" in out
    assert re.search(r"^  AGENCY_NAME +Lakeside Recovery LLC$", out, re.M)
    assert "postgresql://app:********@db.internal/recourse" in out
    assert "hunter2" not in out and "sk_live_never_printed_42" not in out
    print(out)  # the report quotes it


def test_config_check_passes_a_good_production_configuration_with_secrets_masked(tmp_path):
    done = config_check(tmp_path, **GOOD_PRODUCTION)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No problems." in done.stdout
    # One column for the values, as wide as the longest name needs.
    assert re.search(r"^  SECRET_KEY +\*{8} \(set\)$", done.stdout, re.M)
    assert re.search(r"^  APP_URL +https://pay\.lakeside\.example$", done.stdout, re.M)
    for secret in (GOOD_PRODUCTION["SECRET_KEY"], GOOD_PRODUCTION["STRIPE_SECRET_KEY"]):
        assert secret not in done.stdout + done.stderr


def test_config_check_names_a_value_that_does_not_parse_in_development_too(tmp_path):
    done = config_check(tmp_path, TRUSTED_PROXIES="two", AGENCY_TIMEZONE="Mars/Olympus")
    assert done.returncode == 1
    assert "Recourse settings (development mode)" in done.stdout
    assert "  - TRUSTED_PROXIES must be a whole number from 0 to 5, not 'two'" in done.stdout
    assert "  - AGENCY_TIMEZONE 'Mars/Olympus' is not a time zone" in done.stdout


def test_production_refuses_to_start_naming_each_missing_or_unsafe_setting(tmp_path):
    with pytest.raises(settings.ConfigError) as refused:
        create_app({"DATABASE_URL": "sqlite://", **BROKEN_PRODUCTION})
    message = str(refused.value)
    assert message.startswith("Recourse refuses to start")
    assert refused.value.problems == [
        "SECRET_KEY is missing (required in production)",
        "STRIPE_API_BASE must be unset in production (it sends payments to "
        "'http://127.0.0.1:8420', not Stripe)",
        "AGENCY_ADDRESS is missing (required in production)",
        "AGENCY_PHONE is missing (required in production)",
        "PORTAL_URL is missing (required in production)",
        "SESSION_COOKIE_SECURE must be true in production (serve the app over HTTPS)",
    ]
    # Production never falls back to the demo agency or a key made up on this machine.
    for demo in ({"AGENCY_ADDRESS": settings.DEMO_ADDRESS}, {"PORTAL_URL": "http://x.example"}):
        with pytest.raises(settings.ConfigError):
            create_app({"DATABASE_URL": "sqlite://", **GOOD_PRODUCTION, **demo})


def test_production_refuses_to_start_without_the_second_factor(tmp_path):
    with pytest.raises(settings.ConfigError) as refused:
        create_app({"DATABASE_URL": "sqlite://", **GOOD_PRODUCTION, "MFA_REQUIRED": "false"})
    assert refused.value.problems == [
        "MFA_REQUIRED must be true in production (16 CFR 314.4(c)(5))"
    ]
    done = config_check(tmp_path, **GOOD_PRODUCTION, MFA_REQUIRED="false")
    assert done.returncode == 1
    assert "  - MFA_REQUIRED must be true in production (16 CFR 314.4(c)(5))" in done.stdout


def test_production_with_every_setting_starts_and_healthz_says_so():
    app = create_app({"DATABASE_URL": "sqlite://", **GOOD_PRODUCTION})
    assert app.config["AGENCY_ADDRESS"] == "42 Harbor Road, Duluth, MN 55802"
    assert app.config["APP_URL"] == "https://pay.lakeside.example"
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.json["mode"] == "production"


def test_healthz_reports_development_mode(client):
    assert client.get("/healthz").json["mode"] == "development"


def test_settings_come_from_the_environment(monkeypatch):
    for name, value in GOOD_PRODUCTION.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TRUSTED_PROXIES", "1")
    app = create_app({"DATABASE_URL": "sqlite://"})
    assert app.config["RECOURSE_ENV"] == "production"
    assert app.config["AGENCY_PHONE"] == "(218) 555-0142"
    assert app.config["TRUSTED_PROXIES"] == 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_with_gunicorn(tmp_path: Path, **values: str) -> tuple[int | None, str, dict | None]:
    """Start gunicorn on wsgi:app; its exit code (None while it serves), its log, /healthz."""
    port = _free_port()
    log = tmp_path / f"gunicorn-{port}.log"
    with log.open("w") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", "1", "-b", f"127.0.0.1:{port}", "wsgi:app"],
            cwd=ROOT,
            env=environment(tmp_path, **values),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    health = None
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.poll() is None:
            try:
                health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10).json()
                break
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.2)
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
            code = None
        else:
            code = server.returncode
    return code, log.read_text(), health


WARNING = "Recourse is served by gunicorn in DEVELOPMENT mode"


def test_gunicorn_in_development_mode_warns_at_start(tmp_path):
    code, log, health = serve_with_gunicorn(tmp_path)
    assert code is None and health["mode"] == "development", log
    assert WARNING in log


def test_gunicorn_in_production_mode_does_not_warn(tmp_path):
    code, log, health = serve_with_gunicorn(
        tmp_path, **GOOD_PRODUCTION, DATABASE_URL=f"sqlite:///{tmp_path / 'prod.sqlite3'}"
    )
    assert code is None and health["mode"] == "production", log
    assert WARNING not in log


def test_gunicorn_refuses_to_serve_a_broken_production_configuration(tmp_path):
    code, log, health = serve_with_gunicorn(tmp_path, **BROKEN_PRODUCTION)
    assert code not in (None, 0) and health is None
    assert "Recourse refuses to start" in log and "PORTAL_URL is missing" in log


def _seen_by_the_app(trusted_proxies: int) -> dict:
    app = create_app({"DATABASE_URL": "sqlite://", "TRUSTED_PROXIES": trusted_proxies})
    app.add_url_rule(
        "/probe",
        "probe",
        lambda: {"address": request.remote_addr, "scheme": request.scheme, "host": request.host},
    )
    forwarded = {
        "X-Forwarded-For": "203.0.113.9",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "recourse.example",
        "X-Forwarded-Port": "443",
    }
    return app.test_client().get("/probe", headers=forwarded).json


def test_trusted_proxies_decides_whether_forwarded_headers_are_believed():
    assert _seen_by_the_app(0) == {"address": "127.0.0.1", "scheme": "http", "host": "localhost"}
    assert _seen_by_the_app(1) == {
        "address": "203.0.113.9",
        "scheme": "https",
        "host": "recourse.example",
    }
