"""Tests for cases/referral_file.py (reading and checking referral files) and cases/csvsafe.py."""

from __future__ import annotations

import csv
import io
import random
import time
import zipfile
from collections.abc import Iterator
from datetime import date, datetime

import openpyxl
import phonenumbers
import pytest
import zipcodes
from email_validator import EmailNotValidError, validate_email

from cases import referral_file
from cases.csvsafe import neutralise, write_csv
from cases.referral_file import (
    KNOWN_COLUMNS,
    MAX_FIELD_CHARS,
    MAX_FILE_BYTES,
    REQUIRED_COLUMNS,
    FileRefused,
    ReferralRow,
    Rejection,
    normalise_header,
    parse,
    read_header,
)

AS_OF = date(2026, 11, 23)

GOOD = {
    "account_number": "A-1",
    "first_name": "Jane",
    "last_name": "Doe",
    "state": "MA",
    "postal_code": "02108",
    "principal": "100.00",
    "due_date": "2026-01-15",
}


def csv_bytes(*rows: dict[str, str], columns: list[str] | None = None) -> bytes:
    """A CSV file whose header is `columns` (default: every key used in the rows, GOOD's first)."""
    if columns is None:
        columns = list(GOOD)
        for row in rows:
            columns += [key for key in row if key not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def results(data: bytes, filename: str = "referrals.csv", **kwargs) -> list:
    kwargs.setdefault("as_of", AS_OF)
    return list(parse(data, filename, **kwargs))


def one(**changes: str) -> ReferralRow | Rejection:
    """Parse a file of one row: GOOD with `changes`."""
    (result,) = results(csv_bytes({**GOOD, **changes}))
    return result


def accepted(**changes: str) -> ReferralRow:
    result = one(**changes)
    assert isinstance(result, ReferralRow), result
    return result


def rejected(**changes: str) -> Rejection:
    result = one(**changes)
    assert isinstance(result, Rejection), result
    return result


def assert_rejection(result: object, row: int, column: str, reason: str) -> None:
    assert isinstance(result, Rejection), result
    assert (result.row, result.column) == (row, column), result
    assert reason in result.reason, result.reason


def refusal(data: bytes, filename: str = "referrals.csv", **kwargs) -> str:
    """The FileRefused message, raised by the parse() call itself, before any iteration."""
    with pytest.raises(FileRefused) as caught:
        parse(data, filename, as_of=AS_OF, **kwargs)
    return str(caught.value)


def xlsx_bytes(rows: list[list[object]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


# --- a good row --------------------------------------------------------------------------------


def test_a_full_row_is_read_into_a_referral_row():
    row = accepted(
        debtor_type="Consumer",
        company_name="Doe Plumbing",
        email="Jane.Doe@EXAMPLE.com",
        phone="(617) 555-0123",
        address_line1="1 Beacon St",
        address_line2="Apt 2",
        city="Boston",
        interest="10.50",
        fees="$5",
        itemization_date="2026-02-01",
        last_payment_date="12/20/2025",
        invoice_number="INV-9",
        service_description="Plumbing repair",
    )
    assert row == ReferralRow(
        row=2,
        account_number="A-1",
        debtor_type="consumer",
        first_name="Jane",
        last_name="Doe",
        company_name="Doe Plumbing",
        email="Jane.Doe@example.com",
        phone="+16175550123",
        address_line1="1 Beacon St",
        address_line2="Apt 2",
        city="Boston",
        state="MA",
        postal_code="02108",
        principal_cents=10000,
        interest_cents=1050,
        fees_cents=500,
        due_date=date(2026, 1, 15),
        itemization_date=date(2026, 2, 1),
        last_payment_date=date(2025, 12, 20),
        invoice_number="INV-9",
        service_description="Plumbing repair",
    )
    assert row.total_cents == 11550


def test_optional_values_default():
    row = accepted()
    assert row.debtor_type == "consumer"
    assert (row.email, row.phone, row.last_payment_date) == (None, None, None)
    assert (row.invoice_number, row.service_description) == (None, None)
    assert (row.interest_cents, row.fees_cents, row.total_cents) == (0, 0, 10000)
    assert row.itemization_date == row.due_date == date(2026, 1, 15)
    assert row.itemization_date_given is False and row.itemization_date_type == "last_statement"
    assert (row.company_name, row.address_line1, row.city) == ("", "", "")


def test_text_is_stripped_and_names_keep_their_unicode():
    row = accepted(account_number="  A-1 ", first_name="  Zoë ", last_name="Ñúñez-Øster  ")
    assert (row.account_number, row.first_name, row.last_name) == ("A-1", "Zoë", "Ñúñez-Øster")


def test_formula_like_text_is_kept_verbatim():
    row = accepted(first_name="=SUM(A1)", invoice_number="+1", service_description="@x")
    assert (row.first_name, row.invoice_number, row.service_description) == (
        "=SUM(A1)",
        "+1",
        "@x",
    )


@pytest.mark.parametrize("column", ["principal", "due_date"])
def test_formula_like_amounts_and_dates_are_rejected(column):
    assert_rejection(rejected(**{column: "=SUM(A1)"}), 2, column, "'=SUM(A1)'")


# --- rows: numbering, blanks, order ------------------------------------------------------------


def test_rows_are_numbered_as_a_spreadsheet_shows_them_and_blank_rows_are_skipped():
    data = (
        b"account_number,first_name,last_name,state,postal_code,principal,due_date\r\n"
        b"A-1,Jane,Doe,MA,02108,100,2026-01-15\r\n"
        b",,,,,,\r\n"
        b"\r\n"
        b"  ,\t, ,,,,\r\n"
        b"A-2,John,Roe,MA,02108,100,2026-01-15\r\n"
        b",John,Roe,MA,02108,100,2026-01-15\r\n"
    )
    found = results(data)
    assert [type(r) for r in found] == [ReferralRow, ReferralRow, Rejection]
    assert [r.row for r in found] == [2, 6, 7]
    assert_rejection(found[2], 7, "account_number", "account_number is required")


def test_a_quoted_value_over_two_lines_is_one_row():
    data = (
        b"account_number,first_name,last_name,state,postal_code,principal,due_date,"
        b"service_description\n"
        b'A-1,Jane,Doe,MA,02108,100,2026-01-15,"two\nlines"\n'
        b"A-2,Jane,Doe,MA,02108,100,2026-01-15,\n"
    )
    first, second = results(data)
    assert first.service_description == "two\nlines"
    assert second.row == 3


def test_the_first_problem_in_column_order_is_the_one_reported():
    result = rejected(principal="abc", state="ZZ", due_date="soon")
    assert_rejection(result, 2, "state", "state 'ZZ'")


def test_a_short_row_leaves_the_missing_cells_empty():
    data = csv_bytes(GOOD) + b"A-2,Jane,Doe,MA,02108,100\r\n"
    _, short = results(data)
    assert_rejection(short, 3, "due_date", "due_date is required")


def test_an_unquoted_comma_that_shifts_the_values_rejects_the_row():
    data = csv_bytes(GOOD) + b"A-2,Jane,Doe,MA,02108,1,234.56,2026-01-15\r\n"
    _, shifted = results(data)
    assert_rejection(shifted, 3, "", "the row has 8 values but the header has 7 columns")


def test_trailing_empty_cells_are_fine():
    data = csv_bytes(GOOD).replace(b"2026-01-15\r\n", b"2026-01-15,,,\r\n")
    assert isinstance(results(data)[0], ReferralRow)


# --- account_number ----------------------------------------------------------------------------


def test_account_number_is_required():
    assert_rejection(
        rejected(account_number=" "), 2, "account_number", "account_number is required"
    )


def test_a_repeated_account_number_rejects_the_later_row():
    data = csv_bytes(GOOD, {**GOOD, "first_name": "Other"}, {**GOOD, "account_number": "A-2"})
    first, repeat, other = results(data)
    assert isinstance(first, ReferralRow)
    assert_rejection(
        repeat, 3, "account_number", "account_number A-1 repeats row 2; the first is kept"
    )
    assert isinstance(other, ReferralRow)


def test_a_rejected_first_occurrence_still_makes_later_ones_repeats():
    data = csv_bytes({**GOOD, "state": "ZZ"}, GOOD)
    first, repeat = results(data)
    assert_rejection(first, 2, "state", "state 'ZZ'")
    assert_rejection(repeat, 3, "account_number", "repeats row 2")


# --- debtor type and names ---------------------------------------------------------------------


def test_debtor_type_is_case_insensitive():
    row = accepted(debtor_type="COMMERCIAL", company_name="Acme LLC", first_name="", last_name="")
    assert (row.debtor_type, row.company_name, row.first_name) == ("commercial", "Acme LLC", "")


def test_an_unknown_debtor_type_is_rejected():
    result = rejected(debtor_type="business")
    assert_rejection(
        result, 2, "debtor_type", "debtor_type 'business' is not consumer or commercial"
    )


@pytest.mark.parametrize("column", ["first_name", "last_name"])
def test_a_consumer_needs_first_and_last_name(column):
    result = rejected(**{column: ""})
    assert_rejection(result, 2, column, f"{column} is required for a consumer debtor")


def test_a_commercial_debtor_needs_a_company_name():
    result = rejected(debtor_type="commercial", company_name="")
    assert_rejection(result, 2, "company_name", "company_name is required for a commercial debtor")


def test_a_company_only_file_is_accepted():
    data = csv_bytes(
        {"account_number": "C-1", "debtor_type": "commercial", "company_name": "Acme LLC"}
        | {key: GOOD[key] for key in ("state", "postal_code", "principal", "due_date")},
        columns=[
            "account_number",
            "debtor_type",
            "company_name",
            "state",
            "postal_code",
            "principal",
            "due_date",
        ],
    )
    (row,) = results(data)
    assert (row.company_name, row.last_name) == ("Acme LLC", "")


# --- email and phone ---------------------------------------------------------------------------


def test_email_is_normalised():
    assert accepted(email=" Jane@Example.COM ").email == "Jane@example.com"


@pytest.mark.parametrize("email", ["jane", "jane@", "jane@@example.com", "jane@example"])
def test_a_bad_email_is_rejected(email):
    assert_rejection(rejected(email=email), 2, "email", f"email '{email}' is not a valid address")


@pytest.mark.parametrize(
    "phone", ["(617) 555-0123", "617.555.0123", "+1 617 555 0123", "6175550123", "1-617-555-0123"]
)
def test_phone_is_normalised_to_e164(phone):
    assert accepted(phone=phone).phone == "+16175550123"


@pytest.mark.parametrize("phone", ["12345", "call me", "(000) 555-0123", "555-0123"])
def test_a_bad_phone_is_rejected(phone):
    assert_rejection(rejected(phone=phone), 2, "phone", f"phone '{phone}' is not a valid phone")


def _slow_phone(raw: str) -> str | None:
    """The full phonenumbers check, as _phone does it for any shape the fast path leaves."""
    try:
        number = phonenumbers.parse(raw, "US")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _phone_corpus() -> Iterator[str]:
    rng = random.Random(5)
    areas = ["212", "617", "415", "800", "555", "911", "999", "211", "100", "012", "305", "867"]
    areas += [f"{rng.randrange(1000):03d}" for _ in range(40)]
    shapes = [
        "{a}{e}{l}", "{a}-{e}-{l}", "({a}) {e}-{l}", "({a}){e}-{l}", "{a}.{e}.{l}", "{a} {e} {l}",
        "1{a}{e}{l}", "1-{a}-{e}-{l}", "+1{a}{e}{l}", "+1 ({a}) {e}-{l}", "+1.{a}.{e}.{l}",
        "1 ({a}) {e} {l}", "({a} {e}-{l}", "{a}) {e}-{l}", "{a}--{e}-{l}", "{a}{e}{l}0",
        "{a}{e}{l} x12", "+ 1 {a} {e} {l}", "+2{a}{e}{l}", "11{a}{e}{l}", "{e}-{l}",
    ]  # fmt: skip
    for area in areas:
        for _ in range(6):
            exchange = rng.choice(["555", "010", "123", "911", f"{rng.randrange(1000):03d}"])
            line = f"{rng.randrange(10000):04d}"
            for shape in shapes:
                yield shape.format(a=area, e=exchange, l=line)


def _fast_path_taken(fast, slow, corpus: Iterator[str]) -> int:
    """How often the fast path gave an answer; each one must be the slow path's."""
    taken = 0
    for raw in corpus:
        answer = fast(raw)
        if answer is not None:
            taken += 1
            assert answer == slow(raw), raw
    return taken


def test_the_phone_fast_path_agrees_with_phonenumbers():
    taken = _fast_path_taken(referral_file._plain_phone, _slow_phone, _phone_corpus())
    assert taken > 500  # the usual shapes of valid numbers do take it
    for raw in [
        "(617) 555-0123",
        "617.555.0123",
        "+1 617 555 0123",
        "6175550123",
        "1-617-555-0123",
    ]:
        assert referral_file._plain_phone(raw) == "+16175550123"


def _email_corpus() -> Iterator[str]:
    locals_ = ["jane", "Jane.Doe", "a+b", "x_y-z", "info", "INFO", "Sales", "Postmaster", "a..b"]
    locals_ += [".a", "a.", "o'brien", "jane doe", "ján", "a" * 64, "a" * 65, "b@c", '"q"', "a/b"]
    domains = ["example.com", "EXAMPLE.Com", "sub.example.co.uk", "xn--bcher-kva.example"]
    domains += ["ab--cd.com", "-a.com", "a-.com", "a.b", "a.123", "a.c0m", "localhost", "x.local"]
    domains += ["x.invalid", "x.onion", "x.test", "x.arpa", "ARPA", "exa_mple.com", "münchen.de"]
    domains += ["a" * 63 + ".com", "a" * 64 + ".com", ("a" * 60 + ".") * 4 + "com", "x.com."]
    domains += [("b" * 50 + ".") * 4 + "org", "[127.0.0.1]", "x..com", "x.co-m", "1.2.3.4"]
    for local in locals_:
        for domain in domains:
            yield f"{local}@{domain}"
    yield from ["jane", "jane@", "@example.com", "Jane <jane@example.com>", "a@b@example.com"]


def _slow_email(raw: str) -> str | None:
    try:
        return validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def test_the_email_fast_path_agrees_with_email_validator():
    assert _fast_path_taken(referral_file._plain_email, _slow_email, _email_corpus()) > 20
    assert referral_file._plain_email("Jane.Doe@EXAMPLE.com") == "Jane.Doe@example.com"
    assert referral_file._plain_email("Info@example.com") is None  # left to validate_email


def test_the_zip_table_agrees_with_zipcodes_matching():
    rng = random.Random(7)
    every_zip = sorted({place["zip_code"] for place in zipcodes.list_all()})
    samples = rng.sample(every_zip, 300) + ["00000", "99999", "02108", "00501", "96910"]
    for zip5 in samples:
        expected = frozenset(place["state"] for place in zipcodes.matching(zip5))
        assert referral_file._states_of_zip(zip5) == expected, zip5


# --- state and ZIP -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "postal_code"),
    [("ma", "02108"), ("DC", "20001"), ("PR", "00901"), ("GU", "96910"), ("VI", "00802")],
)
def test_states_and_territories_are_accepted(state, postal_code):
    assert accepted(state=state, postal_code=postal_code).state == state.upper()


@pytest.mark.parametrize("state", ["ZZ", "Mass", "Massachusetts", "AA"])
def test_an_unknown_state_is_rejected(state):
    assert_rejection(rejected(state=state), 2, "state", f"state '{state}' is not a US state code")


def test_state_is_required():
    assert_rejection(rejected(state=""), 2, "state", "state is required")


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("02108", "02108"),
        ("02108-1234", "02108-1234"),
        ("021081234", "02108-1234"),
        ("2108", "02108"),  # Excel dropped the leading zero
        ("21081234", "02108-1234"),
        ("2108-1234", "02108-1234"),
    ],
)
def test_zip_forms_are_normalised(given, stored):
    assert accepted(postal_code=given).postal_code == stored


def test_a_puerto_rico_zip_that_lost_both_zeros_is_restored():
    assert accepted(state="PR", postal_code="901").postal_code == "00901"


def test_a_four_digit_zip_is_rejected_where_zips_do_not_start_with_zero():
    result = rejected(state="NY", postal_code="1001")
    assert_rejection(result, 2, "postal_code", "postal_code '1001' is not a ZIP code like 12345")


@pytest.mark.parametrize("postal_code", ["ABCDE", "123456", "02108-12", "0210", "02108 1234"])
def test_a_malformed_zip_is_rejected(postal_code):
    result = rejected(postal_code=postal_code)
    assert_rejection(result, 2, "postal_code", f"postal_code '{postal_code}' is not a ZIP code")


def test_an_unknown_zip_is_rejected():
    result = rejected(state="CA", postal_code="99999")
    assert_rejection(result, 2, "postal_code", "postal_code 99999 is not a US ZIP code")


def test_a_zip_in_another_state_is_rejected_naming_both():
    result = rejected(state="MA", postal_code="10001")
    assert_rejection(result, 2, "postal_code", "postal_code 10001 is in NY, not MA")


def test_postal_code_is_required():
    assert_rejection(rejected(postal_code=""), 2, "postal_code", "postal_code is required")


# --- amounts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "cents"),
    [
        ("1234.56", 123456),
        ("1,234.56", 123456),
        ("$1,234.56", 123456),
        ("$ 1,234.56", 123456),
        ("1234", 123400),
        ("1,234,567.89", 123456789),
        (".5", 50),
        ("0.05", 5),
        ("12.", 1200),
        ("  12.30  ", 1230),
    ],
)
def test_amount_forms_are_accepted(given, cents):
    assert accepted(principal=given).principal_cents == cents


@pytest.mark.parametrize(
    "given",
    ["12.345", "12a", "abc", "1,23.45", "12,34", "(12.00)", "1.2.3", "$", ".", "1 234", "1e3"],
)
def test_an_unparseable_amount_is_rejected(given):
    result = rejected(principal=given)
    assert_rejection(result, 2, "principal", f"principal '{given}' is not an amount like 1234.56")


def test_principal_is_required():
    assert_rejection(rejected(principal=""), 2, "principal", "principal is required")


@pytest.mark.parametrize("given", ["-5.00", "$-5", "-$5", "- 5"])
def test_a_negative_amount_is_rejected(given):
    assert_rejection(rejected(principal=given), 2, "principal", "principal cannot be negative")


@pytest.mark.parametrize("column", ["interest", "fees"])
def test_interest_and_fees_are_checked_like_principal(column):
    assert_rejection(rejected(**{column: "ten"}), 2, column, f"{column} 'ten' is not an amount")
    assert_rejection(rejected(**{column: "-1"}), 2, column, f"{column} cannot be negative")


def test_a_zero_total_is_rejected_under_principal():
    result = rejected(principal="0.00", interest="0", fees="")
    assert_rejection(result, 2, "principal", "the total owed (principal + interest + fees) is zero")


def test_zero_principal_with_fees_is_accepted():
    row = accepted(principal="0", fees="25")
    assert (row.principal_cents, row.total_cents) == (0, 2500)


def test_an_absurd_amount_is_rejected():
    result = rejected(principal="1,000,000,000,000.00")
    assert_rejection(result, 2, "principal", "too large")


# --- dates -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2026-01-15", date(2026, 1, 15)),
        ("01/15/2026", date(2026, 1, 15)),
        ("1/5/2026", date(2026, 1, 5)),
        (" 2026-1-5 ", date(2026, 1, 5)),
    ],
)
def test_date_forms_are_accepted(given, expected):
    assert accepted(due_date=given).due_date == expected


@pytest.mark.parametrize("given", ["Jan 5 2026", "2026/01/15", "20260115", "15.01.2026", "1/5/26"])
def test_an_unparseable_date_is_rejected(given):
    result = rejected(due_date=given)
    assert_rejection(result, 2, "due_date", f"due_date '{given}' is not a date like 2026-11-23")


@pytest.mark.parametrize("given", ["2026-02-30", "13/01/2026", "2025-02-29"])
def test_an_impossible_date_is_rejected(given):
    assert_rejection(
        rejected(due_date=given), 2, "due_date", f"due_date '{given}' is not a real date"
    )


def test_due_date_is_required():
    assert_rejection(rejected(due_date=""), 2, "due_date", "due_date is required")


def test_a_future_due_date_is_rejected():
    result = rejected(due_date="2027-01-05")
    assert_rejection(result, 2, "due_date", "due_date 2027-01-05 is in the future")


def test_an_account_younger_than_the_minimum_age_is_rejected():
    result = rejected(due_date="2026-10-09")
    assert_rejection(
        result,
        2,
        "due_date",
        "the account is 45 days past due on 2026-11-23; "
        "this client accepts accounts at least 90 days past due",
    )


def test_an_account_exactly_the_minimum_age_is_accepted():
    assert accepted(due_date="2026-08-25").due_date == date(2026, 8, 25)
    assert_rejection(rejected(due_date="2026-08-26"), 2, "due_date", "the account is 89 days")


def test_the_minimum_age_is_the_clients():
    data = csv_bytes({**GOOD, "due_date": "2026-10-09"})
    (row,) = results(data, min_age_days=30)
    assert isinstance(row, ReferralRow)
    (row,) = results(csv_bytes({**GOOD, "due_date": "2026-11-23"}), min_age_days=0)
    assert isinstance(row, ReferralRow)


@pytest.mark.parametrize("column", ["itemization_date", "last_payment_date"])
def test_optional_dates_must_parse_and_not_be_in_the_future(column):
    assert_rejection(rejected(**{column: "2026-02-30"}), 2, column, f"{column} '2026-02-30'")
    assert_rejection(
        rejected(**{column: "someday"}), 2, column, f"{column} 'someday' is not a date"
    )
    assert_rejection(
        rejected(**{column: "11/24/2026"}), 2, column, f"{column} 2026-11-24 is in the future"
    )


def test_itemization_date_can_differ_from_due_date():
    assert accepted(itemization_date="03/01/2026").itemization_date == date(2026, 3, 1)


# --- cell length -------------------------------------------------------------------------------


@pytest.mark.parametrize("column", ["account_number", "first_name", "service_description"])
def test_a_cell_over_the_limit_rejects_the_row(column):
    result = rejected(**{column: "x" * (MAX_FIELD_CHARS + 1)})
    assert_rejection(result, 2, column, f"{column} is longer than 1,000 characters")


def test_a_cell_at_the_limit_is_accepted():
    assert len(accepted(service_description="x" * MAX_FIELD_CHARS).service_description) == 1000


def test_a_long_cell_in_an_ignored_column_does_not_matter():
    assert isinstance(one(notes="x" * (MAX_FIELD_CHARS * 5)), ReferralRow)


# --- header ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("Account Number", "account_number"),
        (" ACCOUNT-NUMBER ", "account_number"),
        ("account number", "account_number"),
        ("account  -  number", "account_number"),
        ("\ufeffaccount_number", "account_number"),
        ("Address Line 1", "address_line1"),
        ("address-line-2", "address_line2"),
        ("Acct #", "acct_#"),
    ],
)
def test_normalise_header(given, expected):
    assert normalise_header(given) == expected


def test_known_columns_follow_the_spec_and_include_the_required():
    assert KNOWN_COLUMNS[0] == "account_number"
    assert set(REQUIRED_COLUMNS) <= set(KNOWN_COLUMNS)
    # with debt_kind, the original creditor (SPEC §5) and the program (early-out, issue #20)
    assert len(KNOWN_COLUMNS) == 30
    assert KNOWN_COLUMNS[-1] == "program"
    assert "debt_kind" in KNOWN_COLUMNS


@pytest.mark.parametrize("spelling", ["Account Number", " ACCOUNT-NUMBER ", "account number"])
def test_header_spellings_are_matched(spelling):
    data = csv_bytes(GOOD).replace(b"account_number", spelling.encode(), 1)
    (row,) = results(data)
    assert row.account_number == "A-1"


def test_a_client_mapping_renames_their_columns():
    data = (
        b"Acct #,First,Surname,ST,Zip,Balance Owed,Charge-off Date,Notes\r\n"
        b"77,Jane,Doe,MA,02108,50.00,2026-01-15,ignored\r\n"
    )
    mapping = {
        "acct #": "account_number",
        "First": "first_name",
        "SURNAME": "last_name",
        "st": "state",
        "zip": "postal_code",
        "Balance Owed": "principal",
        "Charge-off Date": "Due Date",
    }
    (row,) = results(data, mapping=mapping)
    assert (row.account_number, row.last_name, row.principal_cents) == ("77", "Doe", 5000)


def test_a_mapping_to_nothing_ignores_the_column():
    data = csv_bytes({**GOOD, "email": "not an email"})
    (row,) = results(data, mapping={"email": ""})
    assert row.email is None


def test_a_mapping_to_an_unknown_column_is_a_programming_error():
    with pytest.raises(ValueError, match="not a referral column") as caught:
        parse(csv_bytes(GOOD), "r.csv", as_of=AS_OF, mapping={"Acct": "acct_no"})
    assert not isinstance(caught.value, FileRefused)


def test_unknown_columns_are_ignored():
    (row,) = results(csv_bytes({**GOOD, "Notes": "call after 5", "": "x"}))
    assert isinstance(row, ReferralRow)


def test_a_missing_required_column_refuses_the_file_and_lists_the_header():
    data = b"Account Number,Last Name,State,Zip,Amount\r\nA-1,Doe,MA,02108,10\r\n"
    message = refusal(data)
    assert "The file has no postal_code, principal, due_date columns." in message
    assert "The header has: 'Account Number', 'Last Name', 'State', 'Zip', 'Amount'" in message


def test_a_required_column_can_be_supplied_by_mapping():
    data = csv_bytes(GOOD).replace(b"principal", b"Amount", 1)
    assert "no principal column" in refusal(data)
    (row,) = results(data, mapping={"amount": "principal"})
    assert row.principal_cents == 10000


def test_a_file_without_last_name_or_company_name_is_refused():
    columns = [column for column in GOOD if column != "last_name"]
    data = csv_bytes({column: GOOD[column] for column in columns}, columns=columns)
    assert "neither a last_name nor a company_name column" in refusal(data)


def test_duplicate_columns_are_refused():
    data = b"account_number,Account Number,last_name,state,postal_code,principal,due_date\r\nx\r\n"
    message = refusal(data)
    assert "two columns that mean account_number: 'account_number' and 'Account Number'" in message


def test_a_mapping_that_duplicates_a_column_is_refused():
    data = csv_bytes({**GOOD, "Balance": "5"})
    assert "two columns that mean principal" in refusal(data, mapping={"balance": "principal"})


def test_read_header_returns_the_cells_as_written_even_without_required_columns():
    data = "\ufeffAcct #, Surname ,Balance,,\r\n1,Doe,5\r\n".encode()
    assert read_header(data, "r.csv") == ["Acct #", " Surname ", "Balance"]


def test_read_header_refuses_what_parse_refuses():
    with pytest.raises(FileRefused, match="not a CSV or XLSX file"):
        read_header(b"%PDF-1.7\n", "r.pdf")
    with pytest.raises(FileRefused, match="no rows"):
        read_header(b"a,b\r\n", "r.csv")


# --- the whole file ----------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"  \r\n\r\n", b"\xef\xbb\xbf"])
def test_an_empty_file_is_refused(data):
    assert "The file is empty" in refusal(data)


@pytest.mark.parametrize("tail", [b"", b",,,,,,\r\n\r\n"])
def test_a_header_without_rows_is_refused(tail):
    data = csv_bytes() + tail
    assert refusal(data) == "The file has a header but no rows of accounts under it."


def test_a_blank_first_row_is_refused():
    data = b",,\r\n" + csv_bytes(GOOD)
    assert "The first row of the file is blank" in refusal(data)


def test_a_file_over_the_size_limit_is_refused_stating_the_limit(tmp_path):
    assert MAX_FILE_BYTES == 200 * 1024 * 1024  # room for a million rows (~150 MB)
    # The file is measured, never read whole: a sparse file of 200 MB + 1 byte on disk.
    path = tmp_path / "big.csv"
    with path.open("wb") as file:
        file.truncate(MAX_FILE_BYTES + 1)
    message = refusal(lambda: path.open("rb"))
    assert "the limit is 200 MB" in message
    assert "The file is 200.0 MB" in message


def test_a_file_given_by_an_opener_reads_as_its_bytes_in_chunks(monkeypatch, tmp_path):
    # Chunks of 7 bytes: lines, quoted line breaks and UTF-8 characters cut across chunks.
    monkeypatch.setattr(referral_file, "READ_CHUNK", 7)
    data = csv_bytes(
        {**GOOD, "first_name": "José"},
        {**GOOD, "account_number": "A-2", "address_line1": 'Apt "4"\nFloor 2, rear'},
        {**GOOD, "account_number": "A-1"},
    )
    path = tmp_path / "r.csv"
    path.write_bytes(data)
    from_bytes = list(parse(data, "r.csv", as_of=AS_OF))
    from_file = list(parse(lambda: path.open("rb"), "r.csv", as_of=AS_OF))
    assert from_file == from_bytes
    assert [type(r).__name__ for r in from_file] == ["ReferralRow", "ReferralRow", "Rejection"]
    assert from_file[0].first_name == "José"


def test_repeated_account_numbers_beyond_the_in_memory_ones_are_found(monkeypatch):
    # Past FirstRows.IN_MEMORY account numbers, the rest are kept in a temporary SQLite file.
    monkeypatch.setattr(referral_file._FirstRows, "IN_MEMORY", 3)
    rows = [{**GOOD, "account_number": f"A-{n}"} for n in range(1, 8)]
    rows += [{**GOOD, "account_number": "A-2"}, {**GOOD, "account_number": "A-6"}]
    rows += [{**GOOD, "account_number": "A-6"}]
    found = results(csv_bytes(*rows))
    rejected = [(r.row, r.reason) for r in found if isinstance(r, Rejection)]
    assert rejected == [
        (9, "account_number A-2 repeats row 3; the first is kept"),
        (10, "account_number A-6 repeats row 7; the first is kept"),
        (11, "account_number A-6 repeats row 7; the first is kept"),
    ]


def _zip_of_text() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("notes.txt", "hello")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "filename"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "referrals.pdf"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "scan.png"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, "referrals.xls"),
        (b"account_number\x00,state\r\n", "referrals.csv"),
        ("account_number,state\r\n".encode("utf-16"), "referrals.csv"),
        (b"account_number,state\r\nA-1,MA\r\n", "referrals.xlsx"),  # a CSV named .xlsx
        (_zip_of_text(), "archive.zip"),
        (b"PK\x05\x06" + b"\x00" * 18, "empty.zip"),
    ],
)
def test_a_file_that_is_not_csv_or_xlsx_is_refused(data, filename):
    message = refusal(data, filename)
    assert message == (
        f"{filename} is not a CSV or XLSX file. "
        "Save it as CSV UTF-8 (.csv) or Excel Workbook (.xlsx) and upload it again."
    )


def test_a_damaged_workbook_is_refused():
    data = bytearray(xlsx_bytes([list(GOOD), list(GOOD.values())] * 50))
    archive = zipfile.ZipFile(io.BytesIO(bytes(data)))
    sheet = archive.getinfo("xl/worksheets/sheet1.xml")
    # Corrupt the compressed sheet: past its local header (30 bytes + name + extra field).
    start = sheet.header_offset + 30 + len(sheet.filename.encode()) + len(sheet.extra)
    for offset in range(start + 10, start + 20):
        data[offset] ^= 0xFF
    assert "referrals.xlsx is damaged" in refusal(bytes(data), "referrals.xlsx")


def test_a_workbook_that_unpacks_too_large_is_refused(monkeypatch):
    # The real limit is hundreds of MB; a small one shows the check without building a zip bomb.
    monkeypatch.setattr(referral_file, "_MAX_XLSX_UNPACKED_BYTES", 1000)
    message = refusal(xlsx_bytes([list(GOOD), list(GOOD.values())]), "r.xlsx")
    assert message.startswith("The workbook unpacks to more than")


def test_a_utf8_file_with_a_bom_is_read():
    (row,) = results(b"\xef\xbb\xbf" + csv_bytes({**GOOD, "first_name": "José"}))
    assert (row.account_number, row.first_name) == ("A-1", "José")


def test_a_windows_1252_file_is_decoded_correctly():
    data = csv_bytes({**GOOD, "first_name": "José", "last_name": "Müller"}).decode()
    (row,) = results(data.encode("cp1252"))
    assert (row.first_name, row.last_name) == ("José", "Müller")


def test_a_file_in_neither_utf8_nor_windows_1252_is_refused():
    data = csv_bytes(GOOD).replace(b"Jane", b"Ja\x81ne")
    assert 'choose "CSV UTF-8 (Comma delimited)"' in refusal(data)


def test_windows_line_endings_and_a_final_line_without_one_are_fine():
    data = csv_bytes(GOOD).rstrip(b"\r\n")
    assert isinstance(results(data)[0], ReferralRow)


def test_an_unclosed_quote_refuses_the_file_naming_the_line():
    later = csv_bytes(*({**GOOD, "account_number": f"A-{n}"} for n in range(5))).split(b"\r\n", 1)
    data = csv_bytes(GOOD) + b'A-2,"Jane,Doe,MA,02108,100,2026-01-15\r\n' + later[1]
    message = refusal(data)
    assert message.startswith("Line 3 of the file cannot be read as CSV: a quoted value is never")
    assert "CSV UTF-8" in message


def test_text_after_a_closing_quote_refuses_the_file():
    data = csv_bytes(GOOD) + b'A-2,"Jane" Q,Doe,MA,02108,100,2026-01-15\r\n'
    assert refusal(data).startswith(
        "Line 3 of the file cannot be read as CSV: a quoted value has more text after its closing"
    )


def test_a_giant_cell_refuses_the_file():
    limit = csv.field_size_limit()
    data = csv_bytes(GOOD) + b"A-2," + b"x" * (limit + 1) + b",Doe,MA,02108,1,2026-01-15\r\n"
    assert f"Line 3 of the file cannot be read as CSV: a value is longer than {limit:,}" in (
        refusal(data)
    )


def test_a_broken_line_late_in_the_file_refuses_it_before_any_row_is_yielded():
    data = csv_bytes(*({**GOOD, "account_number": f"A-{n}"} for n in range(500)))
    assert "Line 502" in refusal(data + b'A-x,"Jane\r\n')


# --- XLSX --------------------------------------------------------------------------------------


def test_an_xlsx_workbook_is_read_with_excel_cell_types():
    data = xlsx_bytes(
        [
            ["Account Number", "First Name", "Last Name", "State", "Postal Code", "Principal"]
            + ["Interest", "Due Date", "Phone"],
            [1001, "José", "Müller", "MA", 2108, 1234.5, 0.1 + 0.2, datetime(2026, 1, 15, 9, 30)]
            + [6175550123],
            [],
            ["A-2", "Jane", "Doe", "MA", "02108", 1234.5600000000002, None, date(2026, 1, 15)],
        ]
    )
    first, second = results(data, "referrals.xlsx")
    assert first == ReferralRow(
        row=2,
        account_number="1001",
        debtor_type="consumer",
        first_name="José",
        last_name="Müller",
        company_name="",
        email=None,
        phone="+16175550123",
        address_line1="",
        address_line2="",
        city="",
        state="MA",
        postal_code="02108",
        principal_cents=123450,
        interest_cents=30,
        fees_cents=0,
        due_date=date(2026, 1, 15),
        itemization_date=date(2026, 1, 15),
        last_payment_date=None,
        invoice_number=None,
        service_description=None,
        itemization_date_given=False,
    )
    assert (second.row, second.principal_cents, second.interest_cents) == (4, 123456, 0)


def test_an_xlsx_is_recognised_by_its_bytes_whatever_its_name():
    data = xlsx_bytes([list(GOOD), list(GOOD.values())])
    (row,) = results(data, "upload")
    assert row.account_number == "A-1"


def test_an_xlsx_row_is_checked_like_a_csv_row():
    data = xlsx_bytes([list(GOOD), [*list(GOOD.values())[:5], -12.5, "2026-01-15"]])
    (result,) = results(data, "r.xlsx")
    assert_rejection(result, 2, "principal", "principal cannot be negative ('-12.5')")


def test_an_xlsx_reads_only_the_first_sheet():
    book = openpyxl.Workbook()
    book.active.append(list(GOOD))
    book.active.append(list(GOOD.values()))
    other = book.create_sheet("Other")
    other.append(["nothing", "here"])
    other.append(["really", "nothing"])
    book.move_sheet("Other", offset=-1)
    buffer = io.BytesIO()
    book.save(buffer)
    assert "The file has no account_number" in refusal(buffer.getvalue(), "r.xlsx")


def test_an_xlsx_with_a_header_only_is_refused():
    assert "no rows of accounts" in refusal(xlsx_bytes([list(GOOD), [None, None]]), "r.xlsx")


def test_an_empty_xlsx_is_refused():
    assert "first sheet is empty" in refusal(xlsx_bytes([]), "r.xlsx")


# --- streaming ---------------------------------------------------------------------------------


def test_fifty_thousand_rows_stream_in_a_few_seconds():
    header = ",".join(GOOD) + "\r\n"
    lines = (f"A-{n},Jane,Doe,MA,02108,$1,2026-01-15\r\n" for n in range(50_000))
    data = (header + "".join(lines)).replace("$1,", '"$1,234.56",').encode()
    started = time.perf_counter()
    found = parse(data, "big.csv", as_of=AS_OF)
    assert isinstance(found, Iterator)
    count = sum(1 for result in found if isinstance(result, ReferralRow))
    elapsed = time.perf_counter() - started
    assert count == 50_000
    assert elapsed < 8, f"50,000 rows took {elapsed:.1f} s"


# --- csvsafe -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=SUM(A1)", "'=SUM(A1)"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@x", "'@x"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("Jane", "Jane"),
        ("a=b", "a=b"),
        ("", ""),
        (None, ""),
        (5, "5"),
        (-5, "'-5"),
        (date(2026, 1, 15), "2026-01-15"),
    ],
)
def test_neutralise(value, expected):
    assert neutralise(value) == expected


def test_write_csv_neutralises_every_cell_including_the_header():
    text = write_csv(
        [["A-1", '=HYPERLINK("x")', "Doe, Jane", None], ["A-2", "@x", 12, "+1"]],
        header=["account", "=name", "full name", "note"],
    )
    assert text.endswith("\r\n")
    assert list(csv.reader(io.StringIO(text, newline=""))) == [
        ["account", "'=name", "full name", "note"],
        ["A-1", '\'=HYPERLINK("x")', "Doe, Jane", ""],
        ["A-2", "'@x", "12", "'+1"],
    ]


def test_write_csv_accepts_a_generator():
    text = write_csv((["x", n] for n in range(2)), header=["a", "b"])
    assert text == "a,b\r\nx,0\r\nx,1\r\n"


def test_no_row_is_lost_between_accepted_and_rejected():
    rows = [
        GOOD,
        {**GOOD, "account_number": "A-2", "state": "ZZ"},
        {**GOOD, "account_number": "A-3"},
    ]
    found = results(csv_bytes(*rows))
    assert [r.row for r in found] == [2, 3, 4]
    assert [type(r).__name__ for r in found] == ["ReferralRow", "Rejection", "ReferralRow"]
    assert_rejection(found[1], 3, "state", "state 'ZZ' is not a US state code like NY")


@pytest.mark.parametrize(
    ("given", "kind"),
    [
        ("written_contract", "written_contract"),
        ("Open Account", "open_account"),
        ("promissory-note", "promissory_note"),
        ("ORAL", "oral"),
        ("", None),
    ],
)
def test_the_kind_of_debt_is_read_for_the_statute_of_limitations(given, kind):
    assert accepted(debt_kind=given).debt_kind == kind


def test_an_unknown_kind_of_debt_is_rejected():
    result = rejected(debt_kind="credit card")
    assert_rejection(
        result,
        2,
        "debt_kind",
        "debt_kind 'credit card' is not one of: written_contract, open_account, "
        "promissory_note, oral",
    )


# --- the referral's itemisation (Reg F 1006.34(c)(2), SPEC §5) ---------------------------------


def test_a_file_without_the_itemisation_columns_owes_the_total_on_the_due_date():
    row = accepted(interest="5.00", fees="2.50")
    assert row.itemization_date == date(2026, 1, 15)
    assert row.itemization_date_type == "last_statement"
    assert row.amount_on_itemization_date_cents is None
    assert row.amount_on_itemization_date == 10_750
    assert (
        row.interest_since_itemization_cents,
        row.fees_since_itemization_cents,
        row.payments_since_itemization_cents,
        row.credits_since_itemization_cents,
    ) == (0, 0, 0, 0)


def test_an_itemisation_that_adds_up_is_read():
    row = accepted(
        principal="1,000.00",
        interest="30.00",
        fees="25.00",
        itemization_date="2026-01-31",
        itemization_date_type="Charge-Off",
        amount_on_itemization_date="$1,100.00",
        interest_since_itemization="30.00",
        fees_since_itemization="25.00",
        payments_since_itemization="80.00",
        credits_since_itemization="20.00",
    )
    assert row.itemization_date_type == "charge_off"
    assert row.amount_on_itemization_date_cents == 110_000
    assert row.interest_since_itemization_cents == 3_000
    assert row.fees_since_itemization_cents == 2_500
    assert row.payments_since_itemization_cents == 8_000
    assert row.credits_since_itemization_cents == 2_000
    assert row.total_cents == 105_500 == 110_000 + 3_000 + 2_500 - 8_000 - 2_000


def test_an_itemisation_that_does_not_add_up_is_rejected_with_the_arithmetic():
    result = rejected(
        principal="1,000.00",
        amount_on_itemization_date="1,100.00",
        interest_since_itemization="30.00",
        payments_since_itemization="80.00",
    )
    assert_rejection(
        result,
        2,
        "amount_on_itemization_date",
        "the itemisation does not add up: amount_on_itemization_date 1,100.00"
        " + interest_since_itemization 30.00 + fees_since_itemization 0.00"
        " − payments_since_itemization 80.00 − credits_since_itemization 0.00 = 1,050.00,"
        " but principal 1,000.00 + interest 0.00 + fees 0.00 = 1,000.00",
    )


def test_amounts_since_without_the_amount_on_the_date_count_from_the_total():
    # SPEC §5: the amount on the itemisation date defaults to the total (nothing since), so
    # interest said to be charged since cannot add up.
    result = rejected(interest_since_itemization="5.00")
    assert_rejection(
        result, 2, "amount_on_itemization_date", "100.00 (not given: the total) + interest"
    )


def test_an_unknown_itemisation_date_type_is_rejected():
    result = rejected(itemization_date_type="birthday")
    assert_rejection(
        result, 2, "itemization_date_type", "'birthday' is not one of last_statement, charge_off"
    )


@pytest.mark.parametrize("column", ["amount_on_itemization_date", "credits_since_itemization"])
def test_a_negative_or_garbled_itemisation_amount_is_rejected(column):
    assert_rejection(rejected(**{column: "-5"}), 2, column, "cannot be negative")
    assert_rejection(rejected(**{column: "lots"}), 2, column, "is not an amount")


# --- separators ------------------------------------------------------------------------------


def _joined(separator: str) -> bytes:
    header = ["account_number", "first_name", "last_name", "state", "postal_code", "principal"]
    header.append("due_date")
    row = ["A-1", "Jane", "Doe, Jr.", "MA", "02108", "1,234.56", "2026-01-02"]
    out = io.StringIO()
    writer = csv.writer(out, delimiter=separator, lineterminator="\r\n")
    writer.writerows([header, row])
    return out.getvalue().encode()


@pytest.mark.parametrize("separator", [",", ";", "\t"])
def test_comma_semicolon_and_tab_files_read_alike(separator):
    [row] = list(parse(_joined(separator), "f.csv", as_of=AS_OF))
    assert isinstance(row, ReferralRow), row
    assert (row.last_name, row.principal_cents) == ("Doe, Jr.", 123456)


def test_a_semicolon_header_with_commas_inside_quotes_is_still_semicolons():
    data = b'account_number;first_name;"last, name";state;postal_code;principal;due_date\r\n'
    data += b"A-1;Jane;Doe;MA;02108;10.00;2026-01-02\r\n"
    assert read_header(data, "f.csv") == [
        "account_number",
        "first_name",
        "last, name",
        "state",
        "postal_code",
        "principal",
        "due_date",
    ]


def test_a_single_column_header_is_refused_for_its_separator():
    with pytest.raises(FileRefused, match="single column: the values must be separated by"):
        read_header(_joined(",").replace(b",", b"|"), "f.csv")
