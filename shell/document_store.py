"""The document store: files kept with cases, outside the web root, served only by views that
check who is asking."""

from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from flask import Response, current_app

from cases.documents import Document
from shell.extensions import db

# The extensions each kept content type may be named with, the one it is stored under first.
EXTENSIONS = {
    "application/pdf": (".pdf",),
    "image/png": (".png",),
    "image/jpeg": (".jpg", ".jpeg"),
}
# What a quoted filename may keep as it is (RFC 6266's fallback for old browsers).
NOT_PLAIN = re.compile(r"[^A-Za-z0-9 ._()+,-]")


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
    # The extension on disk says what the content was checked to be, never what it was called.
    key = f"{kind}/{uuid.uuid4().hex}{EXTENSIONS.get(content_type, ('',))[0]}"
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


CHUNK_BYTES = 1024 * 1024  # a stream is copied into the store this much at a time


def store_stream(
    stream: BinaryIO,
    *,
    filename: str,
    content_type: str,
    kind: str,
    case_id: int | None = None,
    uploaded_by_id: int | None = None,
) -> Document:
    """Store what `stream` holds, read in chunks of CHUNK_BYTES (never whole) and hashed on the
    way: for a large upload, memory does not grow with its size. Written under a temporary name,
    then renamed, so a file in the store is always whole."""
    key = f"{kind}/{uuid.uuid4().hex}{EXTENSIONS.get(content_type, ('',))[0]}"
    path = Path(current_app.config["DOCUMENT_STORE"]) / key
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    digest = hashlib.sha256()
    size = 0
    try:
        with partial.open("wb") as out:
            while chunk := stream.read(CHUNK_BYTES):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    document = Document(
        case_id=case_id,
        kind=kind,
        filename=filename[:255],
        content_type=content_type,
        size_bytes=size,
        sha256=digest.hexdigest(),
        storage_key=key,
        uploaded_by_id=uploaded_by_id,
    )
    db.session.add(document)
    db.session.flush()
    return document


def path_of(document: Document) -> Path:
    return Path(current_app.config["DOCUMENT_STORE"]) / document.storage_key


def opener(document: Document) -> Callable[[], BinaryIO]:
    """A function that opens the stored file for reading, from its start, each time it is called
    (the app's store is looked up now, so it may be called outside a request)."""
    path = path_of(document)
    return lambda: path.open("rb")


def discard(document: Document) -> None:
    """Remove a stored file whose record is being rolled back (a refused upload)."""
    path_of(document).unlink(missing_ok=True)


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
        headers={"Content-Disposition": content_disposition("inline", shown_name(document))},
    )


def shown_name(document: Document) -> str:
    """The name a document is shown under: the one it came with, ending as its content does
    (`notes.html` that is a PDF is shown as `notes.html.pdf`)."""
    name = document.filename.strip() or "document"
    extensions = EXTENSIONS.get(document.content_type)
    if extensions and not name.lower().endswith(extensions):
        name += extensions[0]
    return name


def content_disposition(disposition: str, name: str) -> str:
    """A Content-Disposition header for any name (RFC 6266): a quoted ASCII fallback with
    anything unsafe replaced, and the exact name as percent-encoded UTF-8 (RFC 5987)."""
    decomposed = unicodedata.normalize("NFKD", name)
    fallback = NOT_PLAIN.sub("_", "".join(c for c in decomposed if not unicodedata.combining(c)))
    stem, dot, extension = fallback.rpartition(".")
    if not re.search(r"[A-Za-z0-9]", stem if dot else fallback):
        fallback = f"document{dot}{extension}"
    encoded = quote(name.encode("utf-8", "replace"), safe="!#$&+-.^_`|~")
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


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
