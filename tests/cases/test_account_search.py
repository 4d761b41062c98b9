"""A whole account number in the search box is looked up by `ix_cases_account`, not the
trigram index (issue 21): the same cases, in the same order, as the substring match finds."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from cases.case import REFERENCE, STATUSES, Case, search, whole_account_number
from cases.debtors import Debtor

# Similar numbers (one digit apart, one the prefix of another, the same number twice), letters
# in them, and digits in a name that are no account number.
ACME_ACCOUNTS = [
    ("1234567890", "Nguyen", "closed"),
    ("1234567890", "Nguyen", "active"),  # the same account, placed again after it closed
    ("1234567891", "Garcia", "new"),
    ("1234567809", "Smith", "active"),
    ("0123456789", "Smithson", "active"),
    ("55501", "Lee", "new"),
    ("5550123", "Leeds", "active"),
    ("ACC-1001", "Park", "active"),
    ("ACC-10012", "Parker", "paid"),
    ("7654321", "Flat12", "new"),
]
OTHER_ACCOUNTS = [("1234567890", "Stranger", "active"), ("4445556", "Nguyen", "new")]


@pytest.fixture
def book(db_session, make_client, make_case):
    acme, other = make_client("ACME"), make_client("OTHR", "Other Co")
    cases = []
    for client, accounts in ((acme, ACME_ACCOUNTS), (other, OTHER_ACCOUNTS)):
        for n, (account, last_name, status) in enumerate(accounts):
            cases.append(
                make_case(
                    client,
                    account_number=account,
                    last_name=last_name,
                    status=status,
                    referred_on=dt.date(2026, 11, 1 + n % 3),
                )
            )
    return acme, other, cases


def _queries(cases: list[Case]) -> list[str]:
    """Every account number whole, in other letters and in parts (the start, the middle, the
    end), names, references whole and in part, and texts that match nothing."""
    queries = {"", "nguyen", "NGUYEN", "lee", "smith", "flat12", "12", "zzyzx", "9999999999"}
    for case in cases:
        account = case.account_number
        queries |= {account, account.lower(), f"  {account} ", account[:-1], account[1:]}
        queries |= {account[:4], account[2:6], account[-4:]}
        queries |= {case.reference, case.reference.lower(), case.reference[:-1]}
    return sorted(queries)


def _before(client_id: int | None, text: str, status: str) -> sa.Select:
    """The search as it was: a whole reference by the unique index, anything else a substring
    of `search_text`."""
    query = sa.select(Case.id)
    if client_id is not None:
        query = query.where(Case.client_id == client_id)
    text = text.strip()[:100]
    if REFERENCE.fullmatch(text):
        query = query.where(Case.reference == text.upper())
    elif text:
        query = query.where(Case.search_text.like(f"%{text.lower()}%"))
    if status in STATUSES:
        query = query.where(Case.status == status)
    return query


def test_every_search_finds_what_the_substring_search_found_in_the_same_order(db_session, book):
    acme, other, cases = book
    order = (Case.referred_on.desc(), Case.id.desc())
    compared = exact = 0
    for client_id in (acme.id, other.id, None):  # each client's search, and the staff's
        for text in _queries(cases):
            for status in ("", "active", "closed"):
                query = sa.select(Case.id)
                if client_id is not None:
                    query = query.where(Case.client_id == client_id)
                now = db_session.scalars(
                    search(db_session, query, text, status, client_id).order_by(*order)
                ).all()
                before = db_session.scalars(_before(client_id, text, status).order_by(*order)).all()
                assert now == before, (client_id, text, status)
                compared += 1
                exact += whole_account_number(db_session, text.strip(), client_id)
    assert compared > 300 and exact > 30  # the exact path was taken, and often


def test_which_texts_are_whole_account_numbers(db_session, book):
    acme, other, _ = book
    whole = {
        "1234567890": True,  # twice in ACME: both found
        "1234567809": True,
        "5550123": True,
        "ACC-1001": False,  # the start of ACC-10012: a part, so the substring search
        "ACC-10012": True,
        "55501": False,  # the start of 5550123
        "acc-10012": False,  # not as written on the case: the substring search finds it
        "123456789": False,  # a part of several, whole of none
        "4445556": False,  # the other client's
        "Flat12": False,  # no such account (a name)
        "nguyen": False,  # no digit: never read
    }
    assert {text: whole_account_number(db_session, text, acme.id) for text in whole} == whole
    assert whole_account_number(db_session, "4445556", other.id)
    assert whole_account_number(db_session, "4445556")  # the staff's search: every client


def test_a_whole_account_number_is_one_read_of_the_account_index(db_session, book):
    acme, _, _ = book
    statements = []
    engine = db_session.get_bind()

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        search(db_session, sa.select(Case.id), "1234567890", "", acme.id)
        search(db_session, sa.select(Case.id), "nguyen", "", acme.id)
        search(db_session, sa.select(Case.id), "RC-2611-00001", "", acme.id)
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)
    assert len(statements) == 1 and "account_number" in statements[0]


def test_an_account_number_held_inside_another_is_found_with_it(db_session, book):
    """Where exactness would differ — a number that is the start of a longer one — the search
    is the substring one: both cases, as before."""
    acme, _, _ = book
    found = db_session.scalars(
        search(db_session, sa.select(Case.account_number), "55501", "", acme.id).where(
            Case.client_id == acme.id
        )
    ).all()
    assert sorted(found) == ["55501", "5550123"]


def test_the_debtor_join_of_the_staff_list_is_kept(db_session, book):
    query = sa.select(Case.account_number, Debtor.last_name).join(
        Debtor, Debtor.id == Case.debtor_id
    )
    rows = db_session.execute(search(db_session, query, "1234567890", "active")).all()
    assert sorted(rows) == [("1234567890", "Nguyen"), ("1234567890", "Stranger")]


def test_a_whole_account_number_inside_another_finds_only_its_own_case(
    db_session, make_client, make_case
):
    """The one place the exact path differs from the substring search: a whole account number
    that also stands inside a longer one, not at its start (its end, its middle), or in a
    reference or a name. Looked up by the index, it finds the cases with that number; the
    substring search found the longer one too."""
    acme = make_client("ACME")
    make_case(acme, account_number="98765")
    make_case(acme, account_number="X-98765")
    query = sa.select(Case.account_number).where(Case.client_id == acme.id)
    assert db_session.scalars(search(db_session, query, "98765", "", acme.id)).all() == ["98765"]
    assert sorted(db_session.scalars(search(db_session, query, "9876", "", acme.id))) == [
        "98765",
        "X-98765",
    ]
