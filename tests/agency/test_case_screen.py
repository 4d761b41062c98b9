"""The case screen as one working screen: its tabs, the confirmations the server insists on,
the debtor's letter kept with a cease or an attorney, the timeline in plain words, and the
situation that sets the tone and the suggested templates."""

import datetime as dt
import io
import re
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine

from bench.common import statements_of
from cases import audit
from cases.documents import Document
from tests.conftest import csrf_from

NY = ZoneInfo("America/New_York")
MORNING = dt.datetime(2026, 11, 23, 10, 0, tzinfo=NY)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
RAW = re.compile(r"\b(note|offer|debtor|case|plan|contact)\.[a-z_]+|user:|→")


def screen(client, case, query="") -> str:
    return client.get(f"/agency/cases/{case.reference}{query}").get_data(as_text=True)


def act(client, case, path, data):
    page = client.get(f"/agency/cases/{case.reference}")
    return client.post(
        f"/agency/cases/{case.reference}/{path}", data={**data, "csrf_token": csrf_from(page)}
    )


def timeline_of(page: str) -> str:
    return page.split('id="timeline-h"', 1)[1].split("</ol>", 1)[0]


def shown(page: str, panel: str) -> bool:
    tag = re.search(rf'<section class="panel" id="panel-{panel}"[^>]*>', page).group(0)
    return " hidden" not in tag


@pytest.fixture
def working(client, login, make_user, make_client, make_case):
    collector = make_user("collector")
    case = make_case(make_client(), status="active")
    case.assigned_to_id = collector.id
    login(collector)
    with time_machine.travel(MORNING, tick=False):
        yield case, collector


def test_the_tabs_are_links_that_open_one_panel(client, working):
    case, _ = working
    page = screen(client, case)
    assert shown(page, "call") and not shown(page, "note")
    assert f'href="/agency/cases/{case.reference}?tab=note"' in page
    assert 'accesskey="n"' in page and 'accesskey="j"' in page  # note, next case
    assert "Alt+J next case" in page
    page = screen(client, case, "?tab=note")
    assert shown(page, "note") and not shown(page, "call")
    assert shown(screen(client, case, "?tab=nonsense"), "call")


def test_a_logged_call_goes_on_to_the_note_and_a_refused_one_stays_on_the_call(
    client, working, db_session
):
    case, _ = working
    call = {"call-phone": "+12125550100", "call-outcome": "conversation"}
    response = act(client, case, "calls", call)
    assert response.headers["Location"].endswith(f"/agency/cases/{case.reference}?tab=note")
    bad = act(client, case, "calls", {**call, "call-outcome": "hung_up"})
    assert bad.status_code == 422 and shown(bad.get_data(as_text=True), "call")


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("cease", {}),
        ("attorney", {"attorney-name": "Sam Lawyer", "attorney-phone": "+12125550199"}),
        ("close", {"close-close_reason": "recalled", "close-reason": "The client recalled it"}),
    ],
    ids=["cease", "attorney", "close or recall"],
)
def test_cease_attorney_and_close_are_refused_without_the_confirmation(
    client, working, db_session, path, data
):
    case, _ = working
    response = act(client, case, path, {**data, f"{path}-document": (io.BytesIO(PDF), "x.pdf")})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Tick the box to confirm: nothing was changed" in page
    db_session.refresh(case)
    db_session.refresh(case.debtor)
    assert case.status == "active" and case.close_reason is None
    assert case.debtor.cease_requested_at is None and case.debtor.attorney_since is None
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Document)) == 0

    confirmed = act(client, case, path, {**data, f"{path}-confirm": "y"})
    assert confirmed.status_code == 302
    db_session.refresh(case)
    db_session.refresh(case.debtor)
    changed = {
        "cease": case.debtor.cease_requested_at is not None,
        "attorney": case.debtor.attorney_name == "Sam Lawyer",
        "close": (case.status, case.close_reason) == ("closed", "recalled"),
    }
    assert changed[path]


@pytest.mark.parametrize(
    ("path", "data", "kind", "words"),
    [
        ("cease", {}, "cease_letter", "The debtor&#39;s cease letter"),
        (
            "attorney",
            {"attorney-name": "Sam Lawyer", "attorney-email": "sam@law.example"},
            "attorney_letter",
            "The debtor&#39;s letter naming an attorney",
        ),
    ],
    ids=["cease", "attorney"],
)
def test_the_debtors_letter_is_kept_and_linked_on_the_timeline(
    client, working, db_session, path, data, kind, words
):
    case, _ = working
    letter = (io.BytesIO(PDF), "letter from the debtor.pdf")
    response = act(client, case, path, {**data, f"{path}-confirm": "y", f"{path}-document": letter})
    assert response.status_code == 302
    document = db_session.scalar(sa.select(Document).where(Document.case_id == case.id))
    assert (document.kind, document.filename) == (kind, "letter from the debtor.pdf")
    timeline = timeline_of(screen(client, case))
    assert f'{words}</strong> — <a href="/agency/documents/{document.id}">' in timeline
    assert client.get(f"/agency/documents/{document.id}").data == PDF


def test_a_letter_that_is_not_a_document_changes_nothing(client, working, db_session):
    case, _ = working
    response = act(
        client,
        case,
        "cease",
        {"cease-confirm": "y", "cease-document": (io.BytesIO(b"MZ\x90\x00"), "letter.exe")},
    )
    assert response.status_code == 422
    assert "documents must be PDF, PNG or JPEG files" in response.get_data(as_text=True)
    db_session.refresh(case.debtor)
    assert case.debtor.cease_requested_at is None
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Document)) == 0


def test_the_timeline_speaks_plainly_and_shows_a_note_once(client, working, db_session):
    case, collector = working
    act(client, case, "notes", {"note-body": "Promised to call back Friday"})
    act(client, case, "calls", {"call-phone": "+12125550100", "call-outcome": "no_answer"})
    act(client, case, "situation", {"sit-situation": "juggling"})
    act(client, case, "opt-out", {"optout-channel": "email"})
    audit.record(
        db_session,
        audit.Actor.user(collector),
        "offer",
        1,
        "offer.withdrawn",
        case_id=case.id,
        reason="the client changed the floor",
        **{"from": "proposed", "to": "withdrawn"},
    )
    timeline = timeline_of(screen(client, case))
    assert RAW.search(timeline) is None, timeline
    assert timeline.count("Promised to call back Friday") == 1
    assert "outbound call</strong> — no answer (+12125550100)" in timeline
    assert "Situation: juggling debts: can pay some" in timeline
    assert "The debtor opted out of emails" in timeline
    assert "Settlement offer withdrawn</strong> — the client changed the floor" in timeline
    assert f"by {collector.email}" in timeline


def test_the_situation_is_named_and_sets_the_tone_and_the_templates(client, working, db_session):
    case, _ = working
    case.debtor.phones[0].text_consent = True
    page = screen(client, case)
    assert '(consumer, <span id="situation">situation not known yet</span>)' in page
    assert "Find out the situation first" in page
    assert '<option selected value="payment_reminder">' in page

    act(client, case, "situation", {"sit-situation": "hardship"})
    page = screen(client, case, "?tab=message")
    assert "hardship: cannot pay now" in page
    assert "Be gentle and patient" in page
    assert '<option selected value="payment_options">' in page
    assert '<option selected value="text_payment_options">' in page
    assert "Suggested for the situation: Payment options." in page

    act(client, case, "situation", {"sit-situation": "avoiding"})
    page = screen(client, case)
    assert "Be brief and clear" in page
    assert '<option selected value="text_payment_reminder">' in page


# What the case screen reads: each of the case's rows once (its ledger, contacts, outbox,
# documents, notes, promises, plan, disputes, offers, audit), the case with its debtor and
# client in one query, and the signed-in user. Never anything that grows with the book.
CASE_SCREEN_QUERIES = 12


def _statements_of(app, client, path: str) -> list[str]:
    """What one GET of `path` reads, without the test's own savepoints."""
    seen = statements_of(app, client, path)
    return [s for s in seen if not s.startswith(("SAVEPOINT", "RELEASE", "ROLLBACK"))]


@pytest.mark.parametrize("book", [20, 300])
def test_the_case_screen_reads_the_same_few_queries_whatever_the_book(
    app, client, working, make_case, book
):
    case, collector = working
    acme = case.client
    for i in range(book - 1):
        other = make_case(acme, status="active", account_number=f"B-{i:05d}")
        other.assigned_to_id = collector.id
    # The case has something in every part of the screen that the collector can add.
    act(client, case, "calls", {"call-phone": "+12125550100", "call-outcome": "no_answer"})
    act(client, case, "notes", {"note-body": "Call back on Friday"})
    act(client, case, "promises", {"promise-amount": "50", "promise-due_on": "2026-11-30"})
    act(client, case, "situation", {"sit-situation": "juggling"})
    statements = _statements_of(app, client, f"/agency/cases/{case.reference}")
    assert len(statements) == CASE_SCREEN_QUERIES, "\n".join(statements)
    page = screen(client, case)
    assert "Call back on Friday" in page and "$50.00" in page
