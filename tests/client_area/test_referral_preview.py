"""The referral preview's rows, the column mapping's guesses, other separators, and progress."""

import re

import sqlalchemy as sa
import time_machine

from cases.referral_file import FileRefused, guess_mapping, read_header
from cases.referrals import ReferralBatch
from tests.cases.test_referrals import GOOD
from tests.client_area.test_client_area import TODAY, post, signed_in_client, upload


def batch_page(client, response) -> str:
    assert response.status_code == 302, response.get_data(as_text=True)
    return client.get(response.headers["Location"]).get_data(as_text=True)


def test_the_preview_shows_each_row_with_its_status_and_the_rejected_cell(
    client, login, make_user, make_client
):
    signed_in_client(login, make_user, make_client)
    with time_machine.travel(TODAY, tick=False):
        page = batch_page(client, upload(client, GOOD))
    table = page[page.index('id="preview-rows"') :]
    rows = re.findall(r'<tr class="(accepted|rejected)">(.*?)</tr>', table, re.S)
    assert [status for status, _ in rows] == ["accepted", "accepted", "rejected"]
    rejected = rows[2][1]
    # The reason is beside the row, and the due_date cell it is about is highlighted.
    assert "53 days past due" in rejected
    assert re.search(r'<td class="bad-cell"><mark>2026-10-01</mark>', rejected)
    assert rejected.count("bad-cell") == 1
    assert "Maria" in rows[0][1] and "Riverside Bakery LLC" in rows[1][1]


def test_the_preview_shows_the_first_50_rows_of_a_long_file(client, login, make_user, make_client):
    signed_in_client(login, make_user, make_client)
    header = "account_number,first_name,last_name,state,postal_code,principal,due_date"
    lines = [f"N-{i},Ann,Lee,NY,10001,10.00,2026-01-01" for i in range(1, 61)]
    with time_machine.travel(TODAY, tick=False):
        page = batch_page(client, upload(client, "\n".join([header, *lines]).encode()))
    assert "the first 50 of 60" in page
    assert page.count('<tr class="accepted">') == 50
    assert "N-50<" in page and "N-51<" not in page


def test_the_mapping_form_guesses_columns_and_shows_examples(
    client, login, make_user, make_client, db_session
):
    signed_in_client(login, make_user, make_client)
    theirs = (
        b"Acct #,First Name,Last Name,State,Zip,Amount Due,Due Date,Notes\n"
        b"X-1,Ann,Lee,NY,10001,250.00,2026-01-01,call after 5\n"
        b"X-2,Bo,Kim,NY,10002,99.00,2026-02-01,\n"
    )
    with time_machine.travel(TODAY, tick=False):
        response = upload(client, theirs, "export.csv")
        assert "/mapping" in response.headers["Location"]
        page = client.get(response.headers["Location"]).get_data(as_text=True)
        # The message says one thing: match the columns here (no "upload it again").
        assert "Match your columns to ours below" in page
        assert "upload the file again" not in page and "has no" not in page
        for ours, theirs_name in (
            ("account_number", "Acct #"),
            ("first_name", "First Name"),
            ("last_name", "Last Name"),
            ("state", "State"),
            ("postal_code", "Zip"),
            ("principal", "Amount Due"),
            ("due_date", "Due Date"),
        ):
            select = re.search(rf'<select id="map-{ours}".*?</select>', page, re.S).group(0)
            assert re.search(rf'<option value="{re.escape(theirs_name)}" selected>', select), ours
        notes = re.search(r'<select id="map-service_description".*?</select>', page, re.S)
        assert " selected>" not in notes.group(0)
        assert "250.00 · 99.00" in page  # example values of a column
        # Submitting the guesses as they are imports the file.
        chosen = {}
        for name, select in re.findall(r'<select id="(map-[a-z_0-9]+)"(.*?)</select>', page, re.S):
            picked = re.search(r'value="([^"]*)" selected', select)
            if picked:
                chosen[name] = picked.group(1)
        assert len(chosen) == 7
        response = post(client, response.headers["Location"], chosen)
    assert response.status_code == 302
    batch = db_session.scalar(sa.select(ReferralBatch))
    assert (batch.status, batch.accepted_count) == ("previewed", 2)


def test_guesses_cover_the_usual_other_names():
    header = ["Account Number", "Balance", "Last Name", "ZIP", "ST", "Acct Type", "Phone #"]
    assert guess_mapping(header) == {
        "account_number": "Account Number",
        "principal": "Balance",
        "last_name": "Last Name",
        "postal_code": "ZIP",
        "state": "ST",
        "phone": "Phone #",
    }
    assert guess_mapping(["Acct #", "Account"])["account_number"] == "Acct #"


def test_a_mapping_that_uses_one_column_twice_is_refused_and_changes_nothing(
    client, login, make_user, make_client, db_session
):
    acme = signed_in_client(login, make_user, make_client)
    theirs = b"Ref,Surname,Region,Zip,Owed,When\nX-1,Lee,NY,10001,250.00,2026-01-01\n"
    response = upload(client, theirs, "export.csv")
    mapping_page = response.headers["Location"]
    chosen = {
        "map-account_number": "Ref",
        "map-last_name": "Surname",
        "map-state": "Region",
        "map-postal_code": "Zip",
        "map-principal": "Owed",
        "map-due_date": "Owed",
    }
    response = post(client, mapping_page, chosen)
    assert response.status_code == 422
    assert "You chose &#39;Owed&#39; for principal and due_date" in response.get_data(as_text=True)
    db_session.refresh(acme)
    batch = db_session.scalar(sa.select(ReferralBatch))
    assert acme.header_mapping == {} and batch.status == "mapping"


def test_semicolon_and_tab_separated_files_are_read(client, login, make_user, make_client):
    signed_in_client(login, make_user, make_client)
    comma = GOOD.decode()
    for separator, name in ((";", "semicolons.csv"), ("\t", "tabs.txt")):
        # The quoted "$1,234.56" keeps its comma; every other comma becomes the separator.
        text = re.sub(r',(?=(?:[^"]*"[^"]*")*[^"]*$)', separator, comma, flags=re.M)
        with time_machine.travel(TODAY, tick=False):
            page = batch_page(client, upload(client, text.encode(), name))
        assert re.search(r'id="accepted-count">2<', page), name
        assert "$1,234.56" in page


def test_a_file_with_another_separator_is_refused_with_that_reason(
    client, login, make_user, make_client, db_session
):
    signed_in_client(login, make_user, make_client)
    piped = GOOD.decode().replace(",", "|").encode()
    response = upload(client, piped, "piped.csv")
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "is a single column: the values must be separated by commas, semicolons or tabs" in page
    assert "no account_number column" not in page
    assert db_session.scalar(sa.select(sa.func.count()).select_from(ReferralBatch)) == 0
    try:
        read_header(piped, "piped.csv")
    except FileRefused as exc:
        assert "single column" in str(exc)
    else:
        raise AssertionError("a pipe-separated header was read")


def test_an_import_in_progress_shows_rows_done_and_refreshes_without_javascript(
    client, login, make_user, make_client, db_session
):
    signed_in_client(login, make_user, make_client)
    with time_machine.travel(TODAY, tick=False):
        response = upload(client, GOOD)
        batch = db_session.scalar(sa.select(ReferralBatch))
        batch.status, batch.processed_rows = "importing", 2  # as the job reports it part-way
        db_session.flush()
        page = client.get(response.headers["Location"]).get_data(as_text=True)
        status = client.get(f"/client/referrals/{batch.id}/status.json").json
    assert "2 of 3 rows" in page
    assert re.search(r'<progress id="import-progress" max="100" value="66">', page)
    assert '<noscript><meta http-equiv="refresh" content="3"></noscript>' in page
    assert (status["processed"], status["total"], status["percent"]) == (2, 3, 66)
