"""Referral files kept in the document store: the three ways in (client area, API, CLI) stream
the file there and the batch points to it (no copy in `referral_batches.content`); a batch from
before keeps its `content` and still previews and imports; the migration goes up and down."""

import gc
import hashlib
import io
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
import time_machine
from flask_migrate import downgrade, upgrade

from agency import create_app
from cases import audit
from cases.case import Case
from cases.clients import create_client
from cases.documents import Document
from cases.referrals import ReferralBatch, preview
from shell.extensions import db
from tests.cases.test_referrals import GOOD
from tests.client_area.test_client_area import TODAY, post, signed_in_client, upload
from tests.conftest import drain_jobs

HEADER = (
    "account_number,first_name,last_name,state,postal_code,principal,due_date,service_description"
)
NOTE = "Monthly maintenance of the premises, parts and labour, as invoiced " * 3


def large_file(rows: int = 3000) -> bytes:
    """About 700 KB: past the 500 KB Werkzeug keeps in memory before spooling an upload to disk.
    Every 100th row repeats the account number of the row before it (rejected)."""
    lines = [HEADER]
    for i in range(1, rows + 1):
        account = f"L-{i - 1}" if i % 100 == 0 else f"L-{i}"
        lines.append(f'{account},Ann,Lee{i},NY,10001,{10 + i % 90}.00,2026-01-01,"{NOTE}"')
    return ("\n".join(lines) + "\n").encode()


def stored_bytes(app, document: Document) -> bytes:
    return (Path(app.config["DOCUMENT_STORE"]) / document.storage_key).read_bytes()


def content_of(db_session, batch_id: int) -> bytes | None:
    # Read the column itself (it is deferred on the model).
    return db_session.scalar(
        sa.select(ReferralBatch.__table__.c.content).where(ReferralBatch.id == batch_id)
    )


# The test client spools a multipart body over 500 KB to a temporary file it never closes; it
# is collected (and warned about) here rather than in a later test.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_large_upload_is_kept_in_the_document_store_and_imported_from_there(
    app, client, login, make_user, make_client, db_session
):
    signed_in_client(login, make_user, make_client)
    data = large_file()
    assert len(data) > 600 * 1024
    with time_machine.travel(TODAY, tick=False):
        response = upload(client, data, "big.csv")
        assert response.status_code == 302, response.get_data(as_text=True)
        batch_page = response.headers["Location"]
        batch = db_session.scalar(sa.select(ReferralBatch))
        assert batch.status == "previewed"
        assert (batch.total_rows, batch.accepted_count, len(batch.rejected)) == (3000, 2970, 30)
        assert content_of(db_session, batch.id) is None
        document = db_session.get(Document, batch.document_id)
        assert (document.kind, document.filename, document.size_bytes) == (
            "referral_file",
            "big.csv",
            len(data),
        )
        assert document.sha256 == batch.file_sha256 == hashlib.sha256(data).hexdigest()
        assert stored_bytes(app, document) == data
        page = client.get(batch_page).get_data(as_text=True)
        assert "the first 50 of 3000" in page or "the first 50 of 3,000" in page
        assert "L-99 repeats row 100" in page

        rejects = client.get(f"{batch_page}/rejected.csv").get_data(as_text=True)
        assert len(rejects.strip().splitlines()) == 31  # the header and the 30 rejected rows

        response = post(client, f"{batch_page}/confirm", page=batch_page)
        assert response.status_code == 302
        drain_jobs(app)
        db_session.expire_all()
        batch = db_session.get(ReferralBatch, batch.id)
        assert (batch.status, batch.accepted_count, len(batch.rejected)) == ("imported", 2970, 30)
        assert db_session.scalar(sa.select(sa.func.count()).select_from(Case)) == 2970
    gc.collect()


def test_a_refused_upload_leaves_no_document_behind(
    app, client, login, make_user, make_client, db_session
):
    signed_in_client(login, make_user, make_client)
    store = Path(app.config["DOCUMENT_STORE"]) / "referral_file"
    before = set(store.glob("*")) if store.exists() else set()
    with time_machine.travel(TODAY, tick=False):
        response = upload(client, b"\x89PNG\r\n\x1a\n" + b"\0" * 50, "scan.csv")
    assert response.status_code == 422
    assert db_session.scalar(sa.select(sa.func.count()).select_from(ReferralBatch)) == 0
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Document)) == 0
    assert (set(store.glob("*")) if store.exists() else set()) == before


def test_the_mapping_screen_reads_the_stored_file(
    client, login, make_user, make_client, db_session
):
    signed_in_client(login, make_user, make_client)
    theirs = b"Acct #,First Name,Last Name,State,Zip,Amount Due,Due Date\nX-1,Ann,Lee,NY,10001,250.00,2026-01-01\n"
    with time_machine.travel(TODAY, tick=False):
        response = upload(client, theirs, "export.csv")
        page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Match your columns to ours below" in page and "250.00" in page
    batch = db_session.scalar(sa.select(ReferralBatch))
    assert batch.status == "mapping" and batch.document_id is not None
    assert content_of(db_session, batch.id) is None


def test_the_api_streams_a_large_csv_body_into_the_store(
    app, client, make_user, make_client, api_token, db_session
):
    acme = make_client()
    headers = api_token(make_user("client", client=acme))
    data = large_file()
    response = client.post(
        "/api/v1/referrals?as_of=2026-11-23",
        data=data,
        headers={**headers, "Content-Type": "text/csv"},
    )
    assert response.status_code == 201, response.json
    assert response.json["accepted"] == 2970 and len(response.json["rejected"]) == 30
    assert len(response.json["cases"]) == 2970
    batch = db_session.scalar(sa.select(ReferralBatch))
    assert (batch.source, batch.status) == ("api", "imported")
    assert content_of(db_session, batch.id) is None
    assert stored_bytes(app, db_session.get(Document, batch.document_id)) == data


def test_the_api_leaves_no_document_behind_for_a_refused_body(
    app, client, make_user, make_client, api_token, db_session
):
    acme = make_client()
    headers = api_token(make_user("client", client=acme))
    response = client.post(
        "/api/v1/referrals", data=b"name\nx\n", headers={**headers, "Content-Type": "text/csv"}
    )
    assert response.status_code == 422 and response.json["error"] == "file_refused"
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Document)) == 0
    keys = {p.name for p in (Path(app.config["DOCUMENT_STORE"]) / "referral_file").glob("*")}
    documents = set(db_session.scalars(sa.select(Document.storage_key)))
    assert {k for k in keys if k.endswith(".partial")} == set()
    assert documents == set()


def test_the_cli_copies_the_file_into_the_store(cli, app, db_session, tmp_path, make_client):
    make_client()
    path = tmp_path / "march.csv"
    path.write_bytes(GOOD)
    result = cli.invoke(
        args=["referrals", "import", str(path), "--client", "ACME", "--as-of", "2026-11-23"]
    )
    assert result.exit_code == 0, result.output
    assert "2 row(s) imported; 1 rejected." in result.output
    batch = db_session.scalar(sa.select(ReferralBatch))
    assert content_of(db_session, batch.id) is None
    assert stored_bytes(app, db_session.get(Document, batch.document_id)) == GOOD


def test_a_batch_from_before_the_store_still_previews_and_imports(
    app, client, login, make_user, make_client, db_session
):
    """A batch uploaded before the document store kept its file in `content`; it has no
    document. Its preview, reject file and import read the bytes."""
    acme = signed_in_client(login, make_user, make_client)
    with time_machine.travel(TODAY, tick=False):
        batch = preview(
            db_session,
            acme,
            GOOD,
            "old.csv",
            as_of=TODAY.date(),
            actor=audit.Actor(None, "test"),
        )
        db_session.commit()
        assert batch.document_id is None and content_of(db_session, batch.id) == GOOD
        batch_page = f"/client/referrals/{batch.id}"
        page = client.get(batch_page).get_data(as_text=True)
        assert re.search(r'id="accepted-count">2<', page)
        assert "53 days past due" in page
        assert "53 days past due" in client.get(f"{batch_page}/rejected.csv").get_data(as_text=True)
        response = post(client, f"{batch_page}/confirm", page=batch_page)
        assert response.status_code == 302
        drain_jobs(app)
        db_session.expire_all()
        assert db_session.get(ReferralBatch, batch.id).status == "imported"
        assert db_session.scalar(sa.select(sa.func.count()).select_from(Case)) == 2


def test_the_migration_goes_up_and_down_with_batches_of_both_kinds(tmp_path, database_url):
    if database_url.startswith("postgres"):
        from tests.test_migrations import _recreate_postgres

        name = database_url.rsplit("/", 1)[1].split("?")[0]
        url = database_url.rsplit("/", 1)[0] + f"/{name}_referral_store"
        _recreate_postgres(url)
    else:
        url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    app = create_app(
        {"DATABASE_URL": url, "REDIS_URL": "", "SECRET_KEY": "s", "DOCUMENT_STORE": str(tmp_path)}
    )
    insert = (
        "INSERT INTO referral_batches (client_id, source, filename, file_sha256, {content}"
        " mapping, as_of, status, total_rows, processed_rows, accepted_count, rejected,"
        " due_date_itemized_rows, created_at) VALUES (1, 'upload', :name, :sha, {value}"
        " '{{}}', '2026-11-23', 'previewed', 0, 0, 0, '[]', '[]', '2026-11-23')"
    )
    with app.app_context():
        upgrade(revision="a7e0b1c2d3f4")
        # The clients table is the same at both revisions: the model writes it.
        client = create_client(db.session, "OLD", "Old Co", actor=audit.Actor(None, "test"))
        db.session.flush()
        assert client.id == 1
        db.session.commit()
        db.session.remove()  # SQLite: a session left open would hold the write lock
        with db.engine.begin() as conn:
            conn.execute(
                sa.text(insert.format(content="content,", value=":content,")),
                {"name": "old.csv", "sha": "a" * 64, "content": GOOD},
            )
        upgrade(revision="b16f11e5a0c1")
        with db.engine.begin() as conn:
            old = conn.execute(sa.text("SELECT content, document_id FROM referral_batches")).one()
            assert (bytes(old.content), old.document_id) == (GOOD, None)
            conn.execute(
                sa.text(
                    "INSERT INTO documents (kind, filename, content_type, size_bytes, sha256,"
                    " storage_key, created_at) VALUES ('referral_file', 'new.csv', 'text/csv',"
                    " 3, :sha, 'referral_file/x', '2026-11-23')"
                ),
                {"sha": "b" * 64},
            )
            document_id = conn.scalar(sa.text("SELECT id FROM documents"))
            conn.execute(
                sa.text(insert.format(content="document_id,", value=":document,")),
                {"name": "new.csv", "sha": "b" * 64, "document": document_id},
            )
        downgrade(revision="a7e0b1c2d3f4")
        with db.engine.begin() as conn:
            rows = conn.execute(
                sa.text("SELECT filename, content FROM referral_batches ORDER BY id")
            ).all()
            assert [(r.filename, bytes(r.content)) for r in rows] == [
                ("old.csv", GOOD),
                ("new.csv", b""),
            ]
        upgrade()
        db.session.remove()
        db.engine.dispose()
    if url.startswith("postgres"):
        engine = sa.create_engine(
            sa.make_url(url.replace("postgresql://", "postgresql+psycopg://")).set(
                database="postgres"
            ),
            isolation_level="AUTOCOMMIT",
        )
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}_referral_store" WITH (FORCE)'))
        engine.dispose()


def test_an_upload_is_copied_in_chunks(app, monkeypatch):
    """store_stream reads at most CHUNK_BYTES a call: the whole file is never in memory."""
    from shell import document_store

    monkeypatch.setattr(document_store, "CHUNK_BYTES", 1000)
    reads: list[int] = []

    class Recording(io.BytesIO):
        def read(self, size=-1):
            reads.append(size)
            return super().read(size)

    data = large_file(100)
    with app.app_context():
        document = document_store.store_stream(
            Recording(data), filename="r.csv", content_type="text/csv", kind="referral_file"
        )
        assert stored_bytes(app, document) == data
        db.session.rollback()
    assert reads and all(0 < size <= 1000 for size in reads)
    assert len(reads) == len(data) // 1000 + 2  # the chunks, the last short one, the empty read
