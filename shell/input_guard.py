"""Input no view should see: a NUL character anywhere in a request's address, query string,
form fields (and uploaded files' names) or JSON body, and JSON nested too deep to parse; and
a body larger than its endpoint takes.

PostgreSQL refuses NUL in text (SQLite would store it silently), and Python's JSON parser
runs out of stack on deeply nested arrays; either would be a 500 deep inside a view. Both
are refused here, before any view runs (so nothing is written), with a clear 400: JSON
under /api/ and /stripe/ ({"error": "invalid_input" | "invalid_json", ...}), the error
page elsewhere."""

from __future__ import annotations

from collections import deque
from typing import Any

from flask import Flask, current_app, render_template, request

from api.json_errors import JSON_TOO_DEEP, error_response

NUL = "\x00"
# The endpoints that take a referral file (up to 200 MB, streamed into the document store);
# every other request is held to MAX_CONTENT_LENGTH (10 MB documents).
REFERRAL_UPLOADS = frozenset({"client_area.upload", "api.post_referrals"})


def _shown(name: str) -> str:
    """A name fit to show: its NULs written out, and not too long."""
    name = name.replace(NUL, "\\u0000")
    return name if len(name) <= 80 else name[:77] + "..."


def nul_in_json(document: Any) -> str | None:
    """Where the first NUL in a parsed JSON document is (a key path like rows[0].name, or
    "the body"), or None. Walked without recursion: the document may be deep."""
    pending: deque[tuple[str, Any]] = deque([("", document)])
    while pending:
        where, value = pending.popleft()
        if isinstance(value, str):
            if NUL in value:
                return where or "the body"
        elif isinstance(value, dict):
            for key, item in value.items():
                name = f"{where}.{key}" if where else str(key)
                if NUL in str(key):
                    return name
                pending.append((name, item))
        elif isinstance(value, list):
            pending.extend((f"{where}[{i}]", item) for i, item in enumerate(value))
    return None


def nul_in_request() -> tuple[str, str] | None:
    """(where, name) of the first NUL in the request outside its body's raw bytes, or None.
    Raises RecursionError for a JSON body nested too deep to parse."""
    if NUL in request.path:
        return "the address", request.path
    for place, fields in (("the query string", request.args), ("the form", request.form)):
        for key, value in fields.items(multi=True):
            if NUL in key or NUL in value:
                return place, key
    for key, upload in request.files.items(multi=True):
        if NUL in (upload.filename or ""):
            return "the name of the uploaded file", key
    if request.is_json and _may_hide_bad_json(request.get_data(cache=True)):
        where = nul_in_json(request.get_json(silent=True))  # cached for the view
        if where is not None:
            return "the JSON body", where
    return None


# Fewer opening brackets than this cannot nest deep enough to exhaust Python's parser.
_SHALLOW = 200


def _may_hide_bad_json(body: bytes) -> bool:
    """Whether a JSON body must be parsed to be checked: only JSON's escape can make a NUL
    (a raw one is not JSON in UTF-8), and only many brackets can nest too deep. Most bodies have
    neither and are left to their view to read once (a Stripe webhook needs its raw bytes
    for the signature, and would otherwise be parsed twice)."""
    return (
        b"\\u0000" in body
        or b"\x00" in body  # raw NUL bytes: not JSON, or JSON in UTF-16/32
        or body.count(b"[") + body.count(b"{") >= _SHALLOW
    )


def refuse(error: str, message: str, details: Any = None):
    if request.path.startswith(("/api/", "/stripe/")):
        return error_response(400, error, message, details)
    text = message[0].upper() + message[1:]
    return render_template("errors/error.html", code=400, title="Bad request", text=text), 400


def refuse_bad_input():
    try:
        found = nul_in_request()
    except RecursionError:
        return refuse("invalid_json", JSON_TOO_DEEP)
    if found is None:
        return None
    place, name = found
    return refuse(
        "invalid_input",
        f"{place} has a NUL character (\\u0000) in {_shown(name)}: text may not contain "
        "NUL characters. Remove it and send the request again.",
        {"in": place.removeprefix("the "), "field": _shown(name)},
    )


def body_limit(endpoint: str | None, values) -> None:
    """The largest body this request may send: REFERRAL_MAX_CONTENT_LENGTH for a referral
    upload, MAX_CONTENT_LENGTH (the default) for the rest; larger is a 413 before it is read.
    Set as a URL value preprocessor, which runs before every before-request function (CSRF
    protection and the NUL check read the form)."""
    if endpoint in REFERRAL_UPLOADS:
        request.max_content_length = current_app.config["REFERRAL_MAX_CONTENT_LENGTH"]


def init_app(app: Flask) -> None:
    app.url_value_preprocessor(body_limit)
    app.before_request(refuse_bad_input)
