"""JSON errors for the API: {"error": code, "message": text, "details": ...}, never a trace."""

from __future__ import annotations

from typing import Any

from flask import jsonify

JSON_TOO_DEEP = "the JSON body is nested too deeply to read"


class ApiError(Exception):
    def __init__(self, status: int, error: str, message: str, details: Any = None):
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.details = details


def error_response(status: int, error: str, message: str, details: Any = None):
    response = jsonify(error=error, message=message, details=details)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="recourse"'
    return response
