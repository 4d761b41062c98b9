"""The production layout of docs/deploy.md, end to end: Debian's nginx with the repository's
site (deploy/nginx/recourse.conf) and a self-signed certificate terminates TLS in front of
gunicorn (deploy/gunicorn.conf.py); an RQ worker and the cron scheduler run beside it;
RECOURSE_ENV=production with TRUSTED_PROXIES=1, on PostgreSQL and Redis. A staff user signs in
over HTTPS with a password.

Runs with `make test-smoke`. Without nginx, PostgreSQL or Redis it is skipped, saying why,
unless CI=true: then it fails."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyotp
import pytest
import redis
import requests
from rq import Worker

from tests.conftest import _reset_postgres

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "smoke-test-password-42"
ADMIN = "smoke-admin@agency.example"


def cannot_run(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and the production smoke test cannot run: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def services() -> tuple[str, str]:
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if not nginx:
        cannot_run("nginx is not installed (apt-get install nginx)")
    database = os.environ.get("TEST_DATABASE_URL", "")
    redis_url = os.environ.get("TEST_REDIS_URL", "")
    if not database.startswith("postgres") or not redis_url:
        cannot_run("needs TEST_DATABASE_URL (PostgreSQL) and TEST_REDIS_URL (make test-smoke)")
    with redis.Redis.from_url(redis_url) as connection:
        try:
            connection.ping()
        except redis.RedisError as exc:
            cannot_run(f"Redis does not answer at {redis_url}: {exc}")
        connection.flushdb()
    smoke_database = f"{database}_smoke"
    _reset_postgres(smoke_database)
    return nginx, smoke_database, redis_url


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "fullchain.pem", folder / "privkey.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def nginx_config(folder: Path, https: int, http: int, app: int, cert: Path, key: Path) -> Path:
    """The repository's site as it is, but for its ports and certificate, in a minimal
    nginx.conf of its own (no root-owned paths, in the foreground)."""
    site = (ROOT / "deploy" / "nginx" / "recourse.conf").read_text()
    for old, new in (
        ("server 127.0.0.1:8000;", f"server 127.0.0.1:{app};"),
        ("listen 443 ssl;", f"listen 127.0.0.1:{https} ssl;"),
        ("listen 80;", f"listen 127.0.0.1:{http};"),
        ("/etc/ssl/recourse/fullchain.pem", str(cert)),
        ("/etc/ssl/recourse/privkey.pem", str(key)),
    ):
        assert old in site, f"deploy/nginx/recourse.conf no longer has {old!r}"
        site = site.replace(old, new)
    (folder / "recourse.conf").write_text(site)
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = folder / "nginx.conf"
    conf.write_text(
        f"{user}worker_processes 1;\npid {folder}/nginx.pid;\nerror_log {folder}/error.log;\n"
        "events { worker_connections 64; }\n"
        f"http {{\n access_log {folder}/access.log;\n"
        + "".join(f" {kind}_temp_path {folder}/{kind};\n" for kind in
                  ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        + f" include {folder}/recourse.conf;\n}}\n"
    )  # fmt: skip
    return conf


class Processes:
    def __init__(self, folder: Path):
        self.folder = folder
        self.running: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, command: list[str], env: dict) -> subprocess.Popen:
        with (self.folder / f"{name}.log").open("w") as log:
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.running.append((name, process))
        return process

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{self.log(name)[-3000:]}" for name, _ in self.running)

    def stop(self) -> None:
        for _, process in reversed(self.running):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for _, process in self.running:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def flask(env: dict, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=ROOT, env=env, input=stdin, capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def csrf_token(page: requests.Response) -> str:
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text)
    token = token or re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text)
    assert token, page.text[:2000]
    return token.group(1)


def post_form(session: requests.Session, url: str, page: requests.Response, **fields):
    """Post a form as a browser would: its CSRF token and a same-origin Referer."""
    return session.post(
        url,
        data={**fields, "csrf_token": csrf_token(page)},
        headers={"Referer": url},
        allow_redirects=False,
    )


def real_time() -> int:
    """The machine's clock, as the servers see it (the suite freezes this process's clock)."""
    return int(subprocess.run(["date", "+%s"], capture_output=True, text=True).stdout)


def enrol(session: requests.Session, link: str) -> str:
    """Set up the authenticator from the enrolment link `users create` printed; returns the
    TOTP secret shown on the page (as text beside the QR code)."""
    page = session.get(link)
    assert page.status_code == 200, page.text[:2000]
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page.text).group(1)
    done = post_form(session, link, page, code=pyotp.TOTP(secret).at(real_time()))
    flashes = re.findall(r"class=\"flash[^>]*>([^<]+)<", done.text)
    assert done.status_code == 200 and "recovery" in done.text.lower(), (done.status_code, flashes)
    return secret


def sign_in(session: requests.Session, base: str, email: str, password: str, secret: str):
    """Sign in at /login with the password, then /login/code with a TOTP code computed by
    pyotp; returns the redirect to the page the sign-in lands on."""
    page = session.get(f"{base}/login")
    assert page.status_code == 200, page.text
    answer = post_form(session, f"{base}/login", page, email=email, password=password)
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/login/code")
    page = session.get(f"{base}/login/code")
    assert page.status_code == 200, page.text[:2000]
    # The next 30-second step's code: the enrolment just used this step's, and a code is
    # accepted once.
    code = pyotp.TOTP(secret).at(real_time() + 30)
    answer = post_form(session, f"{base}/login/code", page, code=code)
    assert answer.status_code == 302, answer.text[:2000]
    return answer


def test_production_behind_nginx_over_https(services, tmp_path):
    nginx, database_url, redis_url = services
    https, http, app_port = free_port(), free_port(), free_port()
    base = f"https://localhost:{https}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECOURSE_", "FLASK_"))}
    env.update(
        PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        RECOURSE_ENV="production",
        SECRET_KEY="smoke-test-secret-key-0123456789abcdef",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        TRUSTED_PROXIES="1",
        PORTAL_URL=f"{base}/portal/login",
        AGENCY_NAME="Smoke Test Recovery LLC",
        AGENCY_ADDRESS="1 Test Plaza, Duluth, MN 55802",
        AGENCY_PHONE="(218) 555-0100",
        DOCUMENT_STORE=str(tmp_path / "documents"),
        RECOURSE_BIND=f"127.0.0.1:{app_port}",
        WEB_CONCURRENCY="2",
        STRIPE_API_BASE="",
        SESSION_COOKIE_SECURE="true",
    )

    check = flask(env, "config", "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "Recourse settings (production mode)" in check.stdout
    upgrade = flask(env, "db", "upgrade")
    assert upgrade.returncode == 0, upgrade.stderr
    created = flask(env, "users", "create", ADMIN, "--role", "admin", stdin=PASSWORD + "\n")
    assert created.returncode == 0, created.stdout + created.stderr
    link = re.search(r"https://\S+/enrol/\S+", created.stdout)
    assert link, created.stdout  # production requires a second factor: an enrolment link

    cert, key = self_signed_certificate(tmp_path)
    conf = nginx_config(tmp_path, https, http, app_port, cert, key)
    processes = Processes(tmp_path)
    try:
        python = [sys.executable, "-m"]
        processes.start(
            "gunicorn", [*python, "gunicorn", "-c", "deploy/gunicorn.conf.py", "wsgi:app"], env
        )
        processes.start("worker", [*python, "flask", "--app", "wsgi", "worker"], env)
        processes.start(
            "scheduler", [*python, "flask", "--app", "wsgi", "reminders", "schedule"], env
        )
        processes.start(
            "nginx", [nginx, "-c", str(conf), "-p", str(tmp_path), "-g", "daemon off;"], env
        )

        session = requests.Session()
        session.trust_env = False  # no proxy or CA bundle from the environment
        session.verify = str(cert)
        health, problem = None, None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                health = session.get(f"{base}/healthz", timeout=10)
                if health.status_code == 200:
                    break
            except requests.RequestException as exc:
                problem = exc
            time.sleep(0.5)
        assert health is not None and health.status_code == 200, f"{problem}\n{processes.logs()}"
        assert health.json() == {
            "status": "ok",
            "mode": "production",
            "checks": {"database": "ok", "redis": "ok"},
        }
        assert health.headers["Strict-Transport-Security"].startswith("max-age=")

        # Plain HTTP only redirects to HTTPS.
        plain = session.get(f"http://localhost:{http}/login", allow_redirects=False, timeout=10)
        assert plain.status_code == 301 and plain.headers["Location"].startswith("https://")

        secret = enrol(session, link.group(0))
        landed = sign_in(session, base, ADMIN, PASSWORD, secret)
        cookie = next(c for c in session.cookies if c.name == "session")
        assert cookie.secure  # sent only over HTTPS, and it works through the proxy
        home = session.get(
            f"{base}{landed.headers['Location']}"
            if landed.headers["Location"].startswith("/")
            else landed.headers["Location"]
        )
        assert home.status_code == 200 and home.url.startswith(base)
        assert ADMIN in home.text or "Sign out" in home.text, home.text[:2000]

        # The worker and the scheduler are up against the same Redis.
        with redis.Redis.from_url(redis_url) as connection:
            workers = Worker.all(connection=connection)
        assert workers and {"default", "mail"} <= set(workers[0].queue_names())
        for name, process in processes.running:
            assert process.poll() is None, f"{name} stopped:\n{processes.log(name)}"
        assert "DEVELOPMENT mode" not in processes.log("gunicorn")
    finally:
        processes.stop()
