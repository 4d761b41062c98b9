"""The migration that gave API tokens a scope and an expiry keeps existing tokens working as
they did (write), for 90 days from the upgrade."""

import datetime as dt

import sqlalchemy as sa
from flask_migrate import upgrade

from agency import create_app
from cases.model import utcnow
from cases.users import ApiToken
from shell.extensions import db


def test_tokens_issued_before_scopes_keep_write_and_expire_in_90_days(tmp_path):
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'old.sqlite3'}",
            "REDIS_URL": "",
            "SECRET_KEY": "s",
        }
    )
    with app.app_context():
        upgrade(revision="be239ee52297")
        with db.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO users (id, email, name, password_hash, role, active, created_at)"
                    " VALUES (1, 'ops@agency.test', '', 'x', 'collector', 1, '2026-11-01')"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO api_tokens (user_id, token_hash, prefix, created_at)"
                    " VALUES (1, :hash, 'rc_old1234', '2026-11-01')"
                ),
                {"hash": "a" * 64},
            )
        upgrade()
        token = db.session.scalar(sa.select(ApiToken))
        assert token.scope == "write"
        assert abs(token.expires_at - (utcnow() + dt.timedelta(days=90))) < dt.timedelta(hours=1)
        db.session.remove()
        db.engine.dispose()
