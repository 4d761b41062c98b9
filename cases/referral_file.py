"""Reading a client's referral file (SPEC §5): CSV or XLSX in, checked rows and rejections out."""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import itertools
import math
import re
import sqlite3
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import BinaryIO

import email_validator
import openpyxl
import phonenumbers
import zipcodes
from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import (
    CASE_INSENSITIVE_MAILBOX_NAMES,
    EMAIL_MAX_LENGTH,
    LOCAL_PART_MAX_LENGTH,
)

from cases.case import DEBT_KINDS, PROGRAMS

MAX_FILE_BYTES = 200 * 1024 * 1024  # a bigger file is refused whole (1,000,000 rows: ~150 MB)
MAX_FIELD_CHARS = 1000  # a longer cell rejects its row

# Reg F 1006.34(c)(2): what changed between the itemisation date and the referral.
SINCE_ITEMIZATION_COLUMNS = (
    "interest_since_itemization",
    "fees_since_itemization",
    "payments_since_itemization",
    "credits_since_itemization",
)
ITEMIZATION_DATE_TYPES = ("last_statement", "charge_off", "last_payment", "transaction", "judgment")
REQUIRED_COLUMNS = ("account_number", "state", "postal_code", "principal", "due_date")
# In the order of the SPEC table, which is also the order a row's problems are looked for.
KNOWN_COLUMNS = (
    "account_number",
    "debtor_type",
    "first_name",
    "last_name",
    "company_name",
    "email",
    "phone",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
    "principal",
    "interest",
    "fees",
    "due_date",
    "itemization_date",
    "itemization_date_type",
    "amount_on_itemization_date",
    *SINCE_ITEMIZATION_COLUMNS,
    "last_payment_date",
    "invoice_number",
    "service_description",
    "debt_kind",
    "original_creditor_name",
    "original_creditor_address",
    "program",
)
# An early-out account may be placed from its first late day (cases.early_out).
EARLY_OUT_MIN_AGE_DAYS = 1
ATTESTATION_NEEDED = (
    "The file has early_out rows, and early-out accounts are placed only with the client's "
    "attestation that none of them is in default under the client's own terms. Tick the "
    "attestation (or send early_out_attested) and upload the file again, or mark those rows "
    "program collection."
)

DEBTOR_TYPES = ("consumer", "commercial")
US_STATES = frozenset(
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH "
    "NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY PR GU VI AS MP".split()
)
# Excel stores a ZIP typed into a number cell as a number, dropping the leading zero of these.
ZERO_ZIP_STATES = frozenset("CT MA ME NH NJ RI VT PR VI".split())
_DOUBLE_ZERO_ZIP_STATES = frozenset({"PR", "VI"})  # their ZIPs start 006..009 and 008

# The csv module keeps a whole field in memory; its default limit (131,072 characters) already
# refuses a runaway cell long before MAX_FILE_BYTES would, so the process-wide limit is left alone.
_MAX_XLSX_UNPACKED_BYTES = 10 * MAX_FILE_BYTES  # sheet XML compresses well; more is a zip bomb
_MAX_AMOUNT_CENTS = 10**14  # a trillion dollars: anything larger is a typo or a pasted id
_MB = 1024 * 1024

_SAVE_AS = "Save it as CSV UTF-8 (.csv) or Excel Workbook (.xlsx) and upload it again."
_BINARY_SIGNATURES = (
    b"%PDF",
    b"\x89PNG",
    b"\xff\xd8\xff",  # JPEG
    b"GIF8",
    b"\xd0\xcf\x11\xe0",  # OLE2: the old binary .xls, .doc
    b"PK\x05\x06",  # an empty ZIP archive
    b"PK\x07\x08",  # a spanned ZIP archive
    b"\x1f\x8b",  # gzip
    b"{\\rtf",
)


class FileRefused(ValueError):
    """The whole file is refused; str(exc) is a plain message for a person that says what to do."""


@dataclass(frozen=True)
class Rejection:
    row: int  # spreadsheet row number: the header is row 1
    column: str  # our column name, or "" when no single column applies
    reason: str


@dataclass(frozen=True)
class ReferralRow:
    row: int
    account_number: str
    debtor_type: str
    first_name: str
    last_name: str
    company_name: str
    email: str | None
    phone: str | None
    address_line1: str
    address_line2: str
    city: str
    state: str
    postal_code: str
    principal_cents: int
    interest_cents: int
    fees_cents: int
    due_date: date
    itemization_date: date
    last_payment_date: date | None
    invoice_number: str | None
    service_description: str | None
    debt_kind: str | None = None  # for the statute of limitations (SPEC §6.11)
    # The referral's itemisation (Reg F 1006.34(c)(2)); a file without these columns says the
    # due date is a last-statement date and nothing accrued or was paid since.
    itemization_date_type: str = "last_statement"
    # False when the file gave no itemization_date and the due date stands in (SPEC §2).
    itemization_date_given: bool = True
    amount_on_itemization_date_cents: int | None = None  # None: the total owed
    interest_since_itemization_cents: int = 0
    fees_since_itemization_cents: int = 0
    payments_since_itemization_cents: int = 0
    credits_since_itemization_cents: int = 0
    # For a request under 12 CFR 1006.38(c) (SPEC §6.12).
    original_creditor_name: str | None = None
    original_creditor_address: str | None = None
    program: str = "collection"  # or early_out (cases.early_out)

    @property
    def total_cents(self) -> int:
        return self.principal_cents + self.interest_cents + self.fees_cents

    @property
    def amount_on_itemization_date(self) -> int:
        if self.amount_on_itemization_date_cents is None:
            return self.total_cents
        return self.amount_on_itemization_date_cents


def normalise_header(name: str) -> str:
    """Our spelling of a header cell: trimmed, lower case, runs of spaces/hyphens/underscores as one
    underscore; a trailing number joins its word, so "Address Line 1" is address_line1."""
    name = name.replace("\ufeff", "").strip().lower()
    name = re.sub(r"[\s_-]+", "_", name).strip("_")
    return re.sub(r"_(?=\d+$)", "", name)


# A file is given as its bytes (a small file, a batch from before the document store) or as an
# opener: a function that opens it anew for reading in binary, from its start, each time it is
# called (a file kept in the document store). It is read in chunks, never whole: a check that
# needs the whole file (its encoding, its CSV syntax) is a pass of its own over it.
Opener = Callable[[], BinaryIO]
Source = bytes | Opener
READ_CHUNK = 1024 * 1024


def opener(source: Source) -> Opener:
    """An opener for the file, whichever way it was given."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        return lambda: io.BytesIO(data)
    return source


def read_header(data: Source, filename: str) -> list[str]:
    """The header cells as written, for a column-mapping screen.

    Refuses a file that is too big, not CSV or XLSX, unreadable, or without data rows; it does not
    check the columns, since mapping them is what the header is wanted for.
    """
    table = _open_table(data, filename)
    table.close()
    return table.header


def raw_rows(data: Source, filename: str) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The header as written and each data row's cells as written, with its row number (for
    handing rejected rows back to the client to fix)."""
    table = _open_table(data, filename)
    return table.header, table.rows


def parse(
    data: Source,
    filename: str,
    *,
    as_of: date,
    min_age_days: int = 90,
    mapping: dict[str, str] | None = None,
    early_out_attested: bool = False,
) -> Iterator[ReferralRow | Rejection]:
    """Check the whole file now (raising FileRefused), then yield one result per data row, in order.

    A row yields a ReferralRow, or one Rejection for the first problem found (columns checked in
    the SPEC table's order). Completely blank rows are skipped. `mapping` maps the client's header
    names to ours; unknown columns are ignored. An early_out row in a file the client did not
    attest (`early_out_attested`) refuses the file, raised where the row is read.
    """
    return parse_counted(
        data,
        filename,
        as_of=as_of,
        min_age_days=min_age_days,
        mapping=mapping,
        early_out_attested=early_out_attested,
    )[1]


def parse_counted(
    data: Source,
    filename: str,
    *,
    as_of: date,
    min_age_days: int = 90,
    mapping: dict[str, str] | None = None,
    early_out_attested: bool = False,
) -> tuple[int | None, Iterator[ReferralRow | Rejection]]:
    """parse(), with the number of lines under the header of a CSV file (counted by the syntax
    pass that reads it anyway; blank ones included: it sizes a progress bar), None for XLSX."""
    table = _open_table(data, filename)
    try:
        positions = _resolve_columns(table.header, mapping or {})
    except BaseException:
        table.close()
        raise
    rows = _check_rows(table, positions, as_of, min_age_days)
    return table.records, rows if early_out_attested else _refuse_unattested(rows)


def _refuse_unattested(
    rows: Iterator[ReferralRow | Rejection],
) -> Iterator[ReferralRow | Rejection]:
    for result in rows:
        if isinstance(result, ReferralRow) and result.program == "early_out":
            raise FileRefused(ATTESTATION_NEEDED)
        yield result


# --- the file as a whole ---------------------------------------------------------------------


@dataclass
class _Table:
    header: list[str]
    rows: Iterator[tuple[int, list[str]]]  # (spreadsheet row number, cells) after the header
    width: int  # header cells including trailing blank ones; CSV rows beyond it are suspect
    is_csv: bool
    records: int | None = None  # CSV lines under the header (the syntax pass counts them)

    def close(self) -> None:
        """Close the file now rather than when the rows are dropped."""
        close = getattr(self.rows, "close", None)
        if close:
            close()


def _open_table(data: Source, filename: str) -> _Table:
    open_file = opener(data)
    with open_file() as file:
        size = file.seek(0, io.SEEK_END)
        if size > MAX_FILE_BYTES:
            raise FileRefused(
                f"The file is {size / _MB:.1f} MB; the limit is {MAX_FILE_BYTES // _MB} MB. "
                "Split it into smaller files and upload each one."
            )
        file.seek(0)
        if _blank_file(file):
            raise FileRefused(
                "The file is empty. Upload a file with a header row and at least one row."
            )
        file.seek(0)
        is_zip = file.read(4) == b"PK\x03\x04"
    records = None
    if is_zip or filename.lower().endswith(".xlsx"):
        header, rows = _open_xlsx(open_file, filename)
        is_csv = False
    else:
        header, rows, records = _open_csv(open_file, filename)
        is_csv = True
    if not any(cell.strip() for cell in header):
        rows.close()
        raise FileRefused(
            "The first row of the file is blank. It must hold the column names, such as "
            + ", ".join(REQUIRED_COLUMNS)
            + "."
        )
    numbered = enumerate(rows, start=2)
    try:
        data_rows = _with_data(numbered)
    except FileRefused:
        rows.close()
        raise
    return _Table(_trim_trailing_blanks(header), data_rows, len(header), is_csv, records)


def _blank_file(file: BinaryIO) -> bool:
    """Nothing but a BOM and white space."""
    first = True
    while chunk := file.read(READ_CHUNK):
        if first:
            chunk, first = chunk.removeprefix(codecs.BOM_UTF8), False
        if chunk.strip():
            return False
    return True


def _with_data(rows: Iterator[tuple[int, list[str]]]) -> Iterator[tuple[int, list[str]]]:
    """Refuse now when no row under the header holds anything; else the rows from the first such."""
    for row, cells in rows:
        if not _is_blank(cells):
            return _chained((row, cells), rows)
    raise FileRefused("The file has a header but no rows of accounts under it.")


def _chained(first: tuple[int, list[str]], rest: Iterator) -> Iterator[tuple[int, list[str]]]:
    # A generator (not itertools.chain) so that closing it closes the file's reader.
    try:
        yield first
        yield from rest
    finally:
        close = getattr(rest, "close", None)
        if close:
            close()


def _not_a_table(filename: str) -> str:
    return f"{filename or 'The file'} is not a CSV or XLSX file. {_SAVE_AS}"


def _trim_trailing_blanks(cells: list[str]) -> list[str]:
    end = len(cells)
    while end and not cells[end - 1].strip():
        end -= 1
    return cells[:end]


def _is_blank(cells: list[str]) -> bool:
    return not any(cell.strip() for cell in cells)


# --- CSV -------------------------------------------------------------------------------------


def _open_csv(open_file: Opener, filename: str) -> tuple[list[str], Iterator[list[str]], int]:
    encoding = _encoding(open_file, filename)
    delimiter = _delimiter(open_file, encoding)
    # Read it through once so a broken line refuses the file before any row is yielded.
    records = _check_csv_syntax(open_file, encoding, delimiter)
    reader = _csv_reader(open_file, encoding, delimiter)
    header = next(reader, [])
    return header, reader, max(records - 1, 0)


# What separates the values: a comma (SPEC §5), or what spreadsheets in other locales write.
DELIMITERS = {",": "commas", ";": "semicolons", "\t": "tabs"}


def _delimiter(open_file: Opener, encoding: str) -> str:
    """The separator of the header row: of comma, semicolon and tab, the one that splits it into
    the most columns (a comma on a tie). A header that none of them splits is refused: no
    referral file has a single column, so the file uses a separator we do not read."""
    first_line = _first_line(open_file, encoding)
    widths = {
        delimiter: len(next(csv.reader([first_line], delimiter=delimiter), []))
        for delimiter in DELIMITERS
    }
    best = max(widths, key=lambda d: (widths[d], d == ","))
    if widths[best] < 2:
        shown = first_line if len(first_line) <= 80 else first_line[:77] + "..."
        raise FileRefused(
            f"The header row ('{shown}') is a single column: the values must be separated by "
            "commas, semicolons or tabs. Save the file as CSV UTF-8 and upload it again."
        )
    return best


def _first_line(open_file: Opener, encoding: str) -> str:
    """The first line with something on it (lines as str.splitlines cuts them), read in chunks."""
    with _text_of(open_file, encoding) as text:
        pending = ""
        while True:
            chunk = text.read(READ_CHUNK)
            lines = (pending + chunk).splitlines(keepends=True)
            # The last piece may be the start of a line the next chunk goes on with.
            pending = lines.pop() if chunk and lines else ""
            for line in lines:
                content = next(iter(line.splitlines()), "")
                if content.strip():
                    return content
            if not chunk:
                return ""


def _text_of(open_file: Opener, encoding: str) -> io.TextIOWrapper:
    return io.TextIOWrapper(open_file(), encoding=encoding, newline="")


def _encoding(open_file: Opener, filename: str) -> str:
    """UTF-8 (a BOM is dropped), else Windows-1252, checked over the whole file in chunks;
    refuses a binary file (a known signature, or a NUL anywhere)."""
    with open_file() as file:
        if file.read(16).startswith(_BINARY_SIGNATURES):
            raise FileRefused(_not_a_table(filename))
    # Excel's plain "CSV" export on Windows writes Windows-1252.
    for encoding in ("utf-8-sig", "cp1252"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with open_file() as file:
                while chunk := file.read(READ_CHUNK):
                    if b"\x00" in chunk:
                        raise FileRefused(_not_a_table(filename))
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return encoding
    raise FileRefused(
        "The file's text encoding could not be read. In Excel use File > Save As and choose "
        '"CSV UTF-8 (Comma delimited)", then upload it again.'
    )


def _csv_reader(open_file: Opener, encoding: str, delimiter: str) -> Iterator[list[str]]:
    """The file's CSV records, read from the file as they are wanted; closing it closes the file."""
    with _text_of(open_file, encoding) as text:
        yield from csv.reader(text, delimiter=delimiter, strict=True)


def _check_csv_syntax(open_file: Opener, encoding: str, delimiter: str) -> int:
    """The number of CSV records in the file, or FileRefused naming the line that breaks."""
    with _text_of(open_file, encoding) as text:
        reader = csv.reader(text, delimiter=delimiter, strict=True)
        # Name the line the broken row starts on: an unclosed quote makes the reader run to the end.
        start = 1
        records = 0
        try:
            for _ in reader:
                records += 1
                start = reader.line_num + 1
        except csv.Error as exc:
            raise FileRefused(
                f"Line {start} of the file cannot be read as CSV: {_csv_problem(exc)}. "
                "Correct that line, or save the file again from the spreadsheet as CSV UTF-8, "
                "and upload it again."
            ) from None
    return records


def _csv_problem(exc: csv.Error) -> str:
    message = str(exc)
    if "unexpected end of data" in message:
        return 'a quoted value is never closed (a " is missing)'
    if "expected after" in message:
        return "a quoted value has more text after its closing quote"
    if "field larger than field limit" in message:
        return f"a value is longer than {csv.field_size_limit():,} characters"
    return message


# --- XLSX ------------------------------------------------------------------------------------


def _open_xlsx(open_file: Opener, filename: str) -> tuple[list[str], Iterator[list[str]]]:
    file = open_file()
    try:
        _check_zip(file, filename)
        file.seek(0)
        try:
            with _quiet_openpyxl():
                # Read-only: openpyxl reads the sheet's XML from the file as rows are asked for.
                book = openpyxl.load_workbook(file, read_only=True, data_only=True)
                sheet = book.worksheets[0]
        except Exception as exc:  # openpyxl fails on a bad file with whatever its parser raised
            raise FileRefused(_not_a_table(filename)) from exc
    except BaseException:
        file.close()
        raise
    rows = _xlsx_rows(book, sheet, filename, file)
    header = next(rows, None)
    if header is None:
        raise FileRefused(
            "The workbook's first sheet is empty. Put the accounts on the first sheet."
        )
    return header, rows


def _check_zip(file: BinaryIO, filename: str) -> None:
    """Refuse a damaged or oversized workbook now rather than part-way through its rows."""
    # zipfile fails on a damaged archive with whatever its reader hit: BadZipFile, EOFError, a
    # ValueError ("negative seek value"), NotImplementedError ("zip file version 8.3"), ...
    try:
        archive = zipfile.ZipFile(file)
    except Exception:
        raise FileRefused(_not_a_table(filename)) from None
    with archive:
        unpacked = sum(info.file_size for info in archive.infolist())
        if unpacked > _MAX_XLSX_UNPACKED_BYTES:
            raise FileRefused(
                f"The workbook unpacks to more than {_MAX_XLSX_UNPACKED_BYTES // _MB} MB. "
                "Save the sheet of accounts as CSV UTF-8 and upload that."
            )
        try:
            intact = archive.testzip() is None
        except Exception:
            intact = False  # unreadable compression, encryption, a truncated or misplaced member
    if not intact:
        raise FileRefused(f"{filename or 'The workbook'} is damaged. {_SAVE_AS}")


def _xlsx_rows(book, sheet, filename: str, file: BinaryIO) -> Iterator[list[str]]:
    rows = sheet.iter_rows(values_only=True)
    try:
        while True:
            try:
                with _quiet_openpyxl():
                    values = next(rows, None)
            except Exception as exc:  # a sheet whose XML breaks part-way through
                raise FileRefused(f"{filename or 'The workbook'} is damaged. {_SAVE_AS}") from exc
            if values is None:
                return
            yield [_xlsx_text(value) for value in values]
    finally:
        book.close()
        file.close()


@contextlib.contextmanager
def _quiet_openpyxl() -> Iterator[None]:
    # openpyxl warns about workbook features it drops (data validation, extensions); we read only
    # values, so those warnings say nothing to us. Held only around openpyxl calls, never a yield.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module="openpyxl")
        yield


def _xlsx_text(value: object) -> str:
    """A cell value as the text the same cell would have in a CSV export."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return _float_text(value)
    return str(value)


def _float_text(value: float) -> str:
    # Excel keeps 15 significant digits; rounding there drops binary artefacts such as
    # 1234.5600000000002 without ever using the float as money.
    if not math.isfinite(value):
        return str(value)
    text = format(Decimal(format(value, ".15g")), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


# --- columns ---------------------------------------------------------------------------------


def _resolve_columns(header: list[str], mapping: dict[str, str]) -> dict[str, int]:
    """Our column name -> its index in the row; refuses duplicates and missing required columns."""
    aliases = _normalise_mapping(mapping)
    positions: dict[str, int] = {}
    for index, cell in enumerate(header):
        name = normalise_header(cell)
        column = aliases.get(name, name)
        if column not in KNOWN_COLUMNS:
            continue
        if column in positions:
            raise FileRefused(
                f"The header has two columns that mean {column}: "
                f"'{header[positions[column]]}' and '{cell}'. Remove one and upload the file again."
            )
        positions[column] = index
    _require_columns(header, positions)
    return positions


def _normalise_mapping(mapping: dict[str, str]) -> dict[str, str]:
    aliases = {}
    for theirs, ours in mapping.items():
        target = normalise_header(ours or "")
        if target and target not in KNOWN_COLUMNS:
            raise ValueError(
                f"mapping sends {theirs!r} to {ours!r}, which is not a referral column"
            )
        aliases[normalise_header(theirs)] = target
    return aliases


def _require_columns(header: list[str], positions: dict[str, int]) -> None:
    missing = [column for column in REQUIRED_COLUMNS if column not in positions]
    if missing:
        noun = "column" if len(missing) == 1 else "columns"
        raise FileRefused(
            f"The file has no {', '.join(missing)} {noun}. The header has: {_describe(header)}. "
            "Add or rename the missing columns (or map them to yours) and upload the file again."
        )
    if "last_name" not in positions and "company_name" not in positions:
        raise FileRefused(
            "The file has neither a last_name nor a company_name column, so no debtor can be "
            f"named. The header has: {_describe(header)}. Add one and upload the file again."
        )


# Other names clients' systems give our columns, compared as letters and digits only ("Acct #"
# is "acct"), for pre-selecting the column-mapping form; the client confirms the choice.
SYNONYMS = {
    "account_number": "acct acctno acctnum acctnumber account accountno accountnum accountid "
    "accountnumber accountref accountreference customernumber customerno customerid custno "
    "clientaccount reference refno",
    "debtor_type": "type debtortype customertype accounttype",
    "first_name": "first firstname fname givenname forename",
    "last_name": "last lastname lname surname familyname",
    "company_name": "company companyname business businessname organisation organization "
    "employername",
    "email": "email emailaddress mail",
    "phone": "phone phonenumber phoneno telephone tel mobile cell cellphone homephone",
    "address_line1": "address address1 addressline1 street streetaddress addr addr1 line1",
    "address_line2": "address2 addressline2 addr2 line2 suite apt unit",
    "city": "city town",
    "state": "st state statecode province region",
    "postal_code": "zip zipcode zip4 postcode postalcode",
    "principal": "principal balance amount amountdue amountowed balancedue principalbalance "
    "principalamount currentbalance outstanding outstandingbalance owed",
    "interest": "interest interestamount interestdue",
    "fees": "fees fee latefees latefee charges feesdue",
    "due_date": "due duedate datedue pastduedate dueon delinquencydate",
    "last_payment_date": "lastpayment lastpaymentdate lastpaid lastpaiddate dateoflastpayment",
    "invoice_number": "invoice invoiceno invoicenum invoicenumber",
    "service_description": "description service services servicedescription",
    "original_creditor_name": "originalcreditor originalcreditorname",
}


def _letters(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.replace("\ufeff", "").lower())


def guess_mapping(header: list[str]) -> dict[str, str]:
    """Our column -> the header cell that most likely holds it: the same name (as the parser
    matches it), else a known other name. Each cell is guessed for one column at most."""
    taken: set[int] = set()
    guesses: dict[str, str] = {}
    keys = [_letters(cell) for cell in header]
    for ours in KNOWN_COLUMNS:
        names = [_letters(ours), *SYNONYMS.get(ours, "").split()]
        for name in names:
            index = next((i for i, k in enumerate(keys) if k == name and i not in taken), None)
            if index is not None and header[index].strip():
                taken.add(index)
                guesses[ours] = header[index]
                break
    return guesses


def missing_after_mapping(mapping: dict[str, str]) -> list[str]:
    """Our columns a mapping (their name -> ours) still leaves without a column, as the
    mapping form names them: the required ones, and a debtor's name."""
    mapped = set(mapping.values())
    missing = [column for column in REQUIRED_COLUMNS if column not in mapped]
    if "last_name" not in mapped and "company_name" not in mapped:
        missing.append("last_name or company_name")
    return missing


def sample_values(data: Source, filename: str, rows: int = 3) -> dict[str, list[str]]:
    """Up to `rows` example values of each header cell (the first non-blank ones)."""
    table = _open_table(data, filename)
    samples: dict[str, list[str]] = {cell: [] for cell in table.header}
    for _, cells in itertools.islice(table.rows, 200):
        for cell, value in zip(table.header, cells, strict=False):
            if value.strip() and len(samples[cell]) < rows:
                samples[cell].append(value.strip()[:40])
        if all(len(v) >= rows for v in samples.values()):
            break
    table.close()
    return samples


def column_positions(header: list[str], mapping: dict[str, str]) -> dict[str, int]:
    """Our column -> its index in the header, as the parser reads it (for showing the cells a
    rejection names)."""
    return _resolve_columns(header, mapping)


def _describe(header: list[str], shown: int = 30) -> str:
    names = [f"'{cell}'" for cell in header if cell.strip()]
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


# --- rows ------------------------------------------------------------------------------------


class _Rejected(Exception):
    def __init__(self, column: str, reason: str) -> None:
        super().__init__(reason)
        self.column = column
        self.reason = reason


@dataclass(frozen=True)
class _Cells:
    """One row's cells, read by our column names."""

    values: list[str]
    positions: dict[str, int]

    def get(self, column: str) -> str:
        index = self.positions.get(column)
        if index is None or index >= len(self.values):
            return ""
        value = self.values[index].strip()
        if len(value) > MAX_FIELD_CHARS:
            raise _Rejected(column, f"{column} is longer than {MAX_FIELD_CHARS:,} characters")
        return value

    def required(self, column: str, why: str = "") -> str:
        value = self.get(column)
        if not value:
            raise _Rejected(column, f"{column} is required{why}")
        return value


def _check_rows(
    table: _Table, positions: dict[str, int], as_of: date, min_age_days: int
) -> Iterator[ReferralRow | Rejection]:
    first_rows = _FirstRows()  # account_number -> the row that keeps it
    index = positions["account_number"]
    try:
        while block := list(itertools.islice(table.rows, _BLOCK_ROWS)):
            block = [(row, values) for row, values in block if not _is_blank(values)]
            firsts = first_rows.first([(_raw(values, index), row) for row, values in block])
            for (row, values), first in zip(block, firsts, strict=True):
                try:
                    if table.is_csv:
                        _check_width(values, table.width)
                    yield _read_row(row, _Cells(values, positions), first, as_of, min_age_days)
                except _Rejected as problem:
                    yield Rejection(row, problem.column, problem.reason)
    finally:
        first_rows.close()
        table.close()


_BLOCK_ROWS = 1000


class _FirstRows:
    """The first row of each account number seen so far, for "repeats row N".

    The first `IN_MEMORY` account numbers are kept in a dict; the others in a private temporary
    SQLite database (on disk, deleted when closed), so that a file of a million rows needs no
    more memory than one of a hundred thousand. Asked a block of rows at a time.
    """

    IN_MEMORY = 100_000

    def __init__(self) -> None:
        self.memory: dict[str, int] = {}
        self.spilled: sqlite3.Connection | None = None

    def first(self, rows: list[tuple[str, int]]) -> list[int]:
        """For each (account number, row) in file order, the first row with that number."""
        firsts: list[int] = []
        later: list[tuple[int, str, int]] = []  # (index in firsts, account, row)
        for account, row in rows:
            first = self.memory.get(account, row) if account else row
            if first == row and account and account not in self.memory:
                if len(self.memory) < self.IN_MEMORY:
                    self.memory[account] = row
                else:
                    later.append((len(firsts), account, row))
            firsts.append(first)
        if later:
            for position, first in zip((p for p, _, _ in later), self._spill(later), strict=True):
                firsts[position] = first
        return firsts

    def _spill(self, rows: list[tuple[int, str, int]]) -> list[int]:
        if self.spilled is None:
            # "": a temporary database on disk, private to this connection, gone when closed.
            self.spilled = sqlite3.connect("", check_same_thread=False)
            self.spilled.executescript(
                "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;"
                "CREATE TABLE seen (account TEXT PRIMARY KEY, row INTEGER) WITHOUT ROWID;"
            )
        db = self.spilled
        db.executemany(
            "INSERT OR IGNORE INTO seen (account, row) VALUES (?, ?)",
            [(account, row) for _, account, row in rows],
        )
        accounts = list({account for _, account, _ in rows})
        marks = ",".join("?" * len(accounts))  # placeholders only: the values are bound
        query = f"SELECT account, row FROM seen WHERE account IN ({marks})"  # noqa: S608
        found = dict(db.execute(query, accounts))
        return [found[account] for _, account, _ in rows]

    def close(self) -> None:
        if self.spilled is not None:
            self.spilled.close()
            self.spilled = None


def _raw(values: list[str], index: int) -> str:
    return values[index].strip() if index < len(values) else ""


def _check_width(values: list[str], width: int) -> None:
    # More values than header columns usually means an unquoted comma (1,234.56) shifted every
    # value after it into the wrong column; importing that would put amounts in the wrong place.
    if any(cell.strip() for cell in values[width:]):
        raise _Rejected(
            "",
            f"the row has {len(_trim_trailing_blanks(values))} values but the header has "
            f"{width} columns; a value containing a comma must be in double quotes",
        )


def _read_row(
    row: int, cells: _Cells, first_row: int, as_of: date, min_age_days: int
) -> ReferralRow:
    account_number = cells.required("account_number")
    if first_row != row:
        raise _Rejected(
            "account_number",
            f"account_number {account_number} repeats row {first_row}; the first is kept",
        )
    debtor_type = _debtor_type(cells)
    first_name, last_name, company_name = _names(cells, debtor_type)
    email = _email(cells)
    phone = _phone(cells)
    address_line1, address_line2, city = (
        cells.get("address_line1"),
        cells.get("address_line2"),
        cells.get("city"),
    )
    state = _state(cells)
    postal_code = _postal_code(cells, state)
    principal, interest, fees = _amounts(cells)
    program = _program(cells)
    due_date = _due_date(
        cells, as_of, min_age_days if program == "collection" else EARLY_OUT_MIN_AGE_DAYS
    )
    given_date = _optional_date(cells, "itemization_date", as_of)
    itemization_date = given_date or due_date
    itemization_date_type = _itemization_date_type(cells)
    amount_on, since = _itemization(cells, principal + interest + fees)
    last_payment_date = _optional_date(cells, "last_payment_date", as_of)
    return ReferralRow(
        row=row,
        account_number=account_number,
        debtor_type=debtor_type,
        first_name=first_name,
        last_name=last_name,
        company_name=company_name,
        email=email,
        phone=phone,
        address_line1=address_line1,
        address_line2=address_line2,
        city=city,
        state=state,
        postal_code=postal_code,
        principal_cents=principal,
        interest_cents=interest,
        fees_cents=fees,
        due_date=due_date,
        itemization_date=itemization_date,
        last_payment_date=last_payment_date,
        invoice_number=cells.get("invoice_number") or None,
        service_description=cells.get("service_description") or None,
        debt_kind=_debt_kind(cells),
        itemization_date_type=itemization_date_type,
        itemization_date_given=given_date is not None,
        amount_on_itemization_date_cents=amount_on,
        interest_since_itemization_cents=since["interest_since_itemization"],
        fees_since_itemization_cents=since["fees_since_itemization"],
        payments_since_itemization_cents=since["payments_since_itemization"],
        credits_since_itemization_cents=since["credits_since_itemization"],
        original_creditor_name=_text(cells, "original_creditor_name", 200),
        original_creditor_address=_text(cells, "original_creditor_address", 500),
        program=program,
    )


def _program(cells: _Cells) -> str:
    raw = cells.get("program").lower().replace("-", "_").replace(" ", "_")
    if not raw:
        return "collection"
    if raw not in PROGRAMS:
        raise _Rejected(
            "program", f"program {cells.get('program')!r} is not one of {', '.join(PROGRAMS)}"
        )
    return raw


def _debt_kind(cells: _Cells) -> str | None:
    raw = cells.get("debt_kind")
    if not raw:
        return None
    kind = re.sub(r"[\s\-_]+", "_", raw.strip().lower())
    if kind not in DEBT_KINDS:
        raise _Rejected("debt_kind", f"debt_kind '{raw}' is not one of: {', '.join(DEBT_KINDS)}")
    return kind


def _text(cells: _Cells, column: str, limit: int) -> str | None:
    value = cells.get(column)
    if len(value) > limit:
        raise _Rejected(column, f"{column} is longer than {limit} characters")
    return value or None


def _debtor_type(cells: _Cells) -> str:
    raw = cells.get("debtor_type")
    debtor_type = raw.lower() or "consumer"
    if debtor_type not in DEBTOR_TYPES:
        raise _Rejected("debtor_type", f"debtor_type '{raw}' is not consumer or commercial")
    return debtor_type


def _names(cells: _Cells, debtor_type: str) -> tuple[str, str, str]:
    if debtor_type == "consumer":
        why = " for a consumer debtor"
        first_name = cells.required("first_name", why)
        last_name = cells.required("last_name", why)
        return first_name, last_name, cells.get("company_name")
    first_name, last_name = cells.get("first_name"), cells.get("last_name")
    return first_name, last_name, cells.required("company_name", " for a commercial debtor")


def _email(cells: _Cells) -> str | None:
    raw = cells.get("email")
    if not raw:
        return None
    plain = _plain_email(raw)
    if plain is not None:
        return plain
    try:
        return validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise _Rejected("email", f"email '{raw}' is not a valid address: {exc}") from None


# The usual address: ASCII dot-atom local part, lower-case-able hostname labels, a TLD of letters.
_PLAIN_EMAIL = re.compile(
    r"([A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*)"
    r"@((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})",
    re.ASCII,
)


def _plain_email(raw: str) -> str | None:
    """What validate_email would normalise a plain address to, at a tenth of its cost; None for
    any address it might treat otherwise (tests/cases/test_referral_file.py proves they agree).

    validate_email lower-cases the domain and a few role names (info@, sales@...), refuses
    special-use domains and over-long addresses; all of those are left to it.
    """
    match = _PLAIN_EMAIL.fullmatch(raw)
    if match is None or len(raw) > EMAIL_MAX_LENGTH:
        return None
    local, domain = match.groups()
    domain = domain.lower()
    if (
        len(local) > LOCAL_PART_MAX_LENGTH
        or local.lower() in CASE_INSENSITIVE_MAILBOX_NAMES
        or "--" in domain  # Punycode (xn--) and the labels RFC 5890 reserves
        or any(
            domain == d or domain.endswith("." + d)
            for d in email_validator.SPECIAL_USE_DOMAIN_NAMES
        )
    ):
        return None
    return f"{local}@{domain}"


def _phone(cells: _Cells) -> str | None:
    raw = cells.get("phone")
    if not raw:
        return None
    plain = _plain_phone(raw)
    if plain is not None:
        return plain
    try:
        number = phonenumbers.parse(raw, "US")
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise _Rejected("phone", f"phone '{raw}' is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# The usual US shapes: 2125550100, 212-555-0100, (212) 555-0100, +1 212.555.0100, 1-212-...
_PLAIN_PHONE = re.compile(
    r"(?:\+?1[ .-]?)?(?:\(([2-9]\d\d)\) ?|([2-9]\d\d)[ .-]?)(\d{3})[ .-]?(\d{4})", re.ASCII
)


def _plain_phone(raw: str) -> str | None:
    """The E.164 form of a valid number in a usual US shape, without phonenumbers.parse (which
    costs two thirds of the check); None for anything else, left to the full parse. The test
    in tests/cases/test_referral_file.py proves the two agree."""
    match = _PLAIN_PHONE.fullmatch(raw)
    if match is None:
        return None
    area, bare_area, exchange, line = match.groups()
    national = (area or bare_area) + exchange + line
    number = phonenumbers.PhoneNumber(country_code=1, national_number=int(national))
    # Valid for the US is valid (is_valid_number finds the region first, then asks this).
    return "+1" + national if phonenumbers.is_valid_number_for_region(number, "US") else None


def _state(cells: _Cells) -> str:
    raw = cells.required("state")
    if raw.upper() not in US_STATES:
        raise _Rejected("state", f"state '{raw}' is not a US state code like NY")
    return raw.upper()


_ZIP = re.compile(r"(\d{3,5})-?(\d{4})?")


def _postal_code(cells: _Cells, state: str) -> str:
    raw = cells.required("postal_code")
    match = _ZIP.fullmatch(raw)
    zip5 = _restore_leading_zeros(match.group(1), state) if match else None
    if zip5 is None:
        raise _Rejected(
            "postal_code", f"postal_code '{raw}' is not a ZIP code like 12345 or 12345-6789"
        )
    states = _states_of_zip(zip5)
    if not states:
        raise _Rejected("postal_code", f"postal_code {zip5} is not a US ZIP code")
    if state not in states:
        raise _Rejected(
            "postal_code", f"postal_code {zip5} is in {', '.join(sorted(states))}, not {state}"
        )
    plus4 = match.group(2)
    return f"{zip5}-{plus4}" if plus4 else zip5


def _restore_leading_zeros(digits: str, state: str) -> str | None:
    """The 5-digit ZIP, putting back the zeros a number cell dropped; None if it can't be one."""
    if len(digits) == 5:
        return digits
    if digits.startswith("0"):
        return None  # a number cell never starts with 0, so this is a typo, not Excel's doing
    if len(digits) == 4 and state in ZERO_ZIP_STATES:
        return "0" + digits
    if len(digits) == 3 and state in _DOUBLE_ZERO_ZIP_STATES:
        return "00" + digits
    return None


def _states_of_zip(zip5: str) -> frozenset[str]:
    return _zip_states(zip5[:3]).get(zip5, frozenset())


@cache
def _zip_states(prefix: str) -> dict[str, frozenset[str]]:
    """{ZIP: its states} for every ZIP starting with these 3 digits. A lookup scans the whole ZIP
    table, so it is done once per prefix (a file's ZIPs cluster by prefix) instead of once per
    ZIP; zipcodes.list_all() would do it once but keeps 80 MB of dicts for good."""
    states: dict[str, set[str]] = {}
    for place in zipcodes.similar_to(prefix):
        states.setdefault(place["zip_code"], set()).add(place["state"])
    return {zip5: frozenset(found) for zip5, found in states.items()}


# --- amounts ---------------------------------------------------------------------------------


_AMOUNT = re.compile(r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d{0,2})?|\.\d{1,2}")


def _amounts(cells: _Cells) -> tuple[int, int, int]:
    principal = _cents(cells, "principal", required=True)
    interest = _cents(cells, "interest")
    fees = _cents(cells, "fees")
    if principal + interest + fees == 0:
        raise _Rejected("principal", "the total owed (principal + interest + fees) is zero")
    return principal, interest, fees


def _itemization_date_type(cells: _Cells) -> str:
    raw = cells.get("itemization_date_type")
    if not raw or raw in ITEMIZATION_DATE_TYPES:
        return raw or "last_statement"
    kind = normalise_header(raw)
    if kind not in ITEMIZATION_DATE_TYPES:
        raise _Rejected(
            "itemization_date_type",
            f"itemization_date_type '{raw}' is not one of {', '.join(ITEMIZATION_DATE_TYPES)}",
        )
    return kind


_ITEMIZATION_AMOUNTS = frozenset({"amount_on_itemization_date", *SINCE_ITEMIZATION_COLUMNS})
_NOTHING_SINCE = dict.fromkeys(SINCE_ITEMIZATION_COLUMNS, 0)  # read only


def _itemization(cells: _Cells, total: int) -> tuple[int | None, dict[str, int]]:
    """The amount on the itemisation date (None when not given: the total) and the amounts
    since, checked to make the total owed (Reg F 1006.34(c)(2), SPEC §5)."""
    if _ITEMIZATION_AMOUNTS.isdisjoint(cells.positions):
        return None, _NOTHING_SINCE  # an older file: nothing since
    given = cells.get("amount_on_itemization_date")
    amount_on = _cents(cells, "amount_on_itemization_date") if given else None
    since = {column: _cents(cells, column) for column in SINCE_ITEMIZATION_COLUMNS}
    start = total if amount_on is None else amount_on
    now = (
        start
        + since["interest_since_itemization"]
        + since["fees_since_itemization"]
        - since["payments_since_itemization"]
        - since["credits_since_itemization"]
    )
    if now != total:
        principal, interest, fees = (_cents(cells, c) for c in ("principal", "interest", "fees"))
        raise _Rejected(
            "amount_on_itemization_date",
            "the itemisation does not add up: amount_on_itemization_date "
            f"{_dollars(start)}{' (not given: the total)' if amount_on is None else ''}"
            f" + interest_since_itemization {_dollars(since['interest_since_itemization'])}"
            f" + fees_since_itemization {_dollars(since['fees_since_itemization'])}"
            f" − payments_since_itemization {_dollars(since['payments_since_itemization'])}"
            f" − credits_since_itemization {_dollars(since['credits_since_itemization'])}"
            f" = {_dollars(now)}, but principal {_dollars(principal)} + interest "
            f"{_dollars(interest)} + fees {_dollars(fees)} = {_dollars(total)}",
        )
    return amount_on, since


def _dollars(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100:,}.{abs(cents) % 100:02d}"


def _cents(cells: _Cells, column: str, *, required: bool = False) -> int:
    raw = cells.required(column) if required else cells.get(column)
    if not raw:
        return 0
    negative, number = _split_sign(raw)
    if not _AMOUNT.fullmatch(number):
        raise _Rejected(column, f"{column} '{raw}' is not an amount like 1234.56")
    cents = int(Decimal(number.replace(",", "")) * 100)
    if negative and cents:
        raise _Rejected(column, f"{column} cannot be negative ('{raw}')")
    if cents >= _MAX_AMOUNT_CENTS:
        raise _Rejected(column, f"{column} '{raw}' is too large to be an amount owed")
    return cents


def _split_sign(raw: str) -> tuple[bool, str]:
    """(is negative, the number without sign or $): accepts -$5, $-5, $ 5 and -5."""
    text = raw.strip()
    negative = text.startswith("-")
    text = text.removeprefix("-").strip()
    if text.startswith("$"):
        text = text[1:].strip()
        if not negative and text.startswith("-"):
            negative = True
            text = text[1:].strip()
    return negative, text


# --- dates -----------------------------------------------------------------------------------


_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_US_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")


def _due_date(cells: _Cells, as_of: date, min_age_days: int) -> date:
    due = _date(cells.required("due_date"), "due_date", as_of)
    age = (as_of - due).days
    if age < min_age_days:
        raise _Rejected(
            "due_date",
            f"the account is {_days(age)} past due on {as_of.isoformat()}; "
            f"this client accepts accounts at least {_days(min_age_days)} past due",
        )
    return due


def _optional_date(cells: _Cells, column: str, as_of: date) -> date | None:
    raw = cells.get(column)
    return _date(raw, column, as_of) if raw else None


def _date(raw: str, column: str, as_of: date) -> date:
    if match := _ISO_DATE.fullmatch(raw):
        year, month, day = match.groups()
    elif match := _US_DATE.fullmatch(raw):
        month, day, year = match.groups()
    else:
        raise _Rejected(column, f"{column} '{raw}' is not a date like 2026-11-23 or 11/23/2026")
    try:
        value = date(int(year), int(month), int(day))
    except ValueError:
        raise _Rejected(column, f"{column} '{raw}' is not a real date") from None
    if value > as_of:
        raise _Rejected(
            column, f"{column} {value.isoformat()} is in the future (after {as_of.isoformat()})"
        )
    return value


def _days(count: int) -> str:
    return f"{count} day" if count == 1 else f"{count} days"
