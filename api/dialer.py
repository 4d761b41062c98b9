"""API for dialers and other systems: may we contact this debtor now, and what happened."""

from __future__ import annotations

import datetime as dt

from flask import g, jsonify, request

from api.base import bp, require_api_roles
from api.case_lookup import visible_case
from api.json_errors import ApiError
from cases import audit
from cases.contact_log import ContactError, contact_window, record_contact
from cases.contacts import CHANNELS
from shell.extensions import db
from shell.security import STAFF


def _instant(value: str | None, name: str) -> dt.datetime | None:
    if value is None or value == "":
        return None
    try:
        at = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise ApiError(
            422,
            "invalid_datetime",
            f"{name} must be an ISO 8601 time, e.g. 2026-11-23T14:30:00-05:00",
        ) from None
    if at.tzinfo is None:
        raise ApiError(422, "invalid_datetime", f"{name} needs a time zone offset (or Z)")
    return at


@bp.get("/cases/<reference>/contact-window")
def get_contact_window(reference: str):
    require_api_roles(*STAFF)
    case = visible_case(reference)
    channel = request.args.get("channel", "call")
    if channel not in CHANNELS:
        raise ApiError(422, "invalid_channel", f"channel must be one of: {', '.join(CHANNELS)}")
    result = contact_window(db.session, case, channel, _instant(request.args.get("at"), "at"))
    return jsonify(
        allowed=result.allowed,
        reasons=list(result.reasons),
        next_allowed_at=(
            result.next_allowed_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
            if result.next_allowed_at
            else None
        ),
    )


@bp.post("/cases/<reference>/contacts")
def post_contact(reference: str):
    require_api_roles(*STAFF)
    case = visible_case(reference)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "send a JSON object")
    occurred_at = _instant(body.get("occurred_at"), "occurred_at")
    if occurred_at is None:
        raise ApiError(422, "missing_field", "occurred_at is required")
    note = body.get("note")
    if note is not None and not isinstance(note, str):
        raise ApiError(422, "invalid_note", "note must be text")
    try:
        recorded = record_contact(
            db.session,
            case,
            channel=body.get("channel"),
            direction=body.get("direction"),
            outcome=body.get("outcome"),
            occurred_at=occurred_at,
            note=note,
            actor=audit.Actor.user(g.api_user),
        )
    except ContactError as exc:
        raise ApiError(422, "invalid_contact", str(exc)) from None
    return jsonify(
        id=recorded.contact.id,
        violations=[{"rule": v.rule, "message": v.message} for v in recorded.violations],
    ), 201
