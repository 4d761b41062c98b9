"""`flask statements run` (SPEC §10) and the monthly job: JSON shape, the PDF read back, the
CSV parsed, re-runs unchanged, clear errors, and the email to the client's users."""

import csv
import datetime as dt
import hashlib
import io
import json
from pathlib import Path

import pypdf
import sqlalchemy as sa
import time_machine

from cases import audit
from cases.jobs import enqueue
from cases.messages import OutboundMessage
from payments.posting import post_payment
from payments.statements import Statement
from tests.conftest import drain_jobs

ACTOR = audit.Actor(None, "test")
ITEM_KEYS = {
    "client",
    "month",
    "number",
    "collected_by_agency",
    "collected_by_client",
    "fees",
    "net_remittance",
    "pdf",
    "csv",
}


def pay(session, case, cents, day, ref, direct=False):
    post_payment(
        session,
        case,
        cents,
        external_id=ref,
        received_at=day,
        method="check",
        actor=ACTOR,
        direct=direct,
    )


def october(db_session, make_client, make_case):
    acme = make_client("ACME", "Acme Plumbing")
    older = make_case(
        acme,
        principal=90_000,
        status="active",
        days_past_due=200,
        last_name="Lee",
        referred_on=dt.date(2026, 10, 1),  # before its October payments
    )
    young = make_case(acme, principal=90_000, status="active", days_past_due=95)
    pay(db_session, older, 12_345, dt.date(2026, 10, 5), "c-1")  # 33%: 4073.85 -> 4074
    pay(db_session, older, 1_000, dt.date(2026, 10, 6), "c-2")  # 33%: 330
    pay(db_session, young, 4_000, dt.date(2026, 10, 7), "d-1", direct=True)  # 25%: 1000
    return acme, older, young


def pdf_text(path: str) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(path).pages)


def test_run_prints_the_contract_json_and_writes_pdf_and_csv(
    cli, db_session, make_client, make_case, tmp_path
):
    acme, older, young = october(db_session, make_client, make_case)
    make_client("NEW", "New Co")  # created after October: nothing to state for it
    result = cli.invoke(
        args=["statements", "run", "--month", "2026-10", "--json", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert list(body) == ["statements"]
    items = {item["client"]: item for item in body["statements"]}
    assert set(items) == {"ACME"}
    item = items["ACME"]
    assert set(item) == ITEM_KEYS
    assert item == {
        "client": "ACME",
        "month": "2026-10",
        "number": "ST-ACME-2026-10",
        "collected_by_agency": 13_345,
        "collected_by_client": 4_000,
        "fees": 4_074 + 330 + 1_000,
        "net_remittance": 13_345 - 5_404,
        "pdf": str(tmp_path / "ST-ACME-2026-10.pdf"),
        "csv": str(tmp_path / "ST-ACME-2026-10.csv"),
    }

    text = pdf_text(item["pdf"])
    for expected in (
        "Recourse Collections",
        "ST-ACME-2026-10",
        "Acme Plumbing",
        "October 2026",
        "$133.45",  # collected by the agency
        "$40.00",  # collected directly
        "$54.04",  # fees
        "$79.41",  # net remittance
        "$123.45",
        "$40.74",
        "33.00%",
        older.reference,
        "Maria Lee",
        "Late adjustments",
        "Page 1 of",
        "Collections, last 12 months",
        "Nov 25",  # the chart's first month
        "Oct 26",  # and its last
    ):
        assert expected in text, expected

    rows = list(csv.DictReader(io.StringIO(Path(item["csv"]).read_text(), newline="")))
    assert [(r["case_reference"], r["amount"], r["fee"], r["paid_to"]) for r in rows] == [
        (older.reference, "123.45", "40.74", "agency"),
        (older.reference, "10.00", "3.30", "agency"),
        (young.reference, "40.00", "10.00", "client"),
    ]
    assert "Issuing" not in result.stdout and "ST-ACME-2026-10 issued" in result.stderr


def test_rerun_returns_the_same_statements_and_files(
    cli, db_session, make_client, make_case, tmp_path
):
    acme, older, _ = october(db_session, make_client, make_case)
    args = ["statements", "run", "--month", "2026-10", "--client", "acme", "--json"]
    first = cli.invoke(args=[*args, "--out", str(tmp_path / "a")])
    assert first.exit_code == 0, first.output
    pay(db_session, older, 500, dt.date(2026, 10, 30), "late")  # after issue: next statement
    again = cli.invoke(args=[*args, "--out", str(tmp_path / "b")])
    assert again.exit_code == 0, again.output
    one, two = json.loads(first.stdout)["statements"][0], json.loads(again.stdout)["statements"][0]
    assert {k: v for k, v in one.items() if k not in ("pdf", "csv")} == {
        k: v for k, v in two.items() if k not in ("pdf", "csv")
    }
    for kind in ("pdf", "csv"):
        assert (
            hashlib.sha256(Path(one[kind]).read_bytes()).digest()
            == hashlib.sha256(Path(two[kind]).read_bytes()).digest()
        )
    assert "already issued, unchanged" in again.stderr
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Statement)) == 1

    # The payment posted after October was issued is a late adjustment on November's.
    with time_machine.travel(dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)):
        november = cli.invoke(
            args=["statements", "run", "--month", "2026-11", "--json", "--out", str(tmp_path)]
        )
    assert november.exit_code == 0, november.output
    item = json.loads(november.stdout)["statements"][0]
    assert (item["number"], item["collected_by_agency"], item["fees"]) == (
        "ST-ACME-2026-11",
        500,
        165,  # 33% of 5.00
    )
    text = pdf_text(item["pdf"])
    late = text[text.index("Late adjustments") :]
    assert "2026-10-30" in late and "$5.00" in late and "$1.65" in late
    assert "No payments or reversals in November 2026" in text
    rows = list(csv.DictReader(io.StringIO(Path(item["csv"]).read_text(), newline="")))
    assert [(r["section"], r["date"], r["amount"]) for r in rows] == [
        ("late adjustment", "2026-10-30", "5.00")
    ]


def test_clear_errors_and_nothing_issued(cli, db_session, make_client, make_case, tmp_path):
    october(db_session, make_client, make_case)
    cases = [
        (["--month", "2026-13"], "month must look like YYYY-MM"),
        (["--month", "October"], "month must look like YYYY-MM"),
        (["--month", "2026-11"], "2026-11 has not ended yet in America/New_York"),
        (["--month", "2026-10", "--client", "NOPE"], "no client with code NOPE"),
    ]
    for extra, message in cases:
        result = cli.invoke(args=["statements", "run", "--json", "--out", str(tmp_path), *extra])
        assert result.exit_code == 1, extra
        assert message in result.stderr, (extra, result.stderr)
        assert result.stdout == ""
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Statement)) == 0


def test_the_monthly_job_issues_last_month_and_emails_the_client_users(
    app, db_session, make_client, make_case, make_user, smtp_server
):
    acme, older, _ = october(db_session, make_client, make_case)
    make_user("client", email="ap@acme.test", client=acme)
    with time_machine.travel(dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)):
        # November has not ended: the job issues October (the last month that has).
        enqueue(db_session, "statements.month_end")
        db_session.commit()
        drain_jobs(app)
    numbers = db_session.scalars(sa.select(Statement.number).order_by(Statement.number)).all()
    assert numbers == ["ST-ACME-2026-10"]
    drain_jobs(app)
    mails = [m for m in smtp_server.messages if m["To"] == "ap@acme.test"]
    assert len(mails) == 1
    assert "ST-ACME-2026-10" in mails[0]["Subject"]
    assert "Net remittance to you:       $79.41" in mails[0].get_content()
    # Run again: nothing new issued, nobody emailed twice.
    enqueue(db_session, "statements.month_end")
    db_session.commit()
    drain_jobs(app)
    assert db_session.scalar(sa.select(sa.func.count()).select_from(OutboundMessage)) == 1
