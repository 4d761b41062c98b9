"""Offer bands are entered as percentages and days ("82.5%", 14), stored as basis points and
shown back as percentages; bad input gets a clear message and adds nothing."""

from cases.offers import bands_of
from tests.conftest import csrf_from


def test_bands_take_percentages_and_refuse_what_is_not_one(
    client, login, make_user, make_client, db_session
):
    acme = make_client(min_settlement_bps=7000)
    login(make_user("admin"))
    page = client.get("/agency/clients/ACME/bands")
    data = {
        "min_balance": "500",
        "max_balance": "",
        "valid_days": "14",
        "csrf_token": csrf_from(page),
    }
    for change, message in (
        ({"pay_percent": "eighty"}, "Enter a percentage like 25% or 33.5%"),
        ({"pay_percent": "$80"}, "Enter a percentage like 25% or 33.5%"),
        ({"pay_percent": "150%"}, "from 0.01% to 100% of the balance"),
        ({"pay_percent": ""}, "Enter what the debtor pays, like 80%."),
        ({"pay_percent": "80%", "valid_days": "0"}, "Days to pay are from 1 to 60."),
        ({"pay_percent": "80%", "valid_days": "two weeks"}, "Not a valid integer value."),
    ):
        refused = client.post("/agency/clients/ACME/bands", data={**data, **change})
        assert refused.status_code == 422, change
        assert message in refused.get_data(as_text=True), change
    assert bands_of(db_session, acme.id) == []
    added = client.post("/agency/clients/ACME/bands", data={**data, "pay_percent": "82.5%"})
    assert added.status_code == 302
    [band] = bands_of(db_session, acme.id)
    assert (band.pay_bps, band.valid_days) == (8250, 14)
    assert "82.50%" in client.get(added.location).get_data(as_text=True)
