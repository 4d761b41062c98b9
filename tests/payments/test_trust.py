"""The trust view's figures against hand-computed ones."""

import datetime as dt

from cases import audit
from payments.posting import post_payment, reverse_payment
from payments.trust import trust_lines

ACTOR = audit.Actor(None, "test")
DAY = dt.date(2026, 11, 20)


def test_collections_fees_and_what_is_still_to_remit(db_session, make_client, make_case):
    acme = make_client("ACME", tiers="90=2500")
    make_client("IDLE", "Idle Co")
    case = make_case(acme, principal=100_000, status="active")
    agency = post_payment(
        db_session, case, 10_000, external_id="a", received_at=DAY, method="check", actor=ACTOR
    )
    post_payment(
        db_session,
        case,
        4_000,
        external_id="d",
        received_at=DAY,
        method="cash",
        actor=ACTOR,
        direct=True,
    )
    reverse_payment(
        db_session,
        agency,
        amount_cents=2_000,
        external_id="r",
        received_at=DAY,
        reason="bounced in part",
        actor=ACTOR,
    )
    lines = {line.client.code: line for line in trust_lines(db_session)}
    acme_line = lines["ACME"]
    assert acme_line.collected_by_agency == 8_000
    assert acme_line.collected_by_client == 4_000
    assert acme_line.fees == 2_500 + 1_000 - 500
    assert acme_line.to_remit == 8_000 - 3_000
    assert lines["IDLE"].to_remit == 0


def test_only_admins_see_the_trust_view(client, login, make_user, make_client):
    make_client()
    login(make_user("supervisor"))
    assert client.get("/agency/trust").status_code == 403


def test_the_trust_page_shows_each_client(
    client, login, make_user, make_client, make_case, db_session
):
    acme = make_client()
    case = make_case(acme, principal=10_000, status="active")
    post_payment(
        db_session, case, 10_000, external_id="a", received_at=DAY, method="check", actor=ACTOR
    )
    login(make_user("admin"))
    page = client.get("/agency/trust").get_data(as_text=True)
    assert "ACME" in page and "$100.00" in page
