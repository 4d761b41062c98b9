"""Fixtures for the real-browser tests: the app served over HTTP from a thread, on a database
of its own, and Debian's Chromium driven by Playwright.

The fixtures in tests/conftest.py hold each test in one rolled-back transaction on a single
connection, which a server thread cannot share; so these tests commit for real, to a database
made for them, and never request `db_session` or `client`."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_migrate import upgrade
from werkzeug.serving import make_server

from agency import create_app
from portal import pages
from shell.extensions import db
from shell.settings import database_uri

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
TIMEOUT_MS = 10_000


@pytest.fixture(scope="session", autouse=True)
def _chromium() -> None:
    """Without Chromium these tests skip on a workstation; in CI they must run."""
    if os.path.exists(CHROMIUM):
        return
    message = f"{CHROMIUM} is missing: install Debian's chromium package (.ci/run does)"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _fresh_postgres(url: str) -> str:
    """A new, empty database beside the test one (its name + `_browser`); its URL."""
    target = sa.make_url(database_uri(url))
    target = target.set(database=f"{target.database}_browser")
    server = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    server.dispose()
    return target.render_as_string(hide_password=False)


def build_browser_app(tmp_path_factory, **config) -> Iterator[Flask]:
    """An app on its own database, schema from the migrations; jobs run in-process."""
    url = os.environ.get("TEST_DATABASE_URL", "")
    if url.startswith("postgres"):
        url = _fresh_postgres(url)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('browser-db') / 'browser.sqlite3'}"
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": url,
            "REDIS_URL": "",
            "SECRET_KEY": "browser",
            "SESSION_COOKIE_SECURE": False,
            "MFA_REQUIRED": False,  # staff sign in with a password alone here
            # Tests move the clock overnight with a collector signed in (as tests/conftest.py).
            "STAFF_IDLE_MINUTES": 365 * 24 * 60,
            "SESSION_LIFETIME_HOURS": 365 * 24,
            "DOCUMENT_STORE": str(tmp_path_factory.mktemp("browser-documents")),
            **config,
        }
    )
    with app.app_context():
        upgrade()
    yield app
    with app.app_context():
        db.engine.dispose()
        pages.dispose(app)


@pytest.fixture(scope="module")
def browser_app(tmp_path_factory) -> Iterator[Flask]:
    yield from build_browser_app(tmp_path_factory)


@pytest.fixture(scope="module")
def live_server(browser_app) -> Iterator[str]:
    """The app served on 127.0.0.1 from a daemon thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, browser_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser, live_server):
    """A fresh browser context (no cookies) per test, with relative URLs on the live server."""
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    context = browser.new_context(base_url=live_server, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()
