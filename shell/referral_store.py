"""Referral files in the document store: an upload is streamed there as it arrives, and a
batch's file is opened from there as a stream wherever it is read (preview, mapping, the import
job, the reject file). The domain (cases.referrals) never knows where the store is."""

from __future__ import annotations

from typing import BinaryIO

from sqlalchemy.orm import Session

from cases.documents import Document
from cases.jobs import handles
from cases.referral_file import Source
from cases.referrals import IMPORT, ReferralBatch, batch_source, import_confirmed
from shell.document_store import discard, opener, store_stream

KIND = "referral_file"
CONTENT_TYPES = {".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def store_referral_file(
    stream: BinaryIO, filename: str, *, uploaded_by_id: int | None
) -> tuple[Document, Source]:
    """Copy an uploaded referral file into the document store in chunks; the document and an
    opener of the stored copy (what the domain reads)."""
    extension = filename.lower()[filename.rfind(".") :] if "." in filename else ""
    document = store_stream(
        stream,
        filename=filename,
        content_type=CONTENT_TYPES.get(extension, "text/csv"),
        kind=KIND,
        uploaded_by_id=uploaded_by_id,
    )
    return document, opener(document)


def forget(document: Document) -> None:
    """The stored copy of a file that was refused (its record is rolled back with the request)."""
    discard(document)


def source_of(batch: ReferralBatch) -> Source:
    """The batch's file: its stored document, or the bytes of a batch from before the store."""
    if batch.document is not None:
        return opener(batch.document)
    return batch_source(batch)


@handles(IMPORT.name)
def import_job(session: Session, batch_id: int) -> None:
    """The background job: import a confirmed batch (cases.referrals.import_confirmed)."""
    import_confirmed(
        session, batch_id, lambda batch: opener(batch.document) if batch.document else None
    )
