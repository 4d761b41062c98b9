"""API: a client's monthly statement (SPEC §10 `GET /api/v1/statements?month=YYYY-MM`) and
its PDF and CSV. A client token sees its own client's; an admin token names the client."""

from __future__ import annotations

from flask import Response, g, jsonify, request, url_for

from api.base import bp, require_api_roles
from api.json_errors import ApiError
from cases.clients import client_by_code
from payments.statements import Statement, StatementError, parse_month, statement_for
from shell.extensions import db


def requested_statement() -> Statement:
    require_api_roles("client", "admin")
    try:
        month = parse_month(request.args.get("month"))
    except StatementError as exc:
        raise ApiError(400, "invalid_month", str(exc)) from None
    if g.api_user.role == "client":
        client_id, code = g.api_user.client_id, g.api_user.client.code
    else:
        code = request.args.get("client", "").strip().upper()
        client = client_by_code(db.session, code) if code else None
        if client is None:
            raise ApiError(400, "invalid_client", "an agency token names the client: client=CODE")
        client_id = client.id
    statement = statement_for(db.session, client_id, month)
    if statement is None:
        raise ApiError(404, "not_found", f"no statement for {code} for {month} has been issued")
    return statement


def _file_url(statement: Statement, kind: str) -> str:
    params = {"month": statement.month}
    if g.api_user.role != "client":
        params["client"] = statement.client.code
    return url_for("api.statement_file", kind=kind, _external=True, **params)


@bp.get("/statements")
def get_statement():
    statement = requested_statement()
    return jsonify(
        {
            **statement.summary(),
            "pdf": _file_url(statement, "pdf"),
            "csv": _file_url(statement, "csv"),
            "issued_at": statement.issued_at.isoformat(),
            "late_adjustments": sum(1 for line in statement.lines if line.late),
        }
    )


@bp.get("/statements/pdf", defaults={"kind": "pdf"})
@bp.get("/statements/csv", defaults={"kind": "csv"})
def statement_file(kind: str):
    statement = requested_statement()
    body, mimetype = (
        (statement.pdf, "application/pdf") if kind == "pdf" else (statement.csv, "text/csv")
    )
    return Response(
        body,
        mimetype=mimetype,
        headers={"Content-Disposition": f'attachment; filename="{statement.number}.{kind}"'},
    )
