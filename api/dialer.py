"""API for dialers and other systems: may we contact this debtor now, and what happened."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import g, jsonify, request

from api.base import bp, json_object, require_api_roles
from api.case_lookup import visible_case
from api.json_errors import ApiError
from cases import audit
from cases.contact_log import ContactError, contact_window, record_contact
from cases.contacts import CHANNELS
from shell.extensions import db
from shell.security import STAFF

# The times the contact rules answer for: far enough from the ends of the calendar that the
# same moment in any time zone, a week back and a month ahead, is still a date.
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)


def _instant(value: Any, name: str) -> dt.datetime | None:
    if value is None or value == "":
        return None
    example = "e.g. 2026-11-23T14:30:00-05:00"
    if not isinstance(value, str):
        raise ApiError(
            422,
            f"invalid_{name}",
            f"{name} must be an ISO 8601 time as text, {example}",
            {"field": name},
        )
    try:
        at = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise ApiError(
            422, "invalid_datetime", f"{name} must be an ISO 8601 time, {example}", {"field": name}
        ) from None
    if at.tzinfo is None:
        raise ApiError(
            422, "invalid_datetime", f"{name} needs a time zone offset (or Z)", {"field": name}
        )
    if not EARLIEST <= at < LATEST:
        raise ApiError(
            422,
            f"invalid_{name}",
            f"{name} must be from {EARLIEST:%Y-%m-%d} to before {LATEST:%Y-%m-%d} (UTC)",
            {"field": name},
        )
    return at


def _text(body: dict[str, Any], name: str) -> str | None:
    """A field that is text when given: anything else is a 422 naming it."""
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise ApiError(422, f"invalid_{name}", f"{name} must be text", {"field": name})
    return value


MAX_PHONE_CHARS = 30


def _phone(value: Any) -> str | None:
    """The number dialled or to be texted, when given."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_PHONE_CHARS:
        raise ApiError(
            422,
            "invalid_phone",
            f"phone must be a telephone number as text, at most {MAX_PHONE_CHARS} characters",
            {"field": "phone"},
        )
    return value.strip()


@bp.get("/cases/<reference>/contact-window")
def get_contact_window(reference: str):
    require_api_roles(*STAFF)
    case = visible_case(reference)
    channel = request.args.get("channel", "call")
    if channel not in CHANNELS:
        raise ApiError(422, "invalid_channel", f"channel must be one of: {', '.join(CHANNELS)}")
    result = contact_window(
        db.session,
        case,
        channel,
        _instant(request.args.get("at"), "at"),
        target=_phone(request.args.get("phone")),
    )
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
    body = json_object()
    channel, direction, outcome, note = (
        _text(body, name) for name in ("channel", "direction", "outcome", "note")
    )
    occurred_at = _instant(body.get("occurred_at"), "occurred_at")
    phone = _phone(body.get("phone"))
    if occurred_at is None:
        raise ApiError(422, "missing_field", "occurred_at is required", {"field": "occurred_at"})
    try:
        recorded = record_contact(
            db.session,
            case,
            channel=channel,
            direction=direction,
            outcome=outcome,
            occurred_at=occurred_at,
            note=note,
            target=phone,
            actor=audit.Actor.user(g.api_user),
        )
    except ContactError as exc:
        raise ApiError(422, "invalid_contact", str(exc)) from None
    return jsonify(
        id=recorded.contact.id,
        violations=[{"rule": v.rule, "message": v.message} for v in recorded.violations],
    ), 201
