"""CSV exports that a spreadsheet opens as plain text, never as formulas (OWASP CSV injection)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

# A spreadsheet treats a cell starting with any of these as a formula (or as the start of one,
# after it strips the tab or carriage return), so data a debtor or client typed could run.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> str:
    """The value as text, with a leading ' when a spreadsheet would read it as a formula."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text


def write_csv(rows: Iterable[Sequence[object]], header: Sequence[str]) -> str:
    """CSV text of a header and rows, every cell neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([neutralise(cell) for cell in header])
    for row in rows:
        writer.writerow([neutralise(cell) for cell in row])
    return buffer.getvalue()
