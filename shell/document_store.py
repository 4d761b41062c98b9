"""The document store: files kept with cases, outside the web root, served only by views that
check who is asking."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

from flask import Response, current_app

from cases.documents import Document
from shell.extensions import db


def store(
    data: bytes,
    *,
    filename: str,
    content_type: str,
    kind: str,
    case_id: int | None,
    debtor_id: int | None = None,
    uploaded_by_id: int | None = None,
) -> Document:
    key = f"{kind}/{uuid.uuid4().hex}{Path(filename).suffix.lower()[:10]}"
    path = Path(current_app.config["DOCUMENT_STORE"]) / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    document = Document(
        case_id=case_id,
        debtor_id=debtor_id,
        kind=kind,
        filename=filename[:255],
        content_type=content_type,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        storage_key=key,
        uploaded_by_id=uploaded_by_id,
    )
    db.session.add(document)
    db.session.flush()
    return document


def read(document: Document) -> bytes:
    return (Path(current_app.config["DOCUMENT_STORE"]) / document.storage_key).read_bytes()


MAX_UPLOAD_BYTES = 10 * 1024 * 1024
# Recognised by their first bytes, not by the name or the browser's word for it.
UPLOAD_TYPES = {
    b"%PDF-": "application/pdf",
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
}


class UploadRefused(ValueError):
    """An uploaded document was refused; the message says why."""


def inline_response(document: Document) -> Response:
    """The document, to be shown in the browser (the caller has checked who is asking)."""
    return Response(
        read(document),
        mimetype=document.content_type,
        headers={"Content-Disposition": f'inline; filename="{document.filename}"'},
    )


def check_upload(data: bytes) -> str:
    """The content type of an acceptable upload (PDF, PNG or JPEG up to 10 MB)."""
    if not data:
        raise UploadRefused("the file is empty")
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadRefused("documents can be at most 10 MB")
    for magic, content_type in UPLOAD_TYPES.items():
        if data.startswith(magic):
            return content_type
    raise UploadRefused("documents must be PDF, PNG or JPEG files")
