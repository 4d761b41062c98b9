"""The migrations build the whole schema from empty, and the models agree with them."""

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from shell.extensions import db


def test_migrations_match_the_models(app, db_session):
    # The session-wide database was built by `flask db upgrade` from empty (conftest).
    # On the test's own connection: SQLite admits one transaction at a time.
    context = MigrationContext.configure(db_session.connection(), opts={"compare_type": True})
    diff = compare_metadata(context, db.metadata)
    assert diff == []


def test_db_upgrade_on_an_empty_database_then_check(tmp_path, database_url):
    """`flask db upgrade` then `flask db check`, through the CLI, on a fresh database."""
    import subprocess
    import sys

    if database_url.startswith("postgres"):
        # Named after the test database, so runs on different test databases never collide.
        name = database_url.rsplit("/", 1)[1].split("?")[0]
        url = database_url.rsplit("/", 1)[0] + f"/{name}_migration_check"
        _recreate_postgres(url)
    else:
        url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    env = {"DATABASE_URL": url, "PATH": "/usr/bin:/bin", "REDIS_URL": ""}
    flask = [sys.executable, "-m", "flask", "--app", "wsgi", "db"]
    root = str(Path(__file__).parent.parent)
    upgrade = subprocess.run([*flask, "upgrade"], env=env, capture_output=True, text=True, cwd=root)
    assert upgrade.returncode == 0, upgrade.stderr
    check = subprocess.run([*flask, "check"], env=env, capture_output=True, text=True, cwd=root)
    assert check.returncode == 0, check.stderr
    assert "No new upgrade operations detected" in check.stdout + check.stderr


def _recreate_postgres(url: str) -> None:
    import sqlalchemy as sa

    from shell.settings import database_uri

    target = sa.make_url(database_uri(url))
    server = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{target.database}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    server.dispose()
