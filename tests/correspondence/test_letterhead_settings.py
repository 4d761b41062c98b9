"""Letters name the agency from the settings (AGENCY_*, PORTAL_URL), never a built-in address;
the demo agency's letters say plainly that it is not a real agency."""

from tests.correspondence.test_validation_notice import on_monday, pdf_text, send  # noqa: F401


def notice_text(client, login, make_user, make_client, make_case, db_session) -> str:
    from cases.contacts import Contact

    login(make_user("collector"))
    case = make_case(make_client(), principal=50_000)
    assert send(client, case).status_code == 302
    letter = db_session.query(Contact).filter_by(case_id=case.id, channel="letter").one()
    return pdf_text(client, letter.document_id)


def test_the_notice_carries_the_agency_and_portal_of_the_settings(
    app, monkeypatch, client, login, make_user, make_client, make_case, db_session
):
    monkeypatch.setitem(app.config, "AGENCY_NAME", "Lakeside Recovery LLC")
    monkeypatch.setitem(app.config, "AGENCY_ADDRESS", "42 Harbor Road, Duluth, MN 55802")
    monkeypatch.setitem(app.config, "AGENCY_PHONE", "(218) 555-0142")
    monkeypatch.setitem(app.config, "PORTAL_URL", "https://pay.lakeside.example/portal/login")

    text = notice_text(client, login, make_user, make_client, make_case, db_session)
    assert "Lakeside Recovery LLC is a debt collector" in text
    assert "42 Harbor Road, Duluth, MN 55802" in text and "(218) 555-0142" in text
    assert "We accept disputes electronically at https://pay.lakeside.example/portal/login" in text
    assert "Springfield" not in text and "555-0199" not in text and "127.0.0.1" not in text
    assert "DEMO" not in text


def test_the_demo_agency_says_it_is_not_real(
    client, login, make_user, make_client, make_case, db_session
):
    text = notice_text(client, login, make_user, make_client, make_case, db_session)
    assert "100 Main Street, Suite 200, Springfield, IL 62701 (DEMO — not a real agency)" in text
