"""API: a client hands over referrals as a CSV body or as JSON rows (SPEC §10)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from flask import g, jsonify, request

from api.base import bp, json_body, require_api_roles
from api.json_errors import ApiError
from cases import audit
from cases.referral_file import FileRefused
from cases.referrals import import_file
from shell.extensions import db
from shell.referral_store import forget, store_referral_file
from shell.timezone import agency_today

AS_OF_DAYS = 30


def _rows_to_csv(rows) -> bytes:
    """JSON rows become the same CSV the file path reads, so both are checked alike."""
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise ApiError(
            422, "invalid_body", 'send a non-empty JSON array of row objects, or {"rows": [...]}'
        )
    header: list[str] = []
    for row in rows:
        header.extend(k for k in row if k not in header)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else str(v) for k, v in row.items()})
    return out.getvalue().encode()


def _as_of(value: Any) -> dt.date:
    """The referral date: the agency's today unless given; if given, SPEC accepts only a day
    from AS_OF_DAYS ago to today (the agency's today), never a future one."""
    today = agency_today()
    if value is None or value == "":
        return today
    earliest = today - dt.timedelta(days=AS_OF_DAYS)
    rule = (
        f"as_of must be a date like {today.isoformat()}, from {earliest.isoformat()} to "
        f"{today.isoformat()} (today and the {AS_OF_DAYS} days before, in the agency's time zone)"
    )
    try:
        as_of = dt.date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        as_of = None
    if as_of is None or not earliest <= as_of <= today:
        raise ApiError(
            422,
            "invalid_as_of",
            rule,
            {"earliest": earliest.isoformat(), "latest": today.isoformat()},
        )
    return as_of


@bp.post("/referrals")
def post_referrals():
    require_api_roles("client")
    as_of = request.args.get("as_of")
    dry_run = request.args.get("dry_run", "").lower() in ("1", "true", "yes")
    attested = request.args.get("early_out_attested", "").lower() in ("1", "true", "yes")
    if request.mimetype in ("text/csv", "application/csv", "text/plain"):
        # The body is read as a stream, straight into the document store, 1 MiB at a time.
        stream, filename = request.stream, "api.csv"
    elif request.is_json:
        body = json_body()
        if body is None:
            raise ApiError(400, "invalid_json", "the body is not valid JSON")
        if isinstance(body, dict):
            as_of = body.get("as_of", as_of)
            dry_run = body.get("dry_run", dry_run)
            if not isinstance(dry_run, bool):
                raise ApiError(422, "invalid_dry_run", "dry_run must be true or false (JSON)")
            attested = body.get("early_out_attested", attested)
            if not isinstance(attested, bool):
                raise ApiError(
                    422,
                    "invalid_early_out_attested",
                    "early_out_attested must be true or false (JSON)",
                )
            body = body.get("rows")
        stream, filename = io.BytesIO(_rows_to_csv(body)), "api.json"
    else:
        raise ApiError(
            415,
            "unsupported_media_type",
            "send the file as text/csv, or JSON rows as application/json",
        )
    user = g.api_user
    as_of = _as_of(as_of)
    document, data = store_referral_file(stream, filename, uploaded_by_id=user.id)
    try:
        result = import_file(
            db.session,
            user.client,
            data,
            filename,
            as_of=as_of,
            actor=audit.Actor.user(user),
            source="api",
            dry_run=dry_run,
            early_out_attested=attested,
            document=document,
        )
    except FileRefused as exc:
        forget(document)  # the request's writes, its record too, are rolled back
        raise ApiError(422, "file_refused", str(exc)) from None
    return jsonify(result.as_json()), 201 if result.accepted and not dry_run else 200
