"""Money as people type it ("1,234.56", "$20") read into integer cents, never a float."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from wtforms import StringField

_AMOUNT = re.compile(r"^\$?\s*(\d{1,3}(,\d{3})+|\d+)?(\.\d{1,2})?$")


def parse_cents(text: str) -> int:
    """'$1,234.56' -> 123456. Raises ValueError with a plain message."""
    cleaned = (text or "").strip()
    if not cleaned or not _AMOUNT.match(cleaned) or cleaned in ("$", "."):
        raise ValueError("Enter an amount like 1234.56")
    try:
        value = Decimal(cleaned.replace("$", "").replace(",", "").strip())
    except InvalidOperation:
        raise ValueError("Enter an amount like 1234.56") from None
    return int(value * 100)


def format_cents(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100:,}.{abs(cents) % 100:02d}"


class MoneyField(StringField):
    """A text input whose data is integer cents."""

    def process_formdata(self, valuelist):
        self.raw = valuelist[0] if valuelist else ""
        self.data = None
        if self.raw.strip():
            try:
                self.data = parse_cents(self.raw)
            except ValueError as exc:
                raise ValueError(str(exc)) from None

    def _value(self):
        return getattr(self, "raw", None) or (format_cents(self.data) if self.data else "")
