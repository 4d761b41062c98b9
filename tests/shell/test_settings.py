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
