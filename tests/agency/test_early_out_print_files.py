"""Early-out letters reach the mail house like other letters: each run's print file and manifest
are listed on /agency/notices for supervisors and admins to download (issue #20)."""

from __future__ import annotations

import json

import sqlalchemy as sa

from cases.case import case_by_reference
from cases.documents import Document
from tests.cases.test_early_out import _file, _import, _row, _run
from tests.conftest import csrf_from


def test_a_runs_letters_are_one_print_file_on_the_notices_page(
    client, cli, login, make_user, make_client, db_session, tmp_path
):
    make_client()
    path = _file(tmp_path, _row("EO-P", "Ann", "Lee", "", ""))  # no email, no phone: a letter
    (reference,) = json.loads(_import(cli, path, "--attest-early-out").stdout)["cases"]
    case = case_by_reference(db_session, reference)
    assert _run(cli, 30) == {"sent": 1, "converted": []}
    pdf, listing = (
        db_session.scalar(sa.select(Document).where(Document.kind == kind))
        for kind in ("eo_print_file", "eo_print_manifest")
    )
    assert pdf.case_id is None and listing.case_id is None

    login(make_user("collector"))
    assert client.get(f"/agency/notices/early-out-files/{pdf.id}").status_code == 403
    client.post("/logout", data={"csrf_token": csrf_from(client.get("/agency/"))})
    login(make_user("supervisor"))
    page = client.get("/agency/notices").get_data(as_text=True)
    assert pdf.filename in page and listing.filename in page
    got = client.get(f"/agency/notices/early-out-files/{pdf.id}")
    assert got.status_code == 200 and got.data.startswith(b"%PDF")
    manifest = client.get(f"/agency/notices/early-out-files/{listing.id}").get_data(as_text=True)
    assert case.reference in manifest and "Ann Lee" in manifest
    # Only print files: a case's own document is not served here.
    letter = db_session.scalar(sa.select(Document).where(Document.kind == "early_out_letter"))
    assert client.get(f"/agency/notices/early-out-files/{letter.id}").status_code == 404
