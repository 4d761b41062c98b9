"""Money as people type it ("1,234.56", "$20") read into integer cents, never a float."""

from __future__ import annotations

import re

from wtforms import StringField
from wtforms.validators import StopValidation

# "$", spaces, then whole dollars (1234 or 1,234) and/or cents (.5 or .56); a bare "$" or "."
# is not an amount. The digits are read as integers: no float, no Decimal context to round.
_AMOUNT = re.compile(r"\$?\s*(\d{1,3}(?:,\d{3})+|\d+)?(?:\.(\d{1,2}))?")
# Under a trillion dollars, as for a referral (cases/referral_file.py): anything larger is a typo
# or a pasted id, and would not fit the ledger's BIGINT columns for long.
MAX_DOLLAR_DIGITS = 12
MAX_CENTS = 10 ** (MAX_DOLLAR_DIGITS + 2) - 1  # $999,999,999,999.99
_ASK = "Enter an amount like 1234.56"


def parse_cents(text: str) -> int:
    """'$1,234.56' -> 123456. Raises ValueError with a plain message."""
    cleaned = (text or "").strip()
    match = _AMOUNT.fullmatch(cleaned)
    if match is None or not (match.group(1) or match.group(2)):
        raise ValueError(_ASK)
    dollars = (match.group(1) or "0").replace(",", "")
    # The length check first keeps int() off a pasted wall of digits (and its 4,300-digit limit).
    if len(dollars) > 100 or int(dollars) >= 10**MAX_DOLLAR_DIGITS:
        raise ValueError(f"Enter an amount under ${10**MAX_DOLLAR_DIGITS:,}")
    return int(dollars) * 100 + int((match.group(2) or "").ljust(2, "0"))


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


# Percentages as people type them ("25", "33.5%", "12.75 %"), read into basis points.
_PERCENT = re.compile(r"(\d{1,6})?(?:\.(\d{1,2}))?\s*%?")  # the range is for the form to say
_ASK_PERCENT = "Enter a percentage like 25% or 33.5%"


def parse_percent(text: str) -> int:
    """'33.5%' -> 3350 basis points. Raises ValueError with a plain message."""
    match = _PERCENT.fullmatch((text or "").strip())
    if match is None or not (match.group(1) or match.group(2)):
        raise ValueError(_ASK_PERCENT)
    return int(match.group(1) or "0") * 100 + int((match.group(2) or "").ljust(2, "0"))


def format_bps(bps: int) -> str:
    """3350 -> '33.5%', 2500 -> '25%'."""
    whole, part = divmod(bps, 100)
    return f"{whole}.{part:02d}".rstrip("0").rstrip(".") + "%"


class PercentField(StringField):
    """A text input for a percentage ("30%"), whose data is basis points (3000)."""

    def process_formdata(self, valuelist):
        self.raw = valuelist[0] if valuelist else ""
        self.data = None
        if self.raw.strip():
            try:
                self.data = parse_percent(self.raw)
            except ValueError as exc:
                raise ValueError(str(exc)) from None

    def pre_validate(self, form):
        if self.process_errors:  # not a percentage: say that alone, not also its range
            raise StopValidation()

    def _value(self):
        raw = getattr(self, "raw", None)
        return raw if raw is not None else (format_bps(self.data) if self.data is not None else "")
