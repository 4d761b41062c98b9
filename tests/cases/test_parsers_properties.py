"""Property tests (Hypothesis) for the two parsers that read what people and clients type:
money (shell/money.py) and referral files (cases/referral_file.py).

Whatever comes in, each gives an answer or its own plain refusal (ValueError, FileRefused),
never another exception; money is always int cents. Examples that once failed stay as @example.
"""

from __future__ import annotations

import csv
import io
import string
import zipfile
from datetime import date

import openpyxl
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from werkzeug.datastructures import MultiDict
from wtforms import Form

from cases.referral_file import (
    KNOWN_COLUMNS,
    FileRefused,
    ReferralRow,
    Rejection,
    normalise_header,
    parse,
    raw_rows,
    read_header,
)
from shell.money import MAX_CENTS, MAX_DOLLAR_DIGITS, MoneyField, format_cents, parse_cents

# No example database under the work tree (nothing else here writes one); deadline off because
# a cold ZIP-table lookup or an openpyxl load can take longer than Hypothesis's 200 ms.
QUICK = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
AS_OF = date(2026, 11, 23)
cents_values = st.integers(min_value=0, max_value=MAX_CENTS)

# --- money -----------------------------------------------------------------------------------

# Text built from what amounts are made of, so that most examples come near the grammar.
amount_like = st.text(alphabet="0123456789,.$ -+\t\n\u00a0e", max_size=24)


@settings(QUICK, max_examples=400)
@given(st.one_of(st.text(), amount_like))
@example("12345678901234567890123456789.12")  # Decimal's 28 digits rounded it to ...79000
@example("9" * 5000)  # int() of it refused with "Exceeds the limit (4300 digits)..."
@example("$")
@example(".")
@example("$.")
@example("-5")
@example("1,23")
@example("\x00")
def test_parse_cents_gives_int_cents_or_a_plain_value_error(text):
    try:
        cents = parse_cents(text)
    except ValueError as exc:
        assert str(exc).startswith("Enter an amount"), str(exc)
        return
    assert type(cents) is int
    assert 0 <= cents <= MAX_CENTS


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("1,234.56", 123_456),
        ("$1,234.56", 123_456),
        ("$20", 2_000),
        ("20", 2_000),
        ("$ 20.5", 2_050),
        (".5", 50),
        (" 0.29 ", 29),
        ("1,234,567", 123_456_700),
        ("999,999,999,999.99", MAX_CENTS),
    ],
)
def test_parse_cents_reads_the_documented_shapes(text, cents):
    assert parse_cents(text) == cents


@pytest.mark.parametrize(
    "text",
    ["", " ", "$", ".", "-5", "$-5", "5.", "1.234", "1,23", "12,34.5", "1e3", "1,000,000,000,000"],
)
def test_parse_cents_refuses_what_is_not_an_amount(text):
    with pytest.raises(ValueError):
        parse_cents(text)


@st.composite
def typed_amounts(draw) -> tuple[str, int]:
    """An amount as a person might type it, and its cents worked out without the parser."""
    dollars = draw(st.integers(min_value=0, max_value=10**MAX_DOLLAR_DIGITS - 1))
    decimals = draw(st.sampled_from([0, 1, 2]))
    fraction = draw(st.integers(min_value=0, max_value=10**decimals - 1)) if decimals else 0
    whole = f"{dollars:,}" if draw(st.booleans()) else str(dollars)
    if decimals and draw(st.booleans()) and dollars == 0:
        whole = ""  # ".5"
    text = whole + (f".{fraction:0{decimals}d}" if decimals else "")
    text = draw(st.sampled_from(["", "$", "$ "])) + text
    text = draw(st.sampled_from(["", " ", "\t"])) + text + draw(st.sampled_from(["", " "]))
    cents = dollars * 100 + (fraction * 10 ** (2 - decimals) if decimals else 0)
    return text, cents


@settings(QUICK, max_examples=300)
@given(typed_amounts())
@example(("0.29", 29))  # int(float("0.29") * 100) would be 28
@example(("1.15", 115))
@example(("4.35", 435))
@example(("$1,234.56", 123_456))
def test_typed_amounts_parse_exactly_and_round_trip(amount):
    text, cents = amount
    assert parse_cents(text) == cents
    canonical = format_cents(cents)
    assert format_cents(parse_cents(text)) == canonical
    assert parse_cents(canonical) == cents
    assert parse_cents("$" + canonical) == cents


@settings(QUICK, max_examples=300)
@given(cents_values, cents_values)
@example(10, 20)  # "0.1" + "0.2" is "0.3", exactly
def test_amounts_add_exactly(a, b):
    total = parse_cents(format_cents(a)) + parse_cents(format_cents(b))
    assert total == a + b
    if a + b <= MAX_CENTS:
        assert parse_cents(format_cents(a + b)) == total


def test_point_one_plus_point_two_is_point_three():
    assert parse_cents("0.1") + parse_cents("0.2") == parse_cents("0.3") == 30


@settings(QUICK, max_examples=100)
@given(st.integers(min_value=MAX_CENTS + 1, max_value=10**40))
def test_amounts_of_a_trillion_dollars_or_more_are_refused(cents):
    with pytest.raises(ValueError, match="under"):
        parse_cents(format_cents(cents))


class _AmountForm(Form):
    amount = MoneyField("Amount")


@settings(QUICK, max_examples=300)
@given(st.one_of(st.text(), amount_like, typed_amounts().map(lambda pair: pair[0])))
@example("12345678901234567890123456789.12")
def test_money_field_gives_cents_or_a_field_error(text):
    form = _AmountForm(formdata=MultiDict([("amount", text)]))
    field = form.amount
    if not text.strip():
        assert field.data is None and not field.process_errors
    elif field.process_errors:
        assert field.data is None
        assert all(str(error).startswith("Enter an amount") for error in field.process_errors)
    else:
        assert type(field.data) is int and 0 <= field.data <= MAX_CENTS
        assert field.data == parse_cents(text)
    assert field._value() == text  # the page shows back what was typed


@settings(QUICK, max_examples=200)
@given(st.integers(min_value=1, max_value=MAX_CENTS))
def test_money_field_shows_cents_as_text_it_reads_back(cents):
    shown = _AmountForm(data={"amount": cents}).amount._value()
    assert shown == format_cents(cents)
    assert _AmountForm(formdata=MultiDict([("amount", shown)])).amount.data == cents


# --- referral files ----------------------------------------------------------------------------

GOOD = {
    "account_number": "A-1",
    "first_name": "Jane",
    "last_name": "Doe",
    "state": "MA",
    "postal_code": "02108",
    "principal": "100.00",
    "due_date": "2026-01-15",
}
MONEY_COLUMNS = ("principal", "interest", "fees")


def spellings(name: str) -> st.SearchStrategy[str]:
    """Our column name as a client's spreadsheet might spell it."""
    return st.sampled_from(
        [name, name.replace("_", " ").title(), f" {name.upper().replace('_', '-')} "]
    )


# Header cells: our names as clients spell them, and anything else.
header_cells = st.one_of(st.sampled_from(KNOWN_COLUMNS).flatmap(spellings), st.text(max_size=12))

# Cells: plausible values for each kind of column, and hostile text.
awkward_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(list(',"\r\n\t\ufeff\u00a0\u2028$-./') + ["\x00", "\U0001f4b8", "é", "١"]),
        st.characters(),
    ),
    max_size=20,
)
cell_values = st.one_of(
    st.sampled_from(list(GOOD.values())),
    st.sampled_from(["consumer", "commercial", "COMMERCIAL", "other", "NY", "ny", "XX", "PR"]),
    st.sampled_from(["10001", "02108", "2108", "00901", "901", "99999", "12345-6789", "0"]),
    st.sampled_from(["jane@example.com", "x@y", "(212) 555-0100", "+1 212 555 0100", "911"]),
    st.sampled_from(["2026-02-30", "02/29/2024", "12/31/1999", "9999-12-31", "0000-01-01"]),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    typed_amounts().map(lambda pair: pair[0]),
    st.sampled_from(["-$5", "$-5", "5.", "1,23", "1e9", "NaN", "inf", "1" * 1200]),
    awkward_text,
)


# A few places a debtor can live, each a state and one of its ZIP codes.
PLACES = [("MA", "02108"), ("NY", "10001"), ("CA", "90210"), ("PR", "00901"), ("TX", "75001")]


@st.composite
def referral_rows(draw, columns: list[str]) -> list[str]:
    """A row that would be accepted, with up to three of its cells replaced by anything."""
    state, postal_code = draw(st.sampled_from(PLACES))
    good = {
        **GOOD,
        "account_number": draw(st.sampled_from(["A-1", "A-2", "A-3", "b 4", ""])),
        "state": state,
        "postal_code": postal_code,
        "principal": draw(typed_amounts())[0],
    }
    cells = [good.get(column, "") for column in columns]
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        if cells:
            cells[draw(st.integers(0, len(cells) - 1))] = draw(cell_values)
    if draw(st.integers(min_value=0, max_value=4)) == 0:  # a short or a long row
        cells = cells[: draw(st.integers(0, len(cells)))] + draw(st.lists(cell_values, max_size=2))
    return cells


@st.composite
def csv_files(draw) -> bytes:
    """A CSV-ish file: a header of our columns and others (or only others), rows that are nearly
    right, quoted properly or joined naively, in an encoding a spreadsheet might write."""
    if draw(st.integers(min_value=0, max_value=3)):
        ours = [draw(spellings(name)) for name in GOOD]
        others = st.one_of(
            st.sampled_from([name for name in KNOWN_COLUMNS if name not in GOOD]).flatmap(
                spellings
            ),
            st.text(max_size=12),
        )
        header = ours + draw(st.lists(others, max_size=3, unique_by=normalise_header))
        header = draw(st.permutations(header))
    else:
        header = draw(st.lists(header_cells, min_size=1, max_size=8))
    columns = [normalise_header(cell) for cell in header]
    rows = draw(st.lists(referral_rows(columns), min_size=1, max_size=5))
    if draw(st.integers(min_value=0, max_value=5)) == 0:
        rows.insert(draw(st.integers(0, len(rows))), [""] * len(header))  # a blank row
    table = [header, *rows]
    if draw(st.integers(min_value=0, max_value=2)):
        buffer = io.StringIO()
        terminator = draw(st.sampled_from(["\r\n", "\n"]))
        csv.writer(buffer, lineterminator=terminator).writerows(table)
        text = buffer.getvalue()
    else:
        separator = draw(st.sampled_from(["\r\n", "\n", "\r"]))
        text = separator.join(",".join(row) for row in table)
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "cp1252", "utf-16"]))
    data = text.encode(encoding, errors="replace")
    if draw(st.integers(min_value=0, max_value=4)) == 0:
        data += draw(st.binary(max_size=8))  # a torn last line
    return data


def _xlsx(rows: list[list[object]]) -> bytes:
    book = openpyxl.Workbook()
    for row in rows:
        # openpyxl refuses control characters in text; a spreadsheet cannot hold them either.
        book.active.append(
            [ILLEGAL_CHARACTERS_RE.sub("", v) if isinstance(v, str) else v for v in row]
        )
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


GOOD_XLSX = _xlsx([list(GOOD), list(GOOD.values())])


def _patched(data: bytes, signature: bytes, offset: int, value: int, size: int = 4) -> bytes:
    """`data` with the little-endian field at `offset` of its first `signature` record set."""
    at = data.find(signature) + offset
    return data[:at] + value.to_bytes(size, "little") + data[at + size :]


_CENTRAL, _END = b"PK\x01\x02", b"PK\x05\x06"  # a central directory entry; its end record


def _stored_zip_claiming_a_megabyte() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
    data = _patched(buffer.getvalue(), _CENTRAL, 20, 2**20)  # compressed size
    return _patched(data, _CENTRAL, 24, 2**20)  # and size


# Workbooks zipfile failed on with other errors than BadZipFile, found by the fuzzing below.
# NotImplementedError "zip file version 25.5": the central directory asks for a newer zip.
NEWER_ZIP_VERSION = _patched(GOOD_XLSX, _CENTRAL, 6, 0xFF, size=2)
# ValueError "negative seek value": the end record puts the central directory past itself.
CENTRAL_DIRECTORY_MOVED = _patched(
    GOOD_XLSX,
    _END,
    16,
    int.from_bytes(GOOD_XLSX[GOOD_XLSX.find(_END) + 16 :][:4], "little") + 2**20,
)
# EOFError: a member said to be longer than the archive.
MEMBER_PAST_THE_END = _stored_zip_claiming_a_megabyte()


@st.composite
def damaged_workbooks(draw) -> bytes:
    """A real workbook truncated, or with a stretch of it overwritten."""
    data = bytearray(GOOD_XLSX)
    if draw(st.booleans()):
        return bytes(data[: draw(st.integers(min_value=0, max_value=len(data)))])
    start = draw(st.integers(min_value=0, max_value=len(data) - 1))
    patch = draw(st.binary(min_size=1, max_size=16))
    data[start : start + len(patch)] = patch
    return bytes(data)


binary_files = st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=40).map(lambda tail: b"PK\x03\x04" + tail),
    damaged_workbooks(),
)
any_file = st.one_of(csv_files(), binary_files)
filenames = st.sampled_from(["referrals.csv", "referrals.xlsx", "REFERRALS.XLSX", "", "a.txt"])


def _check_results(results: list) -> None:
    rows = []
    for result in results:
        assert isinstance(result, ReferralRow | Rejection), result
        assert type(result.row) is int and result.row >= 2
        rows.append(result.row)
        if isinstance(result, Rejection):
            assert isinstance(result.reason, str) and result.reason.strip()
            assert result.column == "" or result.column in KNOWN_COLUMNS, result
        else:
            for column in MONEY_COLUMNS:
                cents = getattr(result, f"{column}_cents")
                assert type(cents) is int and 0 <= cents <= MAX_CENTS, (column, cents)
            assert result.total_cents > 0
            assert result.itemization_date <= AS_OF and result.due_date <= AS_OF
    assert rows == sorted(set(rows)), "one result per row, in order"


def _parse_and_check(data: bytes, filename: str, min_age_days: int = 90, mapping=None) -> None:
    try:
        results = list(
            parse(data, filename, as_of=AS_OF, min_age_days=min_age_days, mapping=mapping)
        )
    except FileRefused as exc:
        assert str(exc).strip()
        event("file refused: " + str(exc)[:30])
        return
    _check_results(results)
    if any(isinstance(result, ReferralRow) for result in results):
        event("file read, a row accepted")
    elif results:
        event("file read, every row rejected")


@settings(QUICK, max_examples=300)
@given(csv_files(), st.sampled_from(["referrals.csv", "", "a.txt"]), st.integers(0, 400))
def test_csv_like_files_give_rows_and_rejections_or_are_refused(data, filename, min_age_days):
    _parse_and_check(data, filename, min_age_days)


# A client's remembered mapping: their header names to ours ("" to ignore a column).
mappings = st.dictionaries(header_cells, st.sampled_from(("", *KNOWN_COLUMNS)), max_size=3)


@settings(QUICK, max_examples=100)
@given(csv_files(), mappings)
def test_mapped_csv_files_give_rows_and_rejections_or_are_refused(data, mapping):
    _parse_and_check(data, "referrals.csv", mapping=mapping)


# What a workbook's cell can hold.
workbook_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**18), max_value=10**18),
    st.floats(allow_nan=True, allow_infinity=False),
    st.dates(),
    st.datetimes(),
    cell_values,
)


@st.composite
def workbooks(draw) -> bytes:
    """A real workbook: our header (or anything) and rows of any typed cells."""
    header = list(GOOD) if draw(st.booleans()) else draw(st.lists(header_cells, max_size=6))
    rows = draw(
        st.lists(
            st.one_of(
                st.just(list(GOOD.values())),
                st.lists(workbook_values, max_size=len(header) + 1),
            ),
            max_size=4,
        )
    )
    return _xlsx([header, *rows])


@settings(QUICK, max_examples=60)
@given(workbooks())
def test_workbooks_give_rows_and_rejections_or_are_refused(data):
    _parse_and_check(data, "referrals.xlsx")


@settings(QUICK, max_examples=200)
@given(binary_files, filenames)
@example(b"\xef\xbb\xbf\r\n\xef\xbb\xbf", "referrals.csv")
@example(b"PK\x03\x04", "referrals.xlsx")
@example(NEWER_ZIP_VERSION, "referrals.xlsx")
@example(CENTRAL_DIRECTORY_MOVED, "referrals.xlsx")
@example(MEMBER_PAST_THE_END, "referrals.xlsx")
def test_arbitrary_bytes_give_rows_and_rejections_or_are_refused(data, filename):
    _parse_and_check(data, filename)


@settings(QUICK, max_examples=150)
@given(any_file, filenames)
def test_read_header_and_raw_rows_give_text_or_refuse_the_file(data, filename):
    try:
        header = read_header(data, filename)
    except FileRefused:
        header = None
    try:
        raw_header, rows = raw_rows(data, filename)
        numbered = list(rows)
    except FileRefused:
        return
    assert header == raw_header
    assert all(isinstance(cell, str) for cell in raw_header)
    assert [row for row, _ in numbered] == sorted({row for row, _ in numbered})
    for row, cells in numbered:
        assert type(row) is int and row >= 2
        assert all(isinstance(cell, str) for cell in cells)


@st.composite
def good_rows_with_amounts(draw) -> tuple[dict[str, str], dict[str, int]]:
    """GOOD with principal, interest and fees typed in any accepted way."""
    row, expected = dict(GOOD), {}
    for column in MONEY_COLUMNS:
        text, cents = draw(typed_amounts())
        row[column], expected[column] = text, cents
    return row, expected


@settings(QUICK, max_examples=150)
@given(good_rows_with_amounts())
@example(({**GOOD, "principal": "1,234.56", "interest": "$20", "fees": "20"}, {}))
@example(({**GOOD, "principal": "0.1", "interest": "0.2", "fees": ""}, {}))
def test_accepted_amounts_are_the_cents_written(case):
    row, expected = case
    expected = expected or {column: parse_cents(row[column] or "0") for column in MONEY_COLUMNS}
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(row))
    writer.writeheader()
    writer.writerow(row)
    (result,) = parse(buffer.getvalue().encode(), "r.csv", as_of=AS_OF)
    if sum(expected.values()) == 0:
        assert isinstance(result, Rejection) and "zero" in result.reason
        return
    assert isinstance(result, ReferralRow), result
    assert (result.principal_cents, result.interest_cents, result.fees_cents) == (
        expected["principal"],
        expected["interest"],
        expected["fees"],
    )


@settings(QUICK, max_examples=100)
@given(
    st.text(
        alphabet=st.one_of(
            st.sampled_from(string.printable), st.characters(blacklist_categories=("Cs",))
        ),
        max_size=40,
    )
)
def test_any_single_cell_in_a_good_row_is_read_or_rejected(value):
    for column in (*GOOD, "email", "phone", "itemization_date", "debtor_type"):
        row = {**GOOD, column: value}
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(row))
        writer.writeheader()
        writer.writerow(row)
        try:
            results = list(parse(buffer.getvalue().encode(), "r.csv", as_of=AS_OF))
        except FileRefused:
            continue
        _check_results(results)
