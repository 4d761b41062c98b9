"""Early-out (issue #20): placement from day 1 with the client's attestation, the cadence in the
client's name under the contact rules, idempotent runs, and conversion to collection."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import sqlalchemy as sa
import time_machine

from cases import audit
from cases.assignment import round_robin
from cases.case import Case, case_by_reference
from cases.contact_log import OutboundMessage
from cases.contacts import Contact
from cases.debtors import opt_out, set_language, set_preferences
from cases.documents import Document
from cases.early_out import EarlyOutReminder, EarlyOutTerms, set_conversion, set_terms
from cases.referrals import ReferralBatch
from correspondence.notice_run import waiting_cases
from shell.document_store import read
from tests.conftest import TEST_ACTOR

PLACED = dt.date(2026, 11, 23)  # the suite's day
DUE = PLACED - dt.timedelta(days=10)  # placed on day 10 past due
HEADER = (
    "account_number,first_name,last_name,email,phone,address_line1,city,state,postal_code,"
    "principal,due_date,program\n"
)


def _row(account, first, last, email, phone, program="early_out", due=DUE, zip_code="10001"):
    return (
        f"{account},{first},{last},{email},{phone},1 Main St,New York,NY,{zip_code},"
        f"250.00,{due.isoformat()},{program}\n"
    )


def _file(tmp_path, *rows, name="early.csv"):
    path = tmp_path / name
    path.write_text(HEADER + "".join(rows))
    return str(path)


def _import(cli, path, *extra):
    return cli.invoke(
        args=[
            "referrals",
            "import",
            path,
            "--client",
            "ACME",
            "--as-of",
            PLACED.isoformat(),
            "--json",
            *extra,
        ]
    )


def _run(cli, day: int, hour_utc: int = 16):
    """The early-out run on day `day` past due, at `hour_utc` (16:00 UTC is 11:00 in New York)."""
    on = DUE + dt.timedelta(days=day)
    with time_machine.travel(dt.datetime(on.year, on.month, on.day, hour_utc, tzinfo=dt.UTC)):
        result = cli.invoke(args=["earlyout", "run", "--as-of", on.isoformat(), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _messages(db_session, case) -> list[OutboundMessage]:
    return list(
        db_session.scalars(
            sa.select(OutboundMessage)
            .where(OutboundMessage.case_id == case.id)
            .order_by(OutboundMessage.id)
        )
    )


def _never_collection_words(app, text: str) -> None:
    lowered = text.lower()
    assert "debt collector" not in lowered
    assert app.config["AGENCY_NAME"].lower() not in lowered


def test_a_file_with_early_out_rows_needs_the_attestation(cli, db_session, make_client, tmp_path):
    make_client()
    path = _file(tmp_path, _row("EO-1", "Maria", "Garcia", "maria@example.com", "2125550100"))
    refused = _import(cli, path)
    assert refused.exit_code == 2
    assert "attestation" in refused.output and "in default under" in refused.output
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Case)) == 0
    assert db_session.scalar(sa.select(sa.func.count()).select_from(ReferralBatch)) == 0

    accepted = _import(cli, path, "--attest-early-out")
    assert accepted.exit_code == 0, accepted.output
    result = json.loads(accepted.stdout)
    assert set(result) == {"accepted", "rejected", "cases"}  # the contract's shape
    assert result["accepted"] == 1 and result["cases"][0].startswith("RC-")
    case = case_by_reference(db_session, result["cases"][0])
    assert case.program == "early_out" and case.status == "new"
    assert case.early_out_placed_on == PLACED and case.referred_on == PLACED
    batch = db_session.get(ReferralBatch, case.batch_id)
    assert batch.early_out_attested_at is not None


def test_the_90_day_minimum_applies_only_to_collection_rows(cli, db_session, make_client, tmp_path):
    make_client()
    path = _file(
        tmp_path,
        _row("C-1", "Ann", "Lee", "ann@example.com", "2125550101", program="collection"),
        _row("C-2", "Bo", "Lee", "bo@example.com", "2125550102", program=""),
        _row("E-1", "Cy", "Lee", "cy@example.com", "2125550103"),
        _row("E-2", "Di", "Lee", "di@example.com", "2125550104", due=PLACED),  # not yet late
        _row("X-1", "Ed", "Lee", "ed@example.com", "2125550105", program="reminders"),
    )
    result = json.loads(_import(cli, path, "--attest-early-out").stdout)
    assert result["accepted"] == 1
    reasons = {r["row"]: (r["column"], r["reason"]) for r in result["rejected"]}
    assert reasons[2][0] == "due_date" and "at least 90 days" in reasons[2][1]
    assert reasons[3][0] == "due_date"  # no program column value: a collection row
    assert reasons[5][0] == "due_date" and "at least 1 day" in reasons[5][1]
    assert reasons[6] == ("program", "program 'reminders' is not one of collection, early_out")


def test_the_api_takes_program_and_the_attestation_and_shows_the_program(
    client, db_session, make_client, make_user, api_token
):
    acme = make_client()
    headers = api_token(make_user("client", client=acme))
    row = {
        "account_number": "API-1",
        "first_name": "Maria",
        "last_name": "Garcia",
        "state": "NY",
        "postal_code": "10001",
        "principal": "120.00",
        "due_date": DUE.isoformat(),
        "program": "early_out",
    }
    refused = client.post("/api/v1/referrals", json={"rows": [row]}, headers=headers)
    assert refused.status_code == 422
    assert "attestation" in refused.get_json()["message"]
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Case)) == 0
    bad = client.post(
        "/api/v1/referrals", json={"rows": [row], "early_out_attested": "yes"}, headers=headers
    )
    assert bad.status_code == 422
    assert bad.get_json()["error"] == "invalid_early_out_attested"
    made = client.post(
        "/api/v1/referrals", json={"rows": [row], "early_out_attested": True}, headers=headers
    )
    assert made.status_code == 201, made.get_json()
    reference = made.get_json()["cases"][0]
    shown = client.get(f"/api/v1/cases/{reference}", headers=headers).get_json()
    assert shown["program"] == "early_out"


def test_placed_on_day_10_through_each_reminder_in_each_language(
    app, cli, db_session, make_client, tmp_path
):
    make_client()
    path = _file(
        tmp_path,
        _row("EO-1", "Maria", "Garcia", "maria@example.com", "2125550100"),
        _row("EO-2", "Jose", "Lopez", "jose@example.com", "2125550111"),
    )
    maria_ref, jose_ref = json.loads(_import(cli, path, "--attest-early-out").stdout)["cases"]
    maria, jose = case_by_reference(db_session, maria_ref), case_by_reference(db_session, jose_ref)
    set_language(db_session, jose.debtor, "es", actor=TEST_ACTOR)
    # Jose says yes to texts; Maria never does.
    jose_phone = jose.debtor.phones[0]
    set_preferences(
        db_session,
        jose.debtor,
        emails={},
        texts={jose_phone.id: True},
        at=dt.datetime(2026, 11, 23, 9, tzinfo=dt.UTC),
        actor=TEST_ACTOR,
    )
    set_terms(db_session, maria.client, actor=TEST_ACTOR, reply_to="ar@acme.test")
    db_session.flush()

    # Day 10, 04:00 in New York: the debtors' hours forbid it; nothing is recorded as sent.
    early = _run(cli, 10, hour_utc=9)
    assert early == {"sent": 0, "converted": []}
    assert db_session.scalar(sa.select(sa.func.count()).select_from(EarlyOutReminder)) == 0

    # Day 10 at 11:00: Maria (no text consent) gets the day-1 email; Jose the day-7 text.
    assert _run(cli, 10) == {"sent": 2, "converted": []}
    (email,) = _messages(db_session, maria)
    assert email.channel == "email" and email.purpose == "early_out"
    assert "Acme Plumbing" in email.subject and "friendly reminder" in email.subject
    assert "/portal/early-out/" in email.body and "$250.00" in email.body
    assert "ar@acme.test" in email.body
    _never_collection_words(app, email.subject + email.body)
    (text,) = _messages(db_session, jose)
    assert text.channel == "text" and "le recordamos" in text.body and "STOP" in text.body
    _never_collection_words(app, text.body)
    # No notice clock starts: an early-out message is no collection communication.
    assert maria.first_communication_at is None and jose.first_communication_at is None

    # Run again the same day, and the next: nothing more.
    assert _run(cli, 10) == {"sent": 0, "converted": []}
    assert _run(cli, 11) == {"sent": 0, "converted": []}

    # Day 15: the firmer email, in each debtor's language.
    assert _run(cli, 15) == {"sent": 2, "converted": []}
    maria_firm = _messages(db_session, maria)[-1]
    jose_firm = _messages(db_session, jose)[-1]
    assert "overdue" in maria_firm.subject
    assert "atrasado" in jose_firm.subject and "Hola Jose Lopez" in jose_firm.body
    _never_collection_words(app, jose_firm.subject + jose_firm.body)

    # Jose says stop to email and texts: only the letter can still reach him.
    stop_at = dt.datetime(2026, 12, 1, 15, tzinfo=dt.UTC)
    opt_out(db_session, jose.debtor, "email", at=stop_at, actor=TEST_ACTOR)
    opt_out(db_session, jose.debtor, "text", at=stop_at, actor=TEST_ACTOR)
    db_session.flush()

    # Day 30: a letter in the client's name to each.
    assert _run(cli, 30) == {"sent": 2, "converted": []}
    letters = db_session.scalars(
        sa.select(Document).where(Document.kind == "early_out_letter").order_by(Document.id)
    ).all()
    assert [d.case_id for d in letters] == [maria.id, jose.id]
    letter_contacts = db_session.scalars(
        sa.select(Contact).where(Contact.channel == "letter").order_by(Contact.id)
    ).all()
    assert "Sincerely" in letter_contacts[0].body and "Atentamente" in letter_contacts[1].body
    for contact in letter_contacts:
        _never_collection_words(app, contact.body)
    # The run's letters go to the mail house in one print file, with its manifest.
    [print_file] = db_session.scalars(
        sa.select(Document).where(Document.kind == "eo_print_file")
    ).all()
    [listing] = db_session.scalars(
        sa.select(Document).where(Document.kind == "eo_print_manifest")
    ).all()
    assert print_file.filename.startswith(f"early-out-letters-{(DUE + dt.timedelta(days=30))}")
    rows = list(csv.DictReader(io.StringIO(read(listing).decode())))
    assert [r["reference"] for r in rows] == [maria.reference, jose.reference]
    assert [r["first_page"] for r in rows] == ["1", str(1 + int(rows[0]["pages"]))]
    assert read(print_file).startswith(b"%PDF")

    # Day 60: the final email names the day of referral to collection; Jose, opted out of
    # email and text, gets nothing.
    assert _run(cli, 60) == {"sent": 1, "converted": []}
    final = _messages(db_session, maria)[-1]
    convert_on = (DUE + dt.timedelta(days=90)).isoformat()
    assert "Final notice" in final.subject and convert_on in final.body
    assert len(_messages(db_session, jose)) == 2  # the text and the day-15 email only
    assert _run(cli, 60) == {"sent": 0, "converted": []}
    steps = db_session.execute(
        sa.select(
            EarlyOutReminder.case_id, EarlyOutReminder.day, EarlyOutReminder.language
        ).order_by(EarlyOutReminder.case_id, EarlyOutReminder.day)
    ).all()
    assert steps == [
        (maria.id, 1, "en"),
        (maria.id, 15, "en"),
        (maria.id, 30, "en"),
        (maria.id, 60, "en"),
        (jose.id, 7, "es"),
        (jose.id, 15, "es"),
        (jose.id, 30, "es"),
    ]


def test_conversion_on_day_90_to_a_collection_case_with_its_validation_notice(
    cli, db_session, make_client, make_user, tmp_path
):
    make_client()
    path = _file(
        tmp_path,
        _row("EO-1", "Maria", "Garcia", "maria@example.com", "2125550100"),
        _row("EO-2", "Kept", "Back", "kept@example.com", "2125550122"),
    )
    first_ref, kept_ref = json.loads(_import(cli, path, "--attest-early-out").stdout)["cases"]
    case, kept = case_by_reference(db_session, first_ref), case_by_reference(db_session, kept_ref)
    assert set_conversion(db_session, [kept], False, actor=TEST_ACTOR) == 1
    # An early-out account is no collector's work and gets no validation notice.
    make_user("collector")
    round_robin(db_session, actor=TEST_ACTOR)
    assert case.assigned_to_id is None
    assert case not in waiting_cases(db_session)

    assert _run(cli, 10)["sent"] == 2
    assert _run(cli, 89)["converted"] == []
    day_90 = DUE + dt.timedelta(days=90)
    assert _run(cli, 90) == {"sent": 0, "converted": [first_ref]}
    assert _run(cli, 90) == {"sent": 0, "converted": []}  # idempotent
    db_session.refresh(case)
    assert case.program == "collection" and case.status == "new"
    assert case.reference == first_ref and case.referred_on == day_90
    assert case.days_past_due_at_referral == 90 and case.early_out_placed_on == PLACED
    assert kept.program == "early_out"  # its client switched conversion off
    converted = db_session.scalar(
        sa.select(audit.AuditEvent).where(
            audit.AuditEvent.case_id == case.id,
            audit.AuditEvent.action == "case.converted_to_collection",
        )
    )
    assert converted.detail["referred_on"] == day_90.isoformat()
    # The history stays with the case.
    assert db_session.scalar(sa.select(sa.func.count()).where(EarlyOutReminder.case_id == case.id))
    # The notices job now sends its validation notice, in the agency's name.
    with time_machine.travel(dt.datetime(day_90.year, day_90.month, day_90.day, 14, tzinfo=dt.UTC)):
        sent = cli.invoke(args=["notices", "send", "--as-of", day_90.isoformat(), "--json"])
    assert sent.exit_code == 0, sent.output
    summary = json.loads(sent.output)
    assert summary["cases"] == [first_ref]
    db_session.refresh(case)
    assert case.validation_sent_at is not None
    # Once converted, no early-out reminder goes out again.
    assert _run(cli, 91) == {"sent": 0, "converted": []}


def test_terms_are_checked_and_a_refused_change_changes_nothing(cli, db_session, make_client):
    acme = make_client()
    shown = json.loads(cli.invoke(args=["earlyout", "terms", "--client", "ACME"]).output)
    assert shown["cadence"][1] == {"day": 7, "channel": "text", "tone": "friendly"}
    assert shown["convert_after_days"] == 90 and shown["fee"] == "percent"
    bad = cli.invoke(
        args=["earlyout", "terms", "--client", "ACME", "--cadence", "1:email,85:letter"]
    )
    assert bad.exit_code != 0 and "no reminder goes out in the 8 days" in bad.output
    assert db_session.get(EarlyOutTerms, acme.id) is None
    good = cli.invoke(
        args=[
            "earlyout",
            "terms",
            "--client",
            "ACME",
            "--cadence",
            "3:email,10:text,40:email",
            "--convert-after",
            "60",
            "--reply-to",
            "billing@acme.test",
        ]
    )
    assert good.exit_code == 0, good.output
    terms = db_session.get(EarlyOutTerms, acme.id)
    assert [s["day"] for s in terms.cadence] == [3, 10, 40]
    assert terms.cadence[-1]["tone"] == "final" and terms.convert_after_days == 60


def test_the_demo_has_early_out_accounts_at_every_stage(db_session, make_client):
    from demo.early_out_seed import ACCOUNTS, seed_early_out

    acme = make_client()
    assert seed_early_out(db_session, PLACED) == len(ACCOUNTS)
    assert seed_early_out(db_session, PLACED) == 0  # once
    cases = db_session.scalars(
        sa.select(Case).where(Case.client_id == acme.id).order_by(Case.id)
    ).all()
    stages = {(c.program, c.status, c.early_out_converts) for c in cases}
    assert ("early_out", "new", True) in stages  # in reminders
    assert ("early_out", "paid", True) in stages  # saved from collection
    assert ("early_out", "new", False) in stages  # conversion switched off
    assert ("collection", "new", True) in stages  # converted
    channels = set(db_session.scalars(sa.select(EarlyOutReminder.channel)))
    assert channels == {"email", "text", "letter"}
