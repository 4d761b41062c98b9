"""The collector's case screen and queue, with the law enforced on the way."""

import datetime as dt
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import time_machine

from bench.common import statements_of
from cases.contacts import ComplianceAlert, Contact
from cases.plans import PromiseToPay
from tests.conftest import csrf_from

NY = ZoneInfo("America/New_York")
EVENING = dt.datetime(2026, 11, 23, 21, 30, tzinfo=NY)  # a Monday, 21:30 in New York
MORNING = dt.datetime(2026, 11, 23, 10, 0, tzinfo=NY)


def act(client, case, path, data):
    page = client.get(f"/agency/cases/{case.reference}")
    return client.post(
        f"/agency/cases/{case.reference}/{path}", data={**data, "csrf_token": csrf_from(page)}
    )


def test_the_case_screen_says_when_a_call_is_allowed(
    client, login, make_user, make_client, make_case
):
    collector = make_user("collector")
    case = make_case(make_client(), status="active")
    case.assigned_to_id = collector.id
    login(collector)
    # The morning first: a session cookie signed later in the day is refused as from the
    # future if the clock then goes back.
    with time_machine.travel(MORNING, tick=False):
        page = client.get(f"/agency/cases/{case.reference}").get_data(as_text=True)
    assert 'Call allowed now: <span class="ok">yes</span>' in page
    with time_machine.travel(EVENING, tick=False):
        page = client.get(f"/agency/cases/{case.reference}").get_data(as_text=True)
    assert 'Call allowed now: <span class="no">no</span>' in page
    assert "21:30" in page
    assert "Tue Nov 24 08:00 America/New_York" in page


def test_logging_calls_and_the_alert_for_one_that_broke_a_rule(
    client, login, make_user, make_client, make_case, db_session, app
):
    collector = make_user("collector")
    case = make_case(make_client(), status="active")
    login(collector)
    with time_machine.travel(MORNING, tick=False):
        response = act(
            client,
            case,
            "calls",
            {"call-phone": "+12125550100", "call-outcome": "no_answer", "call-note": "rang"},
        )
        assert response.status_code == 302
    with time_machine.travel(EVENING, tick=False):
        response = act(
            client, case, "calls", {"call-phone": "+12125550100", "call-outcome": "voicemail"}
        )
        assert response.status_code == 302
    # Later requests stay after the last frozen moment (signed cookies may not be from the future).
    with time_machine.travel(EVENING + dt.timedelta(minutes=5), tick=False):
        contacts = db_session.scalars(sa.select(Contact).order_by(Contact.occurred_at)).all()
        assert [c.outcome for c in contacts] == ["no_answer", "voicemail"]
        assert contacts[0].violations == []
        assert [v["rule"] for v in contacts[1].violations] == ["time_window"]
        alert = db_session.scalar(sa.select(ComplianceAlert))
        assert alert.contact_id == contacts[1].id

        assert client.get("/agency/alerts").status_code == 403  # collectors do not review alerts
        supervisor = app.test_client()
        sup = make_user("supervisor")
        page = supervisor.get("/login")
        supervisor.post(
            "/login",
            data={
                "email": sup.email,
                "password": "correct-horse-battery",
                "csrf_token": csrf_from(page),
            },
        )
        page = supervisor.get("/agency/alerts")
        assert case.reference in page.get_data(as_text=True)
        response = supervisor.post(
            f"/agency/alerts/{alert.id}/resolve",
            data={"resolution": "Coached the collector", "csrf_token": csrf_from(page)},
        )
        assert response.status_code == 302
        db_session.refresh(alert)
        assert alert.resolution == "Coached the collector"


def test_a_call_needs_a_known_outcome(client, login, make_user, make_client, make_case, db_session):
    login(make_user("collector"))
    case = make_case(make_client(), status="active")
    response = act(client, case, "calls", {"call-phone": "+12125550100", "call-outcome": "hung_up"})
    assert response.status_code == 422
    assert "Not a valid choice" in response.get_data(as_text=True)
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Contact)) == 0


def test_a_dispute_inside_the_validation_period_holds_the_case(
    client, login, make_user, make_client, make_case, db_session
):
    login(make_user("collector"))
    case = make_case(make_client(), status="active")
    case.validation_period_ends_on = dt.date(2026, 12, 31)
    with time_machine.travel(MORNING, tick=False):
        response = act(
            client, case, "disputes", {"dispute-reason": "Not my debt", "dispute-channel": "call"}
        )
        assert response.status_code == 302
        db_session.refresh(case)
        assert case.status == "disputed"
        page = client.get(f"/agency/cases/{case.reference}").get_data(as_text=True)
        assert "On hold" in page
        assert 'Call allowed now: <span class="no">no</span>' in page
        assert "Not by waiting." in page
        response = act(client, case, "verification", {"ver-note": "Statement of account sent"})
        assert response.status_code == 302
        db_session.refresh(case)
        assert case.status == "active"


def test_a_dispute_after_the_period_flags_without_holding(
    client, login, make_user, make_client, make_case, db_session
):
    login(make_user("collector"))
    case = make_case(make_client(), status="active")
    case.validation_period_ends_on = dt.date(2026, 10, 1)
    with time_machine.travel(MORNING, tick=False):
        act(client, case, "disputes", {"dispute-reason": "Too high", "dispute-channel": "call"})
    db_session.refresh(case)
    assert case.status == "active"


def test_promises_cease_opt_out_attorney_and_close(
    client, login, make_user, make_client, make_case, db_session
):
    login(make_user("collector"))
    case = make_case(make_client(), status="active")
    with time_machine.travel(MORNING, tick=False):
        bad = act(
            client, case, "promises", {"promise-amount": "50", "promise-due_on": "2026-11-01"}
        )
        assert bad.status_code == 422
        assert "cannot be due in the past" in bad.get_data(as_text=True)
        good = act(
            client, case, "promises", {"promise-amount": "50", "promise-due_on": "2026-11-30"}
        )
        assert good.status_code == 302
        assert db_session.scalar(sa.select(PromiseToPay)).amount_cents == 5000

        assert act(client, case, "opt-out", {"optout-channel": "email"}).status_code == 302
        page = client.get(f"/agency/cases/{case.reference}").get_data(as_text=True)
        assert 'Email allowed now: <span class="no">no</span>' in page
        assert 'Call allowed now: <span class="ok">yes</span>' in page

        missing = act(
            client, case, "attorney", {"attorney-name": "Sam Lawyer", "attorney-confirm": "y"}
        )
        assert missing.status_code == 422
        assert "phone or email" in missing.get_data(as_text=True)

        assert act(client, case, "cease", {"cease-confirm": "y"}).status_code == 302
        page = client.get(f"/agency/cases/{case.reference}").get_data(as_text=True)
        assert "Cease requested" in page
        assert 'Call allowed now: <span class="no">no</span>' in page

        assert (
            act(
                client,
                case,
                "close",
                {
                    "close-close_reason": "cease",
                    "close-reason": "Debtor asked us to stop",
                    "close-confirm": "y",
                },
            ).status_code
            == 302
        )
    db_session.refresh(case)
    assert (case.status, case.close_reason) == ("closed", "cease")


def test_the_queue_puts_promises_first_and_callable_cases_ahead(
    client, login, make_user, make_client, make_case, db_session
):
    collector = make_user("collector")
    acme = make_client()
    promised = make_case(acme, status="active", last_name="Promised")
    fresh = make_case(acme, status="new", last_name="Fresh")
    west = make_case(
        acme,
        status="active",
        last_name="West",
        postal_code="98101",
        state="WA",
        phone="+12065550100",
    )
    for c in (promised, fresh, west):
        c.assigned_to_id = collector.id
        c.last_contact_at = dt.datetime(2026, 11, 1, tzinfo=dt.UTC) if c is not fresh else None
    db_session.add(
        PromiseToPay(case_id=promised.id, amount_cents=1000, due_on=dt.date(2026, 11, 23))
    )
    login(collector)
    # 07:30 in Seattle is 10:30 in New York: the New York cases may be called, Seattle not yet.
    with time_machine.travel(dt.datetime(2026, 11, 23, 10, 30, tzinfo=NY), tick=False):
        page = client.get("/agency/queue").get_data(as_text=True)
        order = [page.index(c.reference) for c in (promised, fresh, west)]
        assert order == sorted(order)
        assert "promise due today" in page
        response = client.get("/agency/queue/next")
        assert response.headers["Location"].endswith(promised.reference)
        callable_only = client.get("/agency/queue?only=callable").get_data(as_text=True)
        assert west.reference not in callable_only


def test_next_case_reads_past_a_page_of_cases_that_may_not_be_called_yet(
    client, login, make_user, make_client, make_case, db_session
):
    collector = make_user("collector")
    acme = make_client()
    # 60 new Seattle cases rank first (awaiting first contact) but may not be called at 07:30
    # there; the one case that may be called now ranks below all of them.
    for n in range(60):
        seattle = make_case(
            acme,
            status="new",
            last_name=f"West{n}",
            postal_code="98101",
            state="WA",
            phone=f"+1206555{n:04d}",
        )
        seattle.assigned_to_id = collector.id
    east = make_case(acme, status="active", last_name="East")
    east.assigned_to_id = collector.id
    east.last_contact_at = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    login(collector)
    # At 07:30 New York time nobody may be called: the collector is told so.
    with time_machine.travel(dt.datetime(2026, 11, 23, 7, 30, tzinfo=NY), tick=False):
        response = client.get("/agency/queue/next", follow_redirects=True)
        assert "Nothing to call right now" in response.get_data(as_text=True)
    with time_machine.travel(dt.datetime(2026, 11, 23, 10, 30, tzinfo=NY), tick=False):
        response = client.get("/agency/queue/next")
        assert response.headers["Location"].endswith(f"/agency/cases/{east.reference}")
        callable_only = client.get("/agency/queue?only=callable").get_data(as_text=True)
        assert east.reference in callable_only and "West0" not in callable_only


def test_a_collector_sees_only_their_own_queue(client, login, make_user, make_client, make_case):
    me, other = make_user("collector"), make_user("collector")
    theirs = make_case(make_client(), status="active")
    theirs.assigned_to_id = other.id
    login(me)
    page = client.get(f"/agency/queue?collector={other.id}").get_data(as_text=True)
    assert theirs.reference not in page


def test_letters_are_generated_kept_and_refused_when_a_rule_forbids(
    client, login, make_user, make_client, make_case, db_session
):
    import io

    from pypdf import PdfReader

    from cases.documents import Document

    login(make_user("collector"))
    case = make_case(make_client(), status="active", principal=20_000)
    with time_machine.travel(MORNING, tick=False):
        assert act(client, case, "letters", {"letter-kind": "collection"}).status_code == 302
        letter = db_session.scalar(sa.select(Contact).where(Contact.channel == "letter"))
        document = db_session.get(Document, letter.document_id)
        pdf = client.get(f"/agency/documents/{document.id}")
        text = " ".join(PdfReader(io.BytesIO(pdf.data)).pages[0].extract_text().split())
        assert "This is a communication from a debt collector." in text
        assert "$200.00" in text

        act(client, case, "cease", {"cease-confirm": "y"})
        refused = act(client, case, "letters", {"letter-kind": "collection"})
        assert refused.status_code == 422
        assert "Not sent:" in refused.get_data(as_text=True)
        allowed = act(client, case, "letters", {"letter-kind": "cease_confirmation"})
        assert allowed.status_code == 302
    letters = db_session.scalars(sa.select(Contact).where(Contact.channel == "letter")).all()
    assert [c.subject for c in letters] == ["Your account", "We have stopped collection"]


def test_a_dispute_with_documents_and_the_verification_letter(
    client, login, make_user, make_client, make_case, db_session
):
    import io

    from cases.documents import Document

    login(make_user("collector"))
    case = make_case(make_client(), status="active")
    case.validation_period_ends_on = dt.date(2026, 12, 31)
    with time_machine.travel(MORNING, tick=False):
        page = client.get(f"/agency/cases/{case.reference}")
        bad = client.post(
            f"/agency/cases/{case.reference}/disputes",
            data={
                "dispute-reason": "Not mine",
                "dispute-channel": "letter",
                "dispute-document": (io.BytesIO(b"MZ\x90\x00 an exe"), "evil.exe"),
                "csrf_token": csrf_from(page),
            },
            content_type="multipart/form-data",
        )
        assert bad.status_code == 422
        assert "must be PDF, PNG or JPEG" in bad.get_data(as_text=True)
        db_session.refresh(case)
        assert case.status == "active"

        good = client.post(
            f"/agency/cases/{case.reference}/disputes",
            data={
                "dispute-reason": "Not mine",
                "dispute-channel": "letter",
                "dispute-document": (io.BytesIO(b"%PDF-1.4 letter"), "letter.pdf"),
                "csrf_token": csrf_from(page),
            },
            content_type="multipart/form-data",
        )
        assert good.status_code == 302
        db_session.refresh(case)
        assert case.status == "disputed"
        # During the hold a collection letter is refused...
        assert act(client, case, "letters", {"letter-kind": "collection"}).status_code == 422
        # ...and the verification letter ends it.
        response = act(client, case, "verification", {"ver-note": "Invoice copies enclosed"})
        assert response.status_code == 302
    db_session.refresh(case)
    assert case.status == "active"
    kinds = sorted(d.kind for d in db_session.scalars(sa.select(Document)))
    assert kinds == ["dispute_upload", "letter"]


def test_the_debtors_situation_steers_the_queue(client, login, make_user, make_client, make_case):
    collector = make_user("collector")
    acme = make_client()
    avoiding = make_case(acme, status="active", last_name="Avoiding", principal=900_000)
    juggling = make_case(acme, status="active", last_name="Juggling", principal=1_000)
    avoiding.debtor.situation, juggling.debtor.situation = "avoiding", "juggling"
    for c in (avoiding, juggling):
        c.assigned_to_id = collector.id
        c.last_contact_at = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    login(collector)
    with time_machine.travel(MORNING, tick=False):
        page = client.get("/agency/queue").get_data(as_text=True)
    assert page.index(juggling.reference) < page.index(avoiding.reference)


def _queries_for(app, client, path) -> int:
    return len(statements_of(app, client, path))


def test_the_queue_and_case_screen_do_not_query_per_row(
    app, client, login, make_user, make_client, make_case
):
    collector = make_user("collector")
    acme = make_client()
    login(collector)

    def add(n):
        for _ in range(n):
            case = make_case(acme, status="active")
            case.assigned_to_id = collector.id

    with time_machine.travel(MORNING, tick=False):
        add(3)
        few = _queries_for(app, client, "/agency/queue")
        add(30)
        many = _queries_for(app, client, "/agency/queue")
    assert many == few


def test_the_case_screen_does_not_query_per_timeline_row(
    app, client, login, make_user, make_client, make_case
):
    login(make_user("collector"))
    case = make_case(make_client(), status="active", principal=50_000)
    screen = f"/agency/cases/{case.reference}"

    def work(n):
        for i in range(n):
            call = {"call-phone": "+12125550100", "call-outcome": "no_answer"}
            assert act(client, case, "calls", call).status_code == 302
            assert act(client, case, "notes", {"note-body": f"note {i}"}).status_code == 302
            payment = {
                "pay-amount": "1.00",
                "pay-received_at": "2026-11-20",
                "pay-method": "check",
                "pay-reference": f"chk-{case.id}-{i}-{n}",
            }
            assert act(client, case, "payments", payment).status_code == 302

    with time_machine.travel(MORNING, tick=False):
        work(1)
        few = _queries_for(app, client, screen)
        work(6)
        many = _queries_for(app, client, screen)
    assert many == few


def test_staff_post_a_payment_and_a_supervisor_reverses_it(
    client, login, make_user, make_client, make_case, db_session
):
    from payments.posting import LedgerEntry, balance_cents

    login(make_user("collector"))
    case = make_case(make_client(), status="active", principal=30_000)
    with time_machine.travel(MORNING, tick=False):
        form = {
            "pay-amount": "100.00",
            "pay-received_at": "2026-11-22",
            "pay-method": "check",
            "pay-reference": "5501",
        }
        assert act(client, case, "payments", form).status_code == 302
        assert act(client, case, "payments", form).status_code == 422  # check 5501 again
        future = act(
            client,
            case,
            "payments",
            {**form, "pay-reference": "5502", "pay-received_at": "2026-12-01"},
        )
        assert "cannot be in the future" in future.get_data(as_text=True)
        assert balance_cents(db_session, case.id) == 20_000
        payment = db_session.scalar(sa.select(LedgerEntry).where(LedgerEntry.kind == "payment"))
        denied = act(client, case, f"payments/{payment.id}/reverse", {"rev-reason": "bounced"})
        assert denied.status_code == 403

        client.post("/logout", data={"csrf_token": csrf_from(client.get("/agency/"))})
        login(make_user("supervisor"))
        response = act(
            client,
            case,
            f"payments/{payment.id}/reverse",
            {"rev-amount": "", "rev-reason": "check bounced"},
        )
        assert response.status_code == 302
    assert balance_cents(db_session, case.id) == 30_000
    reversal = db_session.scalar(sa.select(LedgerEntry).where(LedgerEntry.kind == "reversal"))
    assert reversal.reverses_id == payment.id and reversal.fee_cents == -payment.fee_cents


def test_the_same_check_number_from_two_payers_and_a_clear_reversal_error(
    client, login, make_user, make_client, make_case, db_session
):
    from payments.posting import LedgerEntry

    login(make_user("supervisor"))
    acme = make_client()
    first, second = make_case(acme, principal=30_000), make_case(acme, principal=30_000)
    form = {
        "pay-amount": "10.00",
        "pay-received_at": "2026-11-22",
        "pay-method": "check",
        "pay-reference": "7001",
    }
    with time_machine.travel(MORNING, tick=False):
        assert act(client, first, "payments", form).status_code == 302
        assert act(client, second, "payments", form).status_code == 302  # another payer
        payment = db_session.scalar(
            sa.select(LedgerEntry).where(
                LedgerEntry.case_id == first.id, LedgerEntry.kind == "payment"
            )
        )
        missing = act(client, first, f"payments/{payment.id}/reverse", {"rev-reason": ""})
        assert missing.status_code == 422
        assert "Why: This field is required." in missing.get_data(as_text=True)
        act(client, first, f"payments/{payment.id}/reverse", {"rev-reason": "bounced"})
        page = client.get(f"/agency/cases/{first.reference}").get_data(as_text=True)
    assert '<span class="muted">reversed</span>' in page


def test_staff_find_cases_by_name_or_reference(client, login, make_user, make_client, make_case):
    acme = make_client()
    wanted = make_case(acme, last_name="Quimby")
    other = make_case(acme, last_name="Smith")
    login(make_user("collector"))
    page = client.get("/agency/cases?q=quimby").get_data(as_text=True)
    assert wanted.reference in page and other.reference not in page
    page = client.get(f"/agency/cases?q={other.reference.lower()}").get_data(as_text=True)
    assert other.reference in page and wanted.reference not in page
