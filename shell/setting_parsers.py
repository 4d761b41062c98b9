"""How settings' values are read (the parsers) and what production checks of them: each parser
takes the raw value (text from the environment, or any value from create_app's mapping) and
returns the value, or raises ValueError with a message that follows the setting's name."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ENVIRONMENTS = ("development", "production")


def text(value: Any) -> str:
    return str(value).strip()


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{value!r} is not true or false")


def whole_number(low: int, high: int | None = None) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        try:
            number = int(str(value).strip())
        except ValueError:
            number = None
        if number is None or number < low or (high is not None and number > high):
            upto = f" to {high}" if high is not None else " or more"
            raise ValueError(f"must be a whole number from {low}{upto}, not {value!r}")
        return number

    return parse


def environment(value: Any) -> str:
    word = str(value).strip().lower()
    if word not in ENVIRONMENTS:
        raise ValueError(f"must be development or production, not {value!r}")
    return word


def time_zone(value: Any) -> str:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not a time zone (e.g. America/New_York)") from None
    return str(value)


def web_address(value: Any) -> str:
    url = str(value).strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} is not a web address (https://host/...)")
    return url


# --- checks that only production makes: each returns a problem, or None.


def must_be_https(name: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value and not str(value).startswith("https://"):
            return f"{name} must be an https:// address in production, not {value!r}"
        return None

    return check


def not_demo(name: str, demo: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return f"{name} is the demo agency's ({demo!r})" if value == demo else None

    return check


def fernet_key(value: Any) -> str:
    """A Fernet key: 32 bytes in URL-safe base64."""
    try:
        if len(base64.urlsafe_b64decode(str(value).encode())) == 32:
            return str(value)
    except (ValueError, TypeError):
        pass
    raise ValueError(
        "must be a Fernet key (32 bytes in URL-safe base64, e.g. from `python -c 'from "
        "cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)"
    )


MAX_STRIPE_TIMEOUT_SECONDS = 80  # Stripe's own client waits 80 s


def stripe_timeout(value: Any) -> float:
    try:
        seconds = float(str(value).strip())
    except ValueError:
        seconds = 0.0
    if not 0 < seconds <= MAX_STRIPE_TIMEOUT_SECONDS:
        raise ValueError(
            f"must be a number of seconds above 0, at most {MAX_STRIPE_TIMEOUT_SECONDS}, "
            f"not {value!r}"
        )
    return seconds
