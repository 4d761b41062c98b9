"""The client area: upload, preview, confirm, mapping, rejected rows, recall, direct payments."""

import csv
import datetime as dt
import io
import re

import sqlalchemy as sa
import time_machine

from cases.audit import AuditEvent
from cases.case import Case
from cases.ledger import LedgerEntry
from cases.referrals import ReferralBatch
from tests.cases.test_referrals import GOOD, HEADER
from tests.conftest import csrf_from, drain_jobs

TODAY = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)


def upload(client, data: bytes, filename="march.csv"):
    page = client.get("/client/referrals")
    return client.post(
        "/client/referrals",
        data={"csrf_token": csrf_from(page), "file": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
    )


def post(client, path, data=None, page=None):
    page = client.get(page or path)
    return client.post(path, data={**(data or {}), "csrf_token": csrf_from(page)})


def signed_in_client(login, make_user, make_client, code="ACME"):
    acme = make_client(code)
    user = make_user("client", client=acme)
    login(user)
    return acme


def test_upload_preview_confirm_and_find_the_cases(
    app, client, login, make_user, make_client, db_session, redis_url
):
    signed_in_client(login, make_user, make_client)
    with time_machine.travel(TODAY, tick=False):
        response = upload(client, GOOD)
        assert response.status_code == 302
        batch_page = response.headers["Location"]
        page = client.get(batch_page).get_data(as_text=True)
        assert re.search(r'id="accepted-count">2<', page)
        assert "53 days past due" in page  # the rejected row, with its reason
        assert db_session.scalar(sa.select(sa.func.count()).select_from(Case)) == 0

        batch_id = int(batch_page.rsplit("/", 1)[1])
        response = post(client, f"/client/referrals/{batch_id}/confirm", page=batch_page)
        assert response.status_code == 302
        if redis_url:  # the import waits on the queue: the page shows its progress meanwhile
            page = client.get(batch_page).get_data(as_text=True)
            assert "Importing" in page and "import-progress" in page
            assert client.get(f"/client/referrals/{batch_id}/status.json").json["status"] == (
                "queued"
            )
        drain_jobs(app)
        page = client.get(batch_page).get_data(as_text=True)
        assert re.search(r'id="imported-count">2<', page)
        status = client.get(f"/client/referrals/{batch_id}/status.json").json
        assert status["status"] == "imported" and status["percent"] == 100

        listing = client.get("/client/cases").get_data(as_text=True)
        assert "RC-2611-00001" in listing and "RC-2611-00002" in listing
        history = client.get("/client/referrals").get_data(as_text=True)
        assert "march.csv" in history and "imported" in history


def test_a_refused_upload_says_why_and_saves_nothing(
    client, login, make_user, make_client, db_session
):
    signed_in_client(login, make_user, make_client)
    for data, name, message in (
        (b"", "empty.csv", "The file is empty"),
        (b"%PDF-1.4 binary\0stuff", "notes.pdf", "is not a CSV or XLSX file"),
    ):
        response = upload(client, data, name)
        assert response.status_code == 422
        assert message in response.get_data(as_text=True)
    page = client.get("/client/referrals")
    response = client.post(
        "/client/referrals",
        data={"csrf_token": csrf_from(page)},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert "Choose a file to upload." in response.get_data(as_text=True)
    assert db_session.scalar(sa.select(sa.func.count()).select_from(ReferralBatch)) == 0


def test_a_client_maps_its_own_headers_once(client, login, make_user, make_client, db_session):
    acme = signed_in_client(login, make_user, make_client)
    theirs = b"Acct #,First,Last,St,Zip,Balance,Due\nX-1,Ann,Lee,NY,10001,250.00,2026-01-01\n"
    with time_machine.travel(TODAY, tick=False):
        response = upload(client, theirs, "export.csv")
        assert response.status_code == 302 and "/mapping" in response.headers["Location"]
        mapping_page = response.headers["Location"]
        page = client.get(mapping_page).get_data(as_text=True)
        assert "Acct #" in page
        response = post(
            client,
            mapping_page,
            {
                "map-account_number": "Acct #",
                "map-first_name": "First",
                "map-last_name": "Last",
                "map-state": "St",
                "map-postal_code": "Zip",
                "map-principal": "Balance",
                "map-due_date": "Due",
            },
        )
        assert response.status_code == 302
        db_session.refresh(acme)
        assert acme.header_mapping["Acct #"] == "account_number"
        batch = db_session.scalar(sa.select(ReferralBatch))
        assert (batch.status, batch.accepted_count) == ("previewed", 1)

        # The next file with the same headers goes straight to the preview.
        response = upload(client, theirs.replace(b"X-1", b"X-2"), "export2.csv")
        assert "/mapping" not in response.headers["Location"]


def test_an_incomplete_mapping_is_refused_and_changes_nothing(
    client, login, make_user, make_client, db_session
):
    acme = signed_in_client(login, make_user, make_client)
    theirs = b"Acct #,Last,St,Zip,Balance,Due\nX-1,Lee,NY,10001,250.00,2026-01-01\n"
    response = upload(client, theirs, "export.csv")
    mapping_page = response.headers["Location"]
    response = post(client, mapping_page, {"map-account_number": "Acct #"})
    assert response.status_code == 422
    assert "missing" in response.get_data(as_text=True).lower()
    db_session.refresh(acme)
    assert acme.header_mapping == {}


def test_rejected_rows_download_has_a_reason_column_and_neutralised_cells(
    client, login, make_user, make_client
):
    signed_in_client(login, make_user, make_client)
    data = (
        HEADER + "\n"
        '=HYPERLINK("http://x"),consumer,Ann,Lee,,,,1 A St,New York,NY,10001,'
        "abc,,,2026-01-01,\n"
    ).encode()
    response = upload(client, data)
    batch_page = response.headers["Location"]
    download = client.get(batch_page + "/rejected.csv")
    assert download.status_code == 200
    assert download.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(download.get_data(as_text=True))))
    assert rows[0] == [*HEADER.split(","), "reason"]
    assert rows[1][0].startswith("'=HYPERLINK")
    assert rows[1][-1].startswith("principal:")


def test_a_client_cannot_reach_another_clients_batches(
    client, login, make_user, make_client, db_session, app
):
    signed_in_client(login, make_user, make_client)
    response = upload(client, GOOD)
    batch_page = response.headers["Location"]
    other_client = make_client("OTHER", "Other")
    other = app.test_client()
    other_user = make_user("client", client=other_client)
    page = other.get("/login")
    other.post(
        "/login",
        data={
            "email": other_user.email,
            "password": "correct-horse-battery",
            "csrf_token": csrf_from(page),
        },
    )
    for suffix in ("", "/rejected.csv", "/status.json", "/mapping"):
        assert other.get(batch_page + suffix).status_code == 404, suffix
    page = other.get("/client/referrals")
    assert (
        other.post(batch_page + "/confirm", data={"csrf_token": csrf_from(page)}).status_code == 404
    )


def test_search_filter_and_paginate_cases(client, login, make_user, make_client, make_case):
    acme = signed_in_client(login, make_user, make_client)
    for n in range(30):
        make_case(acme, last_name=f"Person{n:02d}", status="active" if n % 2 else "new")
    make_case(acme, last_name="Zebra<b>", status="closed")
    page = client.get("/client/cases?q=zebra").get_data(as_text=True)
    assert "Zebra&lt;b&gt;" in page and "Person01" not in page
    page = client.get("/client/cases?status=active").get_data(as_text=True)
    assert "(15)" in page
    first = client.get("/client/cases?sort=reference").get_data(as_text=True)
    assert "Page 1 of 2" in first
    second = client.get("/client/cases?sort=reference&page=2").get_data(as_text=True)
    assert "RC-2611-00031" in second and "RC-2611-00031" not in first


def test_recall_closes_the_case_with_the_reason(
    client, login, make_user, make_client, make_case, db_session
):
    acme = signed_in_client(login, make_user, make_client)
    case = make_case(acme, status="active")
    path = f"/client/cases/{case.reference}"
    response = post(client, path + "/recall", {"reason": ""}, page=path)
    assert response.status_code == 422
    db_session.refresh(case)
    assert case.status == "active"

    response = post(client, path + "/recall", {"reason": "Settled it ourselves"}, page=path)
    assert response.status_code == 302
    db_session.refresh(case)
    assert (case.status, case.close_reason) == ("closed", "recalled")
    event = db_session.scalar(
        sa.select(AuditEvent).where(
            AuditEvent.case_id == case.id, AuditEvent.action == "case.status_changed"
        )
    )
    assert event.reason == "Settled it ourselves"


def test_reporting_a_direct_payment(client, login, make_user, make_client, make_case, db_session):
    acme = signed_in_client(login, make_user, make_client)
    case = make_case(acme, principal=50_000, status="active", days_past_due=200)
    path = f"/client/cases/{case.reference}"
    with time_machine.travel(TODAY, tick=False):
        form = {
            "amount": "$120.50",
            "received_at": "2026-11-20",
            "method": "check",
            "reference": "1001",
        }
        assert post(client, path + "/direct-payments", form, page=path).status_code == 302
        entry = db_session.scalar(
            sa.select(LedgerEntry).where(LedgerEntry.kind == "direct_payment")
        )
        assert entry.amount_cents == -12_050
        assert entry.fee_bps == 3300 and entry.fee_cents == 3977  # 33% of 120.50, half-up
        assert "$379.50" in client.get(path).get_data(as_text=True)

        bad = [
            ({"amount": "12.345"}, "Enter an amount like 1234.56"),
            ({"amount": "-5"}, "Enter an amount like 1234.56"),
            ({"amount": "600.00", "reference": "1002"}, "more than the balance"),
            ({"received_at": "2026-12-01", "reference": "1003"}, "cannot be in the future"),
            ({}, "was already posted"),  # check 1001 again
        ]
        for change, message in bad:
            response = post(client, path + "/direct-payments", {**form, **change}, page=path)
            assert response.status_code == 422, change
            assert message in response.get_data(as_text=True), change
        assert (
            db_session.scalar(
                sa.select(sa.func.count())
                .select_from(LedgerEntry)
                .where(LedgerEntry.kind == "direct_payment")
            )
            == 1
        )


def test_paying_the_whole_balance_directly_marks_the_case_paid(
    client, login, make_user, make_client, make_case, db_session
):
    acme = signed_in_client(login, make_user, make_client)
    case = make_case(acme, principal=10_000, status="active")
    path = f"/client/cases/{case.reference}"
    post(
        client,
        path + "/direct-payments",
        {"amount": "100", "received_at": "2026-11-20", "method": "cash", "reference": "R-1"},
        page=path,
    )
    db_session.refresh(case)
    assert case.status == "paid"


def test_the_dashboard_shows_money_and_status(client, login, make_user, make_client, make_case):
    acme = signed_in_client(login, make_user, make_client)
    make_case(acme, principal=100_000)
    page = client.get("/client/").get_data(as_text=True)
    assert "$1,000.00" in page and "Placed with us" in page


def test_an_excel_workbook_uploads_like_a_csv(client, login, make_user, make_client):
    from openpyxl import Workbook

    signed_in_client(login, make_user, make_client)
    book = Workbook()
    sheet = book.active
    sheet.append(
        [
            "Account Number",
            "First Name",
            "Last Name",
            "State",
            "Postal Code",
            "Principal",
            "Due Date",
        ]
    )
    sheet.append(["XL-1", "José", "Müller", "MA", 2108, 1234.5, dt.datetime(2026, 1, 15)])
    buffer = io.BytesIO()
    book.save(buffer)
    with time_machine.travel(TODAY, tick=False):
        response = upload(client, buffer.getvalue(), "export.xlsx")
        assert response.status_code == 302
        page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert re.search(r'id="accepted-count">1<', page), page


def test_a_windows_1252_export_is_read_without_garbling(
    client, login, make_user, make_client, db_session
):
    signed_in_client(login, make_user, make_client)
    data = (
        HEADER + "\nW-1,consumer,José,Müller,,,,1 A St,New York,NY,10001,100,,,2026-01-01,\n"
    ).encode("cp1252")
    with time_machine.travel(TODAY, tick=False):
        response = upload(client, data)
        batch_id = int(response.headers["Location"].rsplit("/", 1)[1])
        post(client, f"/client/referrals/{batch_id}/confirm", page=response.headers["Location"])
    drain_jobs(client.application)
    case = db_session.scalar(sa.select(Case).where(Case.account_number == "W-1"))
    assert case.debtor.display_name == "José Müller"


def test_an_upload_over_the_limit_is_refused_with_the_limit(
    client, login, make_user, make_client, db_session
):
    signed_in_client(login, make_user, make_client)
    page = client.get("/client/referrals")
    # The declared size is refused before the body is read (a 202 MB body is not needed).
    response = client.post(
        "/client/referrals",
        data={"csrf_token": csrf_from(page)},
        content_type="multipart/form-data; boundary=x",
        environ_overrides={"CONTENT_LENGTH": str(202 * 1024 * 1024)},
    )
    assert response.status_code == 413
    assert "at most 200 MB" in response.get_data(as_text=True)
    assert db_session.scalar(sa.select(sa.func.count()).select_from(ReferralBatch)) == 0


def test_only_the_referral_upload_takes_a_body_over_ten_megabytes(
    client, login, make_user, make_client, db_session
):
    signed_in_client(login, make_user, make_client)
    page = client.get("/client/referrals")
    # Any other form (here the referral page's own mapping step) is held to 10 MB documents:
    # refused before its body is read, with its own limit.
    response = client.post(
        "/client/referrals/1/mapping",
        data={"csrf_token": csrf_from(page)},
        content_type="multipart/form-data; boundary=x",
        environ_overrides={"CONTENT_LENGTH": str(12 * 1024 * 1024)},
    )
    assert response.status_code == 413
    assert "at most 10 MB here" in response.get_data(as_text=True)
    # The referral upload reads a 12 MB file: not a size refusal, a refusal of what is in it.
    # (The body is made here: the test client would spool one this big to a file it never
    # closes.)
    page = client.get("/client/referrals")
    body = b"".join(
        [
            b'--x\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n',
            csrf_from(page).encode(),
            b'\r\n--x\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n',
            b"Content-Type: text/csv\r\n\r\n",
            b"\x00\x01not a referral file" * (12 * 1024 * 1024 // 20),
            b"\r\n--x--\r\n",
        ]
    )
    response = client.post(
        "/client/referrals", data=body, content_type="multipart/form-data; boundary=x"
    )
    assert response.status_code == 422  # read, and refused for what it holds
    assert "at most" not in response.get_data(as_text=True)
    assert db_session.scalar(sa.select(sa.func.count()).select_from(ReferralBatch)) == 0


def test_a_refused_upload_keeps_the_list_of_earlier_files(client, login, make_user, make_client):
    signed_in_client(login, make_user, make_client)
    upload(client, GOOD, "first.csv")
    response = upload(client, b"", "empty.csv")
    assert response.status_code == 422
    assert "first.csv" in response.get_data(as_text=True)


def test_the_client_sees_that_a_case_is_time_barred(
    client, login, make_user, make_client, make_case
):
    acme = signed_in_client(login, make_user, make_client)
    barred = make_case(acme, status="active", state="TX", postal_code="75201", days_past_due=2200)
    page = client.get(f"/client/cases/{barred.reference}").get_data(as_text=True)
    expires = barred.due_date.replace(year=barred.due_date.year + 4).isoformat()
    assert f"<strong>time-barred</strong> since {expires}: no suit and no threat of suit" in page
    fresh = make_case(acme, status="active", state="TX", postal_code="75201", days_past_due=200)
    page = client.get(f"/client/cases/{fresh.reference}").get_data(as_text=True)
    assert "time-barred" not in page and "runs until" in page


def test_an_upload_rejects_a_row_whose_itemisation_does_not_add_up(
    app, client, login, make_user, make_client, db_session
):
    signed_in_client(login, make_user, make_client)
    data = (
        b"account_number,first_name,last_name,state,postal_code,principal,interest,due_date,"
        b"itemization_date,itemization_date_type,amount_on_itemization_date,"
        b"interest_since_itemization,credits_since_itemization\n"
        b"IT-1,Ann,Lee,NY,10001,100.00,10.00,2026-01-01,2026-02-01,last_payment,105.00,10.00,5.00\n"
        b"IT-2,Bo,Ray,NY,10001,100.00,10.00,2026-01-01,2026-02-01,last_payment,105.00,10.00,\n"
    )
    with time_machine.travel(TODAY, tick=False):
        batch_page = upload(client, data).headers["Location"]
        page = client.get(batch_page).get_data(as_text=True)
        assert re.search(r'id="accepted-count">1<', page)
        assert "the itemisation does not add up" in page
        assert "= 115.00, but principal 100.00 + interest 10.00 + fees 0.00 = 110.00" in page
        batch_id = int(batch_page.rsplit("/", 1)[1])
        post(client, f"/client/referrals/{batch_id}/confirm", page=batch_page)
        drain_jobs(app)
    cases = db_session.scalars(sa.select(Case)).all()
    assert [c.account_number for c in cases] == ["IT-1"]
    (case,) = cases
    assert (case.itemization_date_type, case.amount_on_itemization_date_cents) == (
        "last_payment",
        10_500,
    )
    assert (case.interest_since_itemization_cents, case.credits_since_itemization_cents) == (
        1_000,
        500,
    )


def test_the_preview_names_the_rows_itemised_from_their_due_date(
    client, login, make_user, make_client, db_session
):
    signed_in_client(login, make_user, make_client)
    rows = "".join(
        f"D-{n},Ann,Lee,NY,10001,100.00,2026-01-01,{'2026-02-01' if n == 4 else ''}\n"
        for n in range(1, 7)
    )
    data = (
        "account_number,first_name,last_name,state,postal_code,principal,due_date,"
        "itemization_date\n" + rows
    ).encode()
    with time_machine.travel(TODAY, tick=False):
        page = client.get(upload(client, data).headers["Location"]).get_data(as_text=True)
    assert re.search(r'id="accepted-count">6<', page)
    assert (
        "Rows 2–4, 6–7 give no itemization_date: the due date is taken as the date of the last "
        "statement" in page
    )
    batch = db_session.scalar(sa.select(ReferralBatch))
    assert batch.due_date_itemized_rows == [2, 3, 4, 6, 7]
