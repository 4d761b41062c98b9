"""Settings from the environment: a bad value stops the app with a message naming it."""

import pytest

from agency import create_app


@pytest.mark.parametrize("value", ["0", "7", "four", ""])
def test_autopay_workers_out_of_range_are_refused_by_name(value, monkeypatch):
    monkeypatch.setenv("AUTOPAY_WORKERS", "2")
    if value:
        with pytest.raises(ValueError, match="AUTOPAY_WORKERS must be a whole number from 1 to 6"):
            create_app({"DATABASE_URL": "sqlite://", "AUTOPAY_WORKERS": value})
    else:  # an empty variable is as good as none: the default
        monkeypatch.setenv("AUTOPAY_WORKERS", "")
        assert create_app({"DATABASE_URL": "sqlite://"}).config["AUTOPAY_WORKERS"] == 1


def test_autopay_workers_from_the_environment(monkeypatch):
    monkeypatch.setenv("AUTOPAY_WORKERS", "4")
    assert create_app({"DATABASE_URL": "sqlite://"}).config["AUTOPAY_WORKERS"] == 4


@pytest.mark.parametrize("value", ["0", "-1", "81", "soon"])
def test_a_stripe_timeout_out_of_range_is_refused_by_name(value):
    with pytest.raises(ValueError, match="STRIPE_TIMEOUT_SECONDS must be a number of seconds"):
        create_app({"DATABASE_URL": "sqlite://", "STRIPE_TIMEOUT_SECONDS": value})


def test_the_gateway_waits_on_stripe_as_long_as_set(monkeypatch):
    monkeypatch.setenv("STRIPE_TIMEOUT_SECONDS", "2.5")
    app = create_app({"DATABASE_URL": "sqlite://", "STRIPE_SECRET_KEY": "sk_test_x"})
    assert app.config["STRIPE_TIMEOUT_SECONDS"] == 2.5
    assert app.extensions["recourse.gateway"]._http._timeout == 2.5
    monkeypatch.delenv("STRIPE_TIMEOUT_SECONDS")
    app = create_app({"DATABASE_URL": "sqlite://", "STRIPE_SECRET_KEY": "sk_test_x"})
    assert app.extensions["recourse.gateway"]._http._timeout == 30


def test_without_secret_key_every_process_of_the_machine_signs_alike(tmp_path):
    """gunicorn -w 2 without SECRET_KEY: both workers must accept each other's sessions."""
    import stat
    import subprocess
    import sys

    from shell.settings import instance_secret_key

    code = "import sys; from pathlib import Path; from shell.settings import instance_secret_key;"
    code += "print(instance_secret_key(Path(sys.argv[1])))"
    keys = {
        subprocess.run(
            [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(3)
    }
    assert len(keys) == 1 and len(keys.pop()) == 64
    assert instance_secret_key(tmp_path) == (tmp_path / "secret_key").read_text().strip()
    assert stat.S_IMODE((tmp_path / "secret_key").stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]  # no drafts left behind
