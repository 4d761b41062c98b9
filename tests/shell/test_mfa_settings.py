"""The second factor's settings: MFA_REQUIRED (on unless turned off) and MFA_ENCRYPTION_KEY."""

import pytest
from cryptography.fernet import Fernet

from agency import create_app


def config(**settings):
    return create_app({"DATABASE_URL": "sqlite://", "SECRET_KEY": "s", **settings}).config


def test_the_second_factor_is_required_unless_turned_off(monkeypatch):
    monkeypatch.delenv("MFA_REQUIRED", raising=False)
    assert config()["MFA_REQUIRED"] is True
    for value, required in (("false", False), ("0", False), ("true", True), ("", True)):
        monkeypatch.setenv("MFA_REQUIRED", value)
        assert config()["MFA_REQUIRED"] is required, value


def test_the_encryption_key_is_given_or_derived_from_the_secret_key(monkeypatch):
    monkeypatch.delenv("MFA_ENCRYPTION_KEY", raising=False)
    derived = config()["MFA_ENCRYPTION_KEY"]
    Fernet(derived)  # a usable key
    assert derived == config()["MFA_ENCRYPTION_KEY"]  # the same in every process
    assert derived != config(SECRET_KEY="another")["MFA_ENCRYPTION_KEY"]
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("MFA_ENCRYPTION_KEY", key)
    assert config()["MFA_ENCRYPTION_KEY"] == key


@pytest.mark.parametrize("value", ["short", "x" * 44, "not base64 at all!!"])
def test_a_bad_encryption_key_stops_the_app_naming_it(value):
    with pytest.raises(ValueError, match="MFA_ENCRYPTION_KEY must be a Fernet key"):
        config(MFA_ENCRYPTION_KEY=value)
