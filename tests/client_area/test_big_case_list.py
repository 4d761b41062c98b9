"""The client's case list over a big book (issue 21): counted up to a limit ("more than
10,000" beyond), "Next" and "Previous" by the sort key of the row at the page's edge, and the
search box reading one column (reference, account number, the debtor's names)."""

import datetime as dt
import re
from html import unescape

import pytest
import sqlalchemy as sa

from cases.case import Case, search_text_of

PAGER = re.compile(r'<a href="([^"]+)">(Previous|Next)</a>')


def references(page: str) -> list[str]:
    return re.findall(r'/client/cases/(RC-[0-9-]+)"', page)


def links(page: str) -> dict[str, str]:
    return {label: unescape(href) for href, label in PAGER.findall(page)}


@pytest.fixture
def book(client, login, make_user, make_client, make_case, monkeypatch):
    """Eleven cases of one client on three referral days (and one of another client); pages of
    three, counted up to five."""
    monkeypatch.setattr("client_area.views.PAGE_SIZE", 3)
    monkeypatch.setattr("client_area.views.COUNT_LIMIT", 5)
    acme = make_client("ACME")
    cases = [
        make_case(
            acme,
            last_name=f"Person{n:02d}",
            status=("new", "active", "closed")[n % 3],
            close_reason="recalled" if n % 3 == 2 else None,
            referred_on=dt.date(2026, 11, 1 + n % 3),
        )
        for n in range(11)
    ]
    other = make_case(make_client("OTHR", "Other Co"), last_name="Stranger")
    login(make_user("client", client=acme))
    return cases, other


def walk(client, path: str) -> tuple[list[str], list[str]]:
    """Every page from `path` by its Next links; (references in order, page headings)."""
    seen, pagers = [], []
    while path:
        page = client.get(path).get_data(as_text=True)
        seen += references(page)
        pagers.append(re.search(r"<span>(Page [^<]*)</span>", page).group(1))
        path = links(page).get("Next")
    return seen, pagers


@pytest.mark.parametrize(
    ("sort", "key"),
    [
        ("newest", lambda c: (-c.referred_on.toordinal(), -c.id)),
        ("oldest", lambda c: (c.referred_on, c.id)),
        ("reference", lambda c: c.reference),
        ("status", lambda c: (c.status, c.reference)),
    ],
)
def test_next_walks_every_case_once_in_order_past_the_count_limit(client, book, sort, key):
    cases, other = book
    first = client.get(f"/client/cases?sort={sort}").get_data(as_text=True)
    assert 'Cases <span class="muted">(more than 5)' in first
    seen, pagers = walk(client, f"/client/cases?sort={sort}")
    assert seen == [c.reference for c in sorted(cases, key=key)]
    assert other.reference not in seen
    assert pagers == [f"Page {n} of more than 2" for n in range(1, 5)]
    # The last page has no Next; Previous from it goes back a page by its first row.
    path = f"/client/cases?sort={sort}"
    for _ in range(4):
        page = client.get(path).get_data(as_text=True)
        path = links(page).get("Next")
    assert path is None and references(page) == seen[9:]
    back = client.get(links(page)["Previous"]).get_data(as_text=True)
    assert references(back) == seen[6:9] and "Page 3 of more than 2" in back
    back = client.get(links(back)["Previous"]).get_data(as_text=True)
    assert references(back) == seen[3:6] and "Page 2 of more than 2" in back
    first = client.get(links(back)["Previous"]).get_data(as_text=True)
    assert references(first) == seen[:3] and "Previous" not in links(first)


def test_a_status_filter_and_a_search_carry_through_next(client, book):
    cases, _ = book
    seen, pagers = walk(client, "/client/cases?status=new&sort=oldest")
    new = sorted((c for c in cases if c.status == "new"), key=lambda c: (c.referred_on, c.id))
    assert seen == [c.reference for c in new]
    assert pagers == ["Page 1 of 2", "Page 2 of 2"]  # four: counted exactly
    seen, _ = walk(client, "/client/cases?q=person0&sort=reference")
    assert seen == [c.reference for c in cases[:10]]


def test_a_page_number_past_the_end_of_an_uncounted_book_counts_it_and_shows_the_last(client, book):
    cases, _ = book
    page = client.get("/client/cases?sort=reference&page=999").get_data(as_text=True)
    assert "Page 4 of 4" in page and "(11)" in page
    assert references(page) == [c.reference for c in cases[9:]]
    page = client.get("/client/cases?sort=reference&page=2").get_data(as_text=True)
    assert references(page) == [c.reference for c in cases[3:6]]
    assert "Page 2 of more than 2" in page


@pytest.mark.parametrize("edge", ["garbage", "2026-13-01.4", "2026-11-01.x", ".", "%00"])
def test_a_hand_edited_next_link_shows_the_first_page(client, book, edge):
    cases, _ = book
    for sort in ("newest", "status"):
        response = client.get("/client/cases", query_string={"sort": sort, "after": edge})
        assert response.status_code == 200
    page = client.get("/client/cases", query_string={"sort": "oldest", "before": edge})
    assert "Page 1 of more than 2" in page.get_data(as_text=True)


def test_search_matches_reference_account_and_names_in_any_case(
    client, login, make_user, make_client, make_case, db_session
):
    acme = make_client("ACME")
    lee = make_case(acme, first_name="Pat", last_name="Lee", account_number="ACC-99871")
    make_case(acme, first_name="Ann", last_name="Leeds")
    make_case(acme, kind="commercial", company_name="Northwind Traders")
    login(make_user("client", client=acme))
    assert lee.search_text == search_text_of(lee.reference, "ACC-99871", "Pat", "Lee", "")
    for q, expected in [
        ("LEE", 2),
        ("pat lee", 1),  # first and last name together
        ("99871", 1),
        ("acc-998", 1),
        (lee.reference.lower(), 1),  # a whole reference: that case, by the unique index
        (lee.reference[:-1], 3),  # a part of one: any reference containing it
        ("northWIND", 1),
        ("nobody", 0),
    ]:
        page = client.get("/client/cases", query_string={"q": q}).get_data(as_text=True)
        assert len(references(page)) == expected, q
        assert f"({expected})" in page, q
    stored = db_session.scalar(sa.select(Case.search_text).where(Case.id == lee.id))
    assert stored == f"{lee.reference.lower()} acc-99871 pat lee"


def test_a_search_is_counted_to_its_own_lower_limit(client, book, monkeypatch):
    monkeypatch.setattr("client_area.views.SEARCH_COUNT_LIMIT", 2)
    page = client.get("/client/cases?q=person0&sort=reference").get_data(as_text=True)
    assert "(more than 2)" in page and "Page 1 of more than 1" in page
    seen, _ = walk(client, "/client/cases?q=person0&sort=reference")
    assert len(seen) == 10
