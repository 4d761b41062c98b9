"""The client area's upload with early_out rows (issue #20): the attestation tick box."""

import io

import sqlalchemy as sa
import time_machine

from cases.case import Case
from cases.referrals import ReferralBatch
from tests.client_area.test_client_area import TODAY, signed_in_client
from tests.conftest import csrf_from

FILE = (
    b"account_number,first_name,last_name,state,postal_code,principal,due_date,program\n"
    b"EO-1,Maria,Garcia,NY,10001,250.00,2026-11-13,early_out\n"
)


def _upload(client, attested: bool):
    page = client.get("/client/referrals")
    data = {"csrf_token": csrf_from(page), "file": (io.BytesIO(FILE), "early.csv")}
    if attested:
        data["early_out_attested"] = "y"
    return client.post("/client/referrals", data=data, content_type="multipart/form-data")


def test_an_early_out_file_needs_the_tick_box(client, login, make_user, make_client, db_session):
    signed_in_client(login, make_user, make_client)
    with time_machine.travel(TODAY, tick=False):
        refused = _upload(client, attested=False)
        assert refused.status_code == 422
        assert "attestation" in refused.get_data(as_text=True)
        assert db_session.scalar(sa.select(sa.func.count()).select_from(ReferralBatch)) == 0
        previewed = _upload(client, attested=True)
        assert previewed.status_code == 302
    batch = db_session.scalar(sa.select(ReferralBatch))
    assert batch.accepted_count == 1 and batch.early_out_attested_at is not None
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Case)) == 0  # a preview
