"""The JSON API blueprint, its token check and its error handling."""

from __future__ import annotations

import json
import re
from collections import deque
from pathlib import Path
from typing import Any

from flask import Blueprint, g, jsonify, request
from werkzeug.exceptions import HTTPException

from api.json_errors import JSON_TOO_DEEP, ApiError, error_response
from cases.users import TokenRefused, check_token
from shell.extensions import csrf, db
from shell.unit_of_work import step

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)

OPENAPI_FILE = Path(__file__).with_name("openapi.json")
PUBLIC_ENDPOINTS = {"api.openapi"}
READ_METHODS = {"GET", "HEAD", "OPTIONS"}


@bp.before_request
def authenticate():
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "send an API token as 'Authorization: Bearer <token>'")
    # A unit of work of its own, before the view's: the token's last_used_at is kept even when
    # the view then refuses the request (its ApiError rolls back only the view's work).
    try:
        with step():
            row = check_token(db.session, token.strip())
            user, scope = row.user, row.scope
    except TokenRefused as exc:
        raise ApiError(401, exc.error, exc.message) from None
    if request.method not in READ_METHODS and scope != "write":
        raise ApiError(403, "insufficient_scope", "this needs a token with the write scope")
    g.api_user = user
    return None


def require_api_roles(*roles: str) -> None:
    if g.api_user.role not in roles:
        raise ApiError(403, "forbidden", f"this needs a token of role: {', '.join(roles)}")


def json_body() -> Any:
    """The request's JSON body, or None if it is not JSON (the caller says what it wanted).
    JSON nested too deep for the parser is a 400 here, not a RecursionError in the view (the
    shell's input guard refuses it first; this holds whatever runs before the view). So is
    text that is not Unicode: JSON may escape half of a surrogate pair ("\\ud800"), which
    Python reads into a str that no database or file can encode."""
    try:
        body = request.get_json(silent=True)
    except RecursionError:
        raise ApiError(400, "invalid_json", JSON_TOO_DEEP) from None
    where = _unpaired_surrogate_in(body)
    if where is not None:
        raise ApiError(
            400,
            "invalid_json",
            f"the JSON body has half of a surrogate pair (an unpaired \\ud800-\\udfff escape) "
            f"in {where}: text must be valid Unicode",
            {"field": where},
        )
    return body


_SURROGATE = re.compile("[\ud800-\udfff]")


def _unpaired_surrogate_in(document: Any) -> str | None:
    """Where the first lone surrogate in a parsed JSON document is (a key path like
    rows[0].name, or "the body"), or None. Python's JSON parser joins escaped pairs into one
    character, so any surrogate left is unpaired. Walked without recursion: it may be deep."""
    pending: deque[tuple[str, Any]] = deque([("", document)])
    while pending:
        where, value = pending.popleft()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                return _shown(where) or "the body"
        elif isinstance(value, dict):
            for key, item in value.items():
                name = f"{where}.{key}" if where else key
                if _SURROGATE.search(key):
                    return _shown(name)
                pending.append((name, item))
        elif isinstance(value, list):
            pending.extend((f"{where}[{i}]", item) for i, item in enumerate(value))
    return None


def _shown(name: str) -> str:
    """A key path fit to show: surrogates written as escapes, and not too long."""
    name = name.encode("utf-8", "backslashreplace").decode()
    return name if len(name) <= 80 else name[:77] + "..."


def json_object() -> dict[str, Any]:
    body = json_body()
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "send a JSON object")
    return body


@bp.errorhandler(ApiError)
def handle_api_error(exc: ApiError):
    # Raised in a view, its unit of work rolled back already; raised before one, nothing was
    # written.
    return error_response(exc.status, exc.error, exc.message, exc.details)


@bp.errorhandler(HTTPException)
def handle_http_error(exc: HTTPException):
    name = (exc.name or "error").lower().replace(" ", "_")
    return error_response(exc.code or 500, name, exc.description or name)


@bp.get("/openapi.json")
def openapi():
    return jsonify(json.loads(OPENAPI_FILE.read_text()))
