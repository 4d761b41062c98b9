"""Fuzzing the JSON API from its own description (api/openapi.json, served at
/api/v1/openapi.json) with Schemathesis, through the Flask test client.

Every operation gets the examples Schemathesis derives from the description (its coverage
phase: boundaries, missing and wrong-typed values) and random ones, positive and negative, sent
with a real token. No answer may be a 5xx, and each must be one the description lists, with a
body of the schema it gives. A case mostly names a real case, month and client, so that the
fuzzing reaches past the 404s into what each operation does; the token's role varies with it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zlib
from collections import Counter
from dataclasses import dataclass

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.base import OPENAPI_FILE
from cases import audit
from correspondence.statement_mail import issue_statement
from payments.posting import post_payment
from payments.statements import Month
from shell.money import MAX_CENTS

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
ACTOR = audit.Actor(None, "test")
ROLES = ("client", "collector", "supervisor", "admin")
# The roles each path is meant for (the others get their 403, which is checked too).
MEANT_FOR = {
    "/referrals": ("client",),
    "/cases/{reference}/contact-window": ("collector", "supervisor"),
    "/cases/{reference}/contacts": ("collector", "admin"),
    "/statements": ("client", "admin"),
    "/statements/pdf": ("client", "admin"),
    "/statements/csv": ("client", "admin"),
}


# The file the app serves at /api/v1/openapi.json (test_the_app_serves_the_file_fuzzed_here).
# Loaded here rather than from the app in a fixture: schemathesis.pytest.from_fixture (4.32)
# does not run under pytest 9.2 (it sets Function._nodeid, which pytest 9.2 no longer has).
schema = schemathesis.openapi.from_path(OPENAPI_FILE)


def test_the_app_serves_the_file_fuzzed_here(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.json == json.loads(OPENAPI_FILE.read_text())


@dataclass
class World:
    reference: str  # an ACME case
    other_reference: str  # a case of another client
    tokens: dict[str, dict[str, str]]


@pytest.fixture
def world(db_session, make_client, make_case, make_user, api_token) -> World:
    acme, other = make_client("ACME"), make_client("OTHER", "Other Co")
    case = make_case(acme, principal=250_000, interest=1_234, status="active")
    theirs = make_case(other, principal=50_000)
    # An issued October statement, for the statement operations to find.
    paid = make_case(acme, principal=80_000, status="active", referred_on=dt.date(2026, 10, 1))
    post_payment(
        db_session,
        paid,
        10_000,
        external_id="fuzz-october",
        received_at=dt.date(2026, 10, 15),
        method="check",
        actor=ACTOR,
    )
    issue_statement(db_session, acme, Month(2026, 10), actor=ACTOR)
    tokens = {
        role: api_token(make_user(role, client=acme if role == "client" else None))
        for role in ROLES
    }
    return World(case.reference, theirs.reference, tokens)


@pytest.fixture
def answers(request):
    """The status codes one operation answered (to cases sent with its own method; Schemathesis
    also tries the others, answered 405): it must have reached a 2xx, or the fuzzing never got
    past the refusals. Shown with `pytest -s`."""
    codes: Counter[int] = Counter()
    yield codes
    print(f"\n{request.node.name}: {codes.total()} cases, answers {dict(sorted(codes.items()))}")
    if request.session.testsfailed == 0:
        assert any(200 <= code < 300 for code in codes), dict(codes)


def _steer(case, world: World) -> dict[str, str]:
    """Point most cases at real data, choose the token, and return the headers to send.

    The choice is a function of the generated case, so that Hypothesis replays a failure
    exactly."""
    pick = zlib.crc32(repr((case.path_parameters, case.query, case.body)).encode())
    path = case.operation.path
    if case.path_parameters and "reference" in case.path_parameters and pick % 5:
        case.path_parameters["reference"] = (
            world.other_reference if pick % 7 == 0 else world.reference
        )
    if path.startswith("/statements") and isinstance(case.query, dict):
        if pick % 3:
            case.query["month"] = "2026-10"
        if pick % 4:
            case.query["client"] = "ACME"
    body = case.body
    if path == "/cases/{reference}/payments" and isinstance(body, dict) and pick % 3:
        # Mostly a day the case can be paid, and an amount it owes (a larger one than any
        # amount may be stays, for its 422).
        body["received_at"] = "2026-11-20"
        amount = body.get("amount_cents")
        if type(amount) is int and 0 < amount <= MAX_CENTS:
            body["amount_cents"] = amount % 10_000 + 1
    if path == "/cases/{reference}/contacts" and isinstance(body, dict) and pick % 3:
        body["occurred_at"] = "2026-11-22T15:00:00Z"  # a contact of yesterday, not of any year
    if path == "/referrals" and pick % 3:
        # Mostly today's referrals of rows that could be accepted, beside the generated keys.
        if isinstance(case.query, dict):
            case.query.pop("as_of", None)
        case.body = _with_a_referral(case.body, pick)
    if path == "/openapi.json":
        return {}
    meant = MEANT_FOR.get(path, ROLES)
    role = ROLES[pick // 7 % len(ROLES)] if pick % 6 == 0 else meant[pick // 7 % len(meant)]
    return world.tokens[role]


def _with_a_referral(body, pick: int):
    """The generated referral body with an acceptable row's values added to its rows."""
    row = {
        "account_number": f"FZ-{pick % 1000}",
        "first_name": "Jane",
        "last_name": "Doe",
        "state": "NY",
        "postal_code": "10001",
        "principal": "1,234.56",
        "due_date": "2026-01-15",
    }
    if isinstance(body, str):  # text/csv: our header and row, then the generated text
        buffer = io.StringIO()
        csv.writer(buffer).writerows([list(row), list(row.values())])
        return buffer.getvalue() + body
    if isinstance(body, list):
        return [{**item, **row} if isinstance(item, dict) else item for item in body] or [row]
    if isinstance(body, dict):
        rows = body.get("rows")
        rows = rows if isinstance(rows, list) and rows else [{}]
        body = {key: value for key, value in body.items() if key != "as_of"}
        return {**body, "rows": _with_a_referral(rows, pick)}
    return body


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    database=None,
    # One world per operation, shared by its examples (they add to it, inside the test's
    # transaction): that is what the function-scoped fixtures are for here.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_every_operation_answers_as_described(case, app, client, world, answers):
    headers = _steer(case, world)
    response = case.call(session=client, headers=headers, app=app)
    if case.method.upper() == case.operation.method.upper():
        answers[response.status_code] += 1
    case.validate_response(response, checks=CHECKS, headers=headers)


# --- what the generators do not make ---------------------------------------------------------
# Found by hand beside the fuzzing; each was a 500 before api/ refused it.

HUGE = 10**400  # valid JSON; amount_cents / 100 overflowed a float while refusing it
LONE = "\ud800"  # valid JSON as "\\ud800"; no database or CSV file can encode it
GOOD_ROW = {
    "account_number": "FZ-1",
    "first_name": "Jane",
    "last_name": "Doe",
    "state": "NY",
    "postal_code": "10001",
    "principal": "100",
    "due_date": "2026-01-15",
}
PAYMENT = {"amount_cents": 100, "received_at": "2026-11-20", "method": "check", "external_id": "1"}
CONTACT = {
    "channel": "call",
    "direction": "outbound",
    "outcome": "no_answer",
    "occurred_at": "2026-11-22T15:00:00Z",
}


@pytest.mark.parametrize(
    ("path", "role", "body", "status", "error"),
    [
        pytest.param(
            "/cases/{reference}/payments",
            "collector",
            {**PAYMENT, "amount_cents": HUGE},
            422,
            "invalid_amount",
            id="huge-amount",
        ),
        pytest.param(
            "/cases/{reference}/payments",
            "client",
            {**PAYMENT, "amount_cents": 10**14},
            422,
            "invalid_amount",
            id="a-trillion-dollars",
        ),
        pytest.param(
            "/cases/{reference}/payments",
            "collector",
            {**PAYMENT, "external_id": LONE},
            400,
            "invalid_json",
            id="surrogate-in-external-id",
        ),
        pytest.param(
            "/cases/{reference}/contacts",
            "collector",
            {**CONTACT, "note": "hi " + LONE},
            400,
            "invalid_json",
            id="surrogate-in-note",
        ),
        pytest.param(
            "/referrals",
            "client",
            [{**GOOD_ROW, "city": LONE}],
            400,
            "invalid_json",
            id="surrogate-in-a-cell",
        ),
        pytest.param(
            "/referrals",
            "client",
            {"rows": [{**GOOD_ROW, "x" + LONE: "1"}]},
            400,
            "invalid_json",
            id="surrogate-in-a-column-name",
        ),
    ],
)
def test_hostile_json_is_refused_as_described(app, client, world, path, role, body, status, error):
    operation = schema[path]["POST"]
    params = {"reference": world.reference} if "{reference}" in path else None
    case = operation.Case(path_parameters=params, body=body, media_type="application/json")
    headers = world.tokens[role]
    response = case.call(session=client, headers=headers, app=app)
    assert (response.status_code, response.json()["error"]) == (status, error), response.text
    case.validate_response(response, checks=CHECKS, headers=headers)


def test_a_payment_up_to_the_limit_is_only_refused_for_the_balance(app, client, world):
    case = schema["/cases/{reference}/payments"]["POST"].Case(
        path_parameters={"reference": world.reference},
        body={**PAYMENT, "amount_cents": 10**14 - 1},
        media_type="application/json",
    )
    response = case.call(session=client, headers=world.tokens["collector"], app=app)
    assert response.status_code == 422 and response.json()["error"] == "invalid_payment"
    assert "more than the balance" in response.json()["message"]
